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
larger than that growth.

A second table times the per-bin mean of one ``--mean-size`` squared frame (uint16 and
uint8 photon counts, float64 for reference) over ``--bins`` ring bins, warm, medians:
raw ``np.bincount(labels, frame) / num_pts`` (labels already ``intp``, the fastest way to
call it) against :func:`xpcs_kernels.binning.bin_means` on each backend (JAX: int32
accumulation where it is exact, the ``auto`` choice, and float64 forced) and against
``BinMap.means`` of a label map prepared once (:func:`xpcs_kernels.binning.prepare_bins`,
what a stream of frames over one partition runs per frame). Goal: <= 5 ms at
2048 x 2048 on the 2-core reference machine. Run from the repository root:

    python tools/bench/bench_reductions.py [--frames 1000] [--size 1024] [--chunk-frames 32]
        [--compression none|gzip|lzf] [--backends numpy jax] [--bins 360] [--segments 10]
        [--mean-size 2048] [--repeats 21] [--skip-stream]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
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


def _median_ms(fn: Callable[[], Any], repeats: int, sync: Callable[[Any], Any]) -> float:
    sync(fn())  # warm: compile, caches
    sync(fn())
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        sync(fn())
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1e3


def bin_mean_table(size: int, n_bins: int, backends: list[str], repeats: int) -> None:
    """Per-bin mean of one frame: raw np.bincount against bin_means on each backend."""
    import xpcs_device
    from xpcs_kernels.binning import Accumulate, bin_means, prepare_bins

    labels = ring_labels(size, n_bins)
    num_pts = np.bincount(labels.ravel(), minlength=n_bins + 1)[1:]
    rng = np.random.default_rng(1)
    counts = rng.poisson(3.0, size=(size, size))
    frames: dict[str, np.ndarray[Any, Any]] = {
        "uint16": counts.astype(np.uint16),
        "uint8": counts.astype(np.uint8),
        "float64": counts.astype(np.float64),
    }
    flat_labels = labels.ravel().astype(np.intp)
    rows: dict[str, dict[str, float]] = {}
    for dtype, frame in frames.items():
        flat = frame.ravel()

        def raw(flat: np.ndarray[Any, Any] = flat) -> Any:
            return np.bincount(flat_labels, flat, minlength=n_bins + 1)[1:] / num_pts

        expected = raw()
        row = rows.setdefault(dtype, {})
        row["np.bincount"] = _median_ms(raw, repeats, lambda x: x)
        for name in backends:
            with xpcs_device.use_backend(name) as b:
                lab, frm, pts = (b.asarray(x) for x in (labels.astype(np.int32), frame, num_pts))
                modes: list[Accumulate] = ["auto", "float64"] if name != "numpy" else ["auto"]
                for mode in modes:

                    def ours(lab: Any = lab, frm: Any = frm, pts: Any = pts, mode: Accumulate = mode) -> Any:
                        return bin_means(lab, frm, pts, accumulate=mode)

                    assert np.array_equal(np.asarray(ours()), expected), (
                        f"{name} {mode} differs from np.bincount"
                    )
                    row[f"{name} {mode}"] = _median_ms(ours, repeats, b.block_until_ready)
                prepared = prepare_bins(lab, n_bins)

                def prep(frm: Any = frm, prepared: Any = prepared) -> Any:
                    return prepared.means(frm)

                assert np.array_equal(np.asarray(prep()), expected), (
                    f"{name} prepared differs from np.bincount"
                )
                row[f"{name} prepared"] = _median_ms(prep, repeats, b.block_until_ready)
    columns = list(rows["uint16"])
    print(
        f"\nbin mean of one {size}x{size} frame, {n_bins} ring bins; medians of {repeats} (ms); "
        f"load average {os.getloadavg()[0]:.1f}"
    )
    print("| frame | " + " | ".join(columns) + " | np.bincount / best |")
    print("|" + "---|" * (len(columns) + 2))
    for dtype, row in rows.items():
        best = min(v for k, v in row.items() if k != "np.bincount")
        cells = " | ".join(f"{row[c]:.2f}" if c in row else "-" for c in columns)
        print(f"| {dtype} | {cells} | {row['np.bincount'] / best:.1f}x |")


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
    parser.add_argument("--mean-size", type=int, default=2048, help="frame edge of the bin-mean table")
    parser.add_argument("--repeats", type=int, default=21, help="timed repetitions of a bin mean")
    parser.add_argument("--skip-stream", action="store_true", help="only the bin-mean table")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--path", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args)
        return

    backends = [name for name in args.backends if name != "jax" or importlib.util.find_spec("jax")]
    if args.skip_stream:
        bin_mean_table(args.mean_size, args.bins, backends, args.repeats)
        return
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
    bin_mean_table(args.mean_size, args.bins, backends, args.repeats)


if __name__ == "__main__":
    main()
