"""Multi-tau g2: xpcs_kernels against boost_corr (APS) and scikit-beam, and streamed throughput.

Not a test: a script that prints tables. Run from the repository root:

    python tools/bench/bench_multitau.py [--frames 2000] [--size 256] [--bins 10] [--repeats 3]
        [--backends numpy jax] [--skip-events] [--stages] [--stream-frames 10000 --stream-size 1024]

1. In-memory table: ``--frames`` frames of ``--size``^2 Poisson(0.05) uint8 counts, ring
   partitions with ``--bins`` dynamic bins (10 static bins each), medians of ``--repeats``
   runs after a warm-up (compilation excluded) of:
   - ``xpcs_kernels.multitau.multitau`` on each backend (dense frames), by default (the
     compiled CPU loops where numba is installed and the device is a CPU) and, for
     comparison, with ``compiled=False`` (array operations only);
   - ``xpcs_kernels.multitau_sparse.multitau_events`` on the photon events of the stack;
   - boost_corr ``MultitauCorrelator`` on CPU torch with its defaults (auto queue sized for
     36 GB) and with a tuned queue (``queue_size=64, auto_queue=False``), fed in batches
     of its queue size, plus its APS normalisation;
   - scikit-beam ``skbeam.core.correlation.multi_tau_auto_corr`` when it is installed.
   Ratios are against the fastest xpcs_kernels row.
   With ``--stages``, also each backend's dense time split into its stages (median wall
   and CPU ms): level sums while streaming (``update_multitau``: level 0 and the levels
   filled so far), the final flush of the upper levels, the lag / head / tail sums, and
   the APS normalisation.
2. Streamed mode (``--stream-frames`` > 0): a temporary chunked HDF5 file of
   ``--stream-frames`` x ``--stream-size``^2 uint8 frames is correlated by ``multitau``
   reading it chunk by chunk, in a fresh interpreter per backend; prints pixel x frames
   per second (wall time, compilation included) and the peak resident memory growth.
"""

from __future__ import annotations

import argparse
import importlib.util
import itertools
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


