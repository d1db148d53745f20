"""Streamed throughput of the reductions over a chunked HDF5 frame stack.

Not a test: a script that prints a table. It first writes a temporary HDF5 file of
``--frames`` frames of ``--size`` x ``--size`` photon counts (sparse Poisson, a few per
cent of the pixels hit per frame, like XPCS data), chunked ``(--chunk-frames, H, W)``
along the frame axis (optionally gzip or lzf compressed), then, for each backend, in a
fresh interpreter each (so that peak memory is that backend's alone):

- ``read``: iterating ``xpcs_kernels.frames.iter_frame_chunks`` over the dataset alone,
  the HDF5 cost;
- ``reduce``: ``xpcs_kernels.reductions.reduce_frames`` over the same dataset (mean image,
  I(q) over ``--bins`` ring bins, ``--segments`` segments, intensity vs time), the
  streaming pass users run.

Throughput is pixels x frames per second of wall time (JAX compilation included: it
happens on the first chunk and on the ragged last one). Peak memory is the child's peak
resident set (``resource.getrusage``), with its resident set after imports and before
reading as the baseline, so the growth shows what streaming costs; the file is many times
larger than that growth. Run from the repository root:

    python tools/bench/bench_reductions.py [--frames 1000] [--size 1024] [--chunk-frames 32]
        [--compression none|gzip|lzf] [--backends numpy jax] [--bins 360] [--segments 10]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

MIB = 1024**2


def _rss_mib() -> float:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / MIB


def _peak_rss_mib() -> float:
    # Linux reports ru_maxrss in KiB.
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def ring_labels(size: int, n_bins: int) -> np.ndarray[Any, Any]:
    """Ring bins 1..n_bins around the centre, a masked beam stop (0) in the middle."""
    yy, xx = np.indices((size, size))
    r = np.hypot(yy - size / 2, xx - size / 2)
    r_min, r_max = size * 0.03, size * 0.5
    labels: np.ndarray[Any, Any] = np.floor((r - r_min) / (r_max - r_min) * n_bins).astype(np.int64) + 1
    labels[(r < r_min) | (labels > n_bins)] = 0
    return labels


def write_stack(path: Path, frames: int, size: int, chunk_frames: int, compression: str | None) -> None:
    """Sparse Poisson counts, written block by block (memory stays at one block)."""
    import h5py

    rng = np.random.default_rng(0)
    pool = rng.poisson(0.05, size=(64, size, size)).astype(np.uint8)
    with h5py.File(path, "w") as f:
        ds = f.create_dataset(
            "entry/data/data",
            shape=(frames, size, size),
            dtype=np.uint8,
            chunks=(chunk_frames, size, size),
            compression=compression,
        )
        block = 64
        for first in range(0, frames, block):
            n = min(block, frames - first)
            ds[first : first + n] = pool[rng.permutation(64)[:n]]


def child(args: argparse.Namespace) -> None:
    """One backend's measurements, printed as one JSON line."""
    import h5py

    import xpcs_device
    from xpcs_kernels.frames import iter_frame_chunks
    from xpcs_kernels.reductions import reduce_frames

    labels = ring_labels(args.size, args.bins)
    with xpcs_device.use_backend(args.child) as b, h5py.File(args.path, "r") as f:
        ds = f["entry/data/data"]
        baseline = _rss_mib()
        start = time.perf_counter()
        largest = 0
        for chunk in iter_frame_chunks(ds):
            largest = max(largest, chunk.shape[0])
        read_s = time.perf_counter() - start
        start = time.perf_counter()
        result = reduce_frames(ds, labels, args.bins, n_segments=args.segments)
        b.block_until_ready(result.iq)
        reduce_s = time.perf_counter() - start
    print(
        json.dumps(
            {
                "read_s": read_s,
                "reduce_s": reduce_s,
                "baseline_mib": baseline,
                "peak_mib": _peak_rss_mib(),
                "chunk_frames": largest,
            }
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--frames", type=int, default=1000)
    parser.add_argument("--size", type=int, default=1024, help="frames are size x size pixels")
    parser.add_argument("--chunk-frames", type=int, default=32, help="HDF5 chunk length along the frames")
    parser.add_argument("--compression", choices=["none", "gzip", "lzf"], default="none")
    parser.add_argument("--backends", nargs="+", default=["numpy", "jax"])
    parser.add_argument("--bins", type=int, default=360)
    parser.add_argument("--segments", type=int, default=10)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--path", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args)
        return

    backends = [name for name in args.backends if name != "jax" or importlib.util.find_spec("jax")]
    compression = None if args.compression == "none" else args.compression
    pixels = args.size * args.size
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "frames.h5"
        start = time.perf_counter()
        write_stack(path, args.frames, args.size, args.chunk_frames, compression)
        file_mib = path.stat().st_size / MIB
        print(
            f"{args.frames} frames x {args.size}x{args.size} uint8 "
            f"({args.frames * pixels / MIB:.0f} MiB raw, "
            f"file {file_mib:.0f} MiB, HDF5 chunks of {args.chunk_frames} frames, compression "
            f"{args.compression}) written in {time.perf_counter() - start:.1f} s; {args.bins} ring bins, "
            f"{args.segments} segments"
        )
        rows = []
        for name in backends:
            command = [sys.executable, __file__, "--child", name, "--path", str(path)]
            command += ["--size", str(args.size), "--bins", str(args.bins), "--segments", str(args.segments)]
            done = subprocess.run(command, capture_output=True, text=True, check=False)
            if done.returncode != 0:
                raise SystemExit(f"{name} child failed:\n{done.stdout}\n{done.stderr}")
            m = json.loads(done.stdout.strip().splitlines()[-1])
            rows.append((name, m))

    work = args.frames * pixels
    header = (
        "| backend | chunk | read s | read Mpx·fr/s | reduce s | reduce Mpx·fr/s | "
        "RSS base MiB | RSS peak MiB | growth MiB |"
    )
    print(header)
    print("|" + "|".join("---" for _ in range(header.count("|") - 1)) + "|")
    for name, m in rows:
        print(
            f"| {name} | {m['chunk_frames']} | {m['read_s']:.2f} | {work / m['read_s'] / 1e6:,.0f} | "
            f"{m['reduce_s']:.2f} | {work / m['reduce_s'] / 1e6:,.0f} | {m['baseline_mib']:.0f} | "
            f"{m['peak_mib']:.0f} | {m['peak_mib'] - m['baseline_mib']:.0f} |"
        )


if __name__ == "__main__":
    main()