def ring_labels(
    size: int, n_dynamic: int, per_dynamic: int = 10
) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]:
    """Static rings (``n_dynamic * per_dynamic``) nested in ``n_dynamic`` dynamic rings; a
    masked beam stop and corners."""
    yy, xx = np.indices((size, size))
    r = np.hypot(yy - size / 2, xx - size / 2)
    r_min, r_max = size * 0.03, size * 0.5
    n_static = n_dynamic * per_dynamic
    static = np.floor((r - r_min) / (r_max - r_min) * n_static).astype(np.int64) + 1
    static[(r < r_min) | (static > n_static)] = 0
    dynamic = np.where(static > 0, (static - 1) // per_dynamic + 1, 0)
    return static, dynamic


def _median_ms(fn: Callable[[], Any], repeats: int) -> tuple[float, float]:
    """Median wall and process CPU milliseconds (CPU time: all threads; on a loaded machine
    it shows the work done, which wall time inflates)."""
    fn()  # warm: compile, caches
    walls, cpus = [], []
    for _ in range(repeats):
        start, cpu = time.perf_counter(), time.process_time()
        fn()
        walls.append(time.perf_counter() - start)
        cpus.append(time.process_time() - cpu)
    return statistics.median(walls) * 1e3, statistics.median(cpus) * 1e3


def _boost_corr_run(frames: np.ndarray[Any, Any], tuned: bool) -> Callable[[], Any]:
    import torch
    from boost_corr import MultitauCorrelator

    n, h, w = frames.shape
    flat = torch.from_numpy(frames.reshape(n, -1))

    def run() -> Any:
        kw: dict[str, Any] = {"queue_size": 64, "auto_queue": False} if tuned else {}
        corr = MultitauCorrelator(det_size=(h, w), frame_num=n, device="cpu", **kw)
        batch = 64 if tuned else corr.queue_info[1]
        for start in range(0, n, batch):
            corr.process(flat[start : start + batch])
        corr.post_process()
        return corr.get_results()

    return run


def stage_table(
    frames: np.ndarray[Any, Any], static: Any, dynamic: Any, backends: list[str], repeats: int
) -> None:
    """Median wall / CPU ms of each stage of the dense correlator (internal functions)."""
    import importlib

    import xpcs_device

    mt = importlib.import_module("xpcs_kernels.multitau")
    lv = importlib.import_module("xpcs_kernels.multitau_levels")
    nm = importlib.import_module("xpcs_kernels.multitau_normalize")
    names = ("update (streamed levels)", "flush (upper levels)", "level sums", "normalise")
    for name in backends:
        with xpcs_device.use_backend(name) as b:

            def run(b: Any = b) -> list[tuple[float, float]]:
                marks = [(time.perf_counter(), time.process_time())]

                def mark(x: Any) -> None:
                    b.block_until_ready(x)
                    marks.append((time.perf_counter(), time.process_time()))

                state = mt.init_multitau(static, dynamic, n_frames_total=frames.shape[0])
                state = mt.update_multitau(state, frames)
                mark([lvl.products for lvl in state.core.levels])
                core = lv.flush(b, state.core, mt._bound(state), jit=True)
                mark([lvl.products for lvl in core.levels])
                sums = lv.level_sums(b, core)
                mark([s.products for s in sums])
                mark(nm.normalize(b, sums, state.maps).g2)
                return [(w1 - w0, c1 - c0) for (w0, c0), (w1, c1) in itertools.pairwise(marks)]

            run()
            runs = [run() for _ in range(repeats)]
            print(f"  stages ({name}), median wall / CPU ms:")
            for i, stage in enumerate(names):
                wall = statistics.median(r[i][0] for r in runs) * 1e3
                cpu = statistics.median(r[i][1] for r in runs) * 1e3
                print(f"    {stage:<26} {wall:8.1f} {cpu:8.1f}")


def in_memory_table(args: argparse.Namespace) -> None:
    import xpcs_device
    from xpcs_kernels.compiled import use_compiled
    from xpcs_kernels.multitau import multitau
    from xpcs_kernels.multitau_sparse import multitau_events

    rng = np.random.default_rng(0)
    frames = rng.poisson(0.05, size=(args.frames, args.size, args.size)).astype(np.uint8)
    static, dynamic = ring_labels(args.size, args.bins)
    t, r, c = np.nonzero(frames)
    pixel, count = r * args.size + c, frames[t, r, c]
    print(
        f"multi-tau, {args.frames} frames x {args.size}^2 Poisson(0.05) uint8, {args.bins} dynamic / "
        f"{10 * args.bins} static bins, {t.size} photon events, median of {args.repeats}"
    )
    rows: list[tuple[str, tuple[float, float]]] = []
    for name in args.backends:
        with xpcs_device.use_backend(name) as b:

            def dense(b: Any = b) -> Any:
                return b.block_until_ready(multitau(frames, static, dynamic).normalized_g2)

            def events(b: Any = b) -> Any:
                res = multitau_events(
                    t, pixel, count, n_frames=args.frames, static_labels=static, dynamic_labels=dynamic
                )
                return b.block_until_ready(res.normalized_g2)

            def dense_array(b: Any = b) -> Any:
                return b.block_until_ready(multitau(frames, static, dynamic, compiled=False).normalized_g2)

            path = "compiled loops" if use_compiled(None) else "array ops"
            rows.append((f"xpcs_kernels multitau ({name}, dense, {path})", _median_ms(dense, args.repeats)))
            if use_compiled(None):
                array_ms = _median_ms(dense_array, args.repeats)
                rows.append((f"xpcs_kernels multitau ({name}, dense, array ops)", array_ms))
            if not args.skip_events:
                rows.append((f"xpcs_kernels multitau_events ({name})", _median_ms(events, args.repeats)))
    ours = min(ms[0] for _, ms in rows)
    if importlib.util.find_spec("boost_corr") is not None and importlib.util.find_spec("torch") is not None:
        rows.append(
            ("boost_corr CPU, tuned queue (64)", _median_ms(_boost_corr_run(frames, True), args.repeats))
        )
        rows.append(
            (
                "boost_corr CPU, defaults",
                _median_ms(_boost_corr_run(frames, False), max(1, args.repeats // 2)),
            )
        )
    else:
        print("boost_corr / torch not installed: skipped")
    if importlib.util.find_spec("skbeam") is not None:
        from skbeam.core.correlation import multi_tau_auto_corr

        labels = dynamic.astype(np.int64)
        rows.append(
            (
                "scikit-beam multi_tau_auto_corr",
                _median_ms(lambda: multi_tau_auto_corr(4, 2 * 4, labels, frames), 1),
            )
        )
    else:
        print("scikit-beam not installed: skipped")
    width = max(len(name) for name, _ in rows)
    print(f"  {'':<{width}}  {'wall':>10}      {'ratio':>6}  {'CPU (all threads)':>18}")
    for name, (wall, cpu) in rows:
        print(f"  {name:<{width}}  {wall:10.1f} ms   x{wall / ours:6.1f}  {cpu:15.1f} ms")
    if args.stages:
        stage_table(frames, static, dynamic, args.backends, args.repeats)


def _peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _rss_mib() -> float:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / MIB


def stream_child(args: argparse.Namespace) -> None:
    import h5py

    import xpcs_device
    from xpcs_kernels.multitau import multitau

    static, dynamic = ring_labels(args.stream_size, args.bins)
    with xpcs_device.use_backend(args.child) as b, h5py.File(args.path, "r") as f:
        ds = f["entry/data/data"]
        baseline = _rss_mib()
        start = time.perf_counter()
        result = multitau(ds, static, dynamic)
        b.block_until_ready(result.normalized_g2)
        seconds = time.perf_counter() - start
    print(json.dumps({"seconds": seconds, "baseline_mib": baseline, "peak_mib": _peak_rss_mib()}))


def stream_table(args: argparse.Namespace) -> None:
    import h5py

    n, size = args.stream_frames, args.stream_size
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "frames.h5"
        rng = np.random.default_rng(0)
        pool = rng.poisson(0.05, size=(32, size, size)).astype(np.uint8)
        with h5py.File(path, "w") as f:
            ds = f.create_dataset(
                "entry/data/data", shape=(n, size, size), dtype=np.uint8, chunks=(16, size, size)
            )
            for first in range(0, n, 32):
                m = min(32, n - first)
                ds[first : first + m] = pool[rng.permutation(32)[:m]]
        file_mib = path.stat().st_size / MIB
        print(
            f"streamed multi-tau, {n} frames x {size}^2 uint8 from a chunked HDF5 file ({file_mib:.0f} MiB)"
        )
        for name in args.backends:
            cmd = [
                sys.executable,
                __file__,
                "--child",
                name,
                "--path",
                str(path),
                "--stream-size",
                str(size),
                "--bins",
                str(args.bins),
            ]
            out = (
                subprocess.run(cmd, check=True, capture_output=True, text=True)
                .stdout.strip()
                .splitlines()[-1]
            )
            res = json.loads(out)
            rate = n * size * size / res["seconds"]
            print(
                f"  {name:<6} {res['seconds']:8.2f} s   {rate:.3g} pixel x frames/s   peak RSS growth "
                f"{res['peak_mib'] - res['baseline_mib']:7.0f} MiB"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=2000)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--bins", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--backends", nargs="+", default=["numpy", "jax"])
    parser.add_argument("--skip-events", action="store_true")
    parser.add_argument("--stages", action="store_true", help="also time the dense path's stages")
    parser.add_argument("--stream-frames", type=int, default=0)
    parser.add_argument("--stream-size", type=int, default=1024)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--path", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        stream_child(args)
        return
    in_memory_table(args)
    if args.stream_frames > 0:
        stream_table(args)


if __name__ == "__main__":
    main()
