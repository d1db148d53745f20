"""Two-time correlation: xpcs_kernels dense and photon-sparse paths against boost_corr.

Not a test: a script that prints a table. Workload (issue 5): ``--frames`` N frames of
``--size``² pixels, Poisson(``--rate``) uint8 counts (``rate`` ≈ occupancy), ring
partitions with ``--bins`` dynamic bins (~49k pixels inside the rings at 256²) and 10 static
bins per dynamic bin, APS normalisation, float32. Timed, each ``--repeats`` times, median
reported (the first call of a kernel, with JIT compilation, is a separate warm-up):

- ``boost_corr``: ``TwotimeCorrelator`` (CPU torch) process + post_processing + every map
  and g2 (the APS pipeline);
- ``dense``: ``xpcs_kernels.twotime.twotime`` from the (N, H, W) stack, on each backend,
  including the normalisation of the uint8 frames: ``product="tiles"`` (upper block
  triangle, a GEMM per tile on the backend's arrays), ``"whole"`` with ``compiled=False``
  (one ``Y Y^T`` per bin: NumPy's normalisation and BLAS SYRK on NumPy, XLA on JAX) and the
  default (``product="auto"``: on a CPU the host path, numba normalisation and BLAS SYRK,
  the maps handed to the backend);
- ``sparse``: ``xpcs_kernels.twotime_sparse.twotime_events`` from the events of the same
  stack (extracting the events is not timed), the array path (``compiled=False``) with the
  default per-pixel routing (pairs of events for quiet pixels, dense SYRK columns for busy
  ones) and forced to pairs only, and the compiled numba loop (``compiled=True``, the default
  on a CPU) with its default routing and pairs only; the process CPU time (all threads) is
  printed next to them; ``--sweep-rates`` repeats the sparse paths (NumPy) at lower
  occupancies;
- ``gemm floor``: one float32 ``X X^T`` of the selected pixels per bin with NumPy (BLAS SYRK),
  the arithmetic the dense path cannot avoid.

FLOPs of the dense path: ``N^2 P`` (SYRK, upper triangle only); pair updates of the sparse
path: ``sum_p n_p (n_p + 1) / 2``. Run from the repository root:

    python tools/bench/bench_twotime.py [--frames 2000] [--size 256] [--bins 10] [--rate 0.05]
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import time
from collections.abc import Callable
from typing import Any

import numpy as np


def ring_maps(size: int, n_bins: int, per_bin: int) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]:
    """Dynamic ring bins 1..n_bins and static bins nested ``per_bin`` to a dynamic bin."""
    yy, xx = np.indices((size, size))
    r = np.hypot(yy - size / 2, xx - size / 2)
    r_min, r_max = size * 0.08, size * 0.5
    t = (r - r_min) / (r_max - r_min)
    inside = (t >= 0) & (t < 1)
    sta = np.where(inside, np.floor(t * n_bins * per_bin).astype(np.int64) + 1, 0)
    dyn = np.where(inside, (sta - 1) // per_bin + 1, 0)
    return dyn, sta


def median_time(fn: Callable[[], Any], repeats: int) -> float:
    return median_times(fn, repeats)[0]


def median_times(fn: Callable[[], Any], repeats: int) -> tuple[float, float]:
    """Median wall-clock and median process CPU time (all threads) of ``fn``, seconds."""
    walls, cpus = [], []
    for _ in range(repeats):
        t0, c0 = time.perf_counter(), time.process_time()
        fn()
        walls.append(time.perf_counter() - t0)
        cpus.append(time.process_time() - c0)
    return statistics.median(walls), statistics.median(cpus)


DENSE_VARIANTS: tuple[tuple[str, str, bool | None], ...] = (
    ("tiles", "tiles", False),
    ("whole, compiled=False", "whole", False),
    ("default (auto)", "auto", None),
)
"""Rows of the dense path: label, ``product``, ``compiled``."""

SPARSE_VARIANTS: tuple[tuple[str, bool, bool], ...] = (
    ("array auto", False, False),
    ("array pairs only", False, True),
    ("compiled auto", True, False),
    ("compiled pairs only", True, True),
)
"""Rows of the sparse path: label, ``compiled``, pairs only (``dense_threshold = N``)."""


def boost_runner(frames: np.ndarray[Any, Any], dyn: np.ndarray[Any, Any], sta: np.ndarray[Any, Any]) -> Any:
    import torch
    from boost_corr import TwotimeCorrelator

    n, h, w = frames.shape
    dflat, sflat = dyn.ravel(), sta.ravel()
    info: dict[str, list[Any]] = {"dq_slc": [], "sq_slc": [], "dq_idx": [], "sq_idx": []}
    order, pos = [], 0
    for d in np.unique(dflat[dflat > 0]):
        first = pos
        for s in np.unique(sflat[dflat == d]):
            idx = np.flatnonzero(sflat == s)
            order.append(idx)
            info["sq_slc"].append(slice(pos, pos + idx.size))
            info["sq_idx"].append(int(s))
            pos += idx.size
        info["dq_slc"].append(slice(first, pos))
        info["dq_idx"].append(int(d))
    crop = np.concatenate(order)
    data = torch.from_numpy(np.ascontiguousarray(frames.reshape(n, -1)[:, crop]))

    def run() -> None:
        tc = TwotimeCorrelator(info, frame_num=n, det_size=(h, w), mask_crop=torch.from_numpy(crop))
        for start in range(0, n, 256):  # the dataset's batches
            tc.process(data[start : start + 256].float())
        tc.post_processing(smooth_method="sqmap")
        for _ in tc.get_twotime_generator():
            pass

    return run


def sweep_rows(
    args: argparse.Namespace,
    dyn: np.ndarray[Any, Any],
    sta: np.ndarray[Any, Any],
    sel: np.ndarray[Any, Any],
    p: int,
    rng: np.random.Generator,
) -> list[tuple[str, float, str]]:
    """The sparse path (NumPy, float32, default routing) at the lower occupancies of ``--sweep-rates``."""
    from xpcs_device import use_backend
    from xpcs_kernels.twotime_sparse import twotime_events

    n = args.frames
    rows = []
    for rate in args.sweep_rates:
        sweep = rng.poisson(rate, size=(n, args.size, args.size)).astype(np.uint8).reshape(n, -1)
        t_sw, p_sw = np.nonzero(sweep * sel[None, :])
        c_sw = sweep[t_sw, p_sw]
        per = np.bincount(p_sw, minlength=sweep.shape[1])
        sw_pairs = int((per * (per + 1) // 2).sum())
        with use_backend("numpy"):
            for label, compiled in (("array", False), ("compiled", True)):

                def sparse_sweep(
                    t_sw: Any = t_sw, p_sw: Any = p_sw, c_sw: Any = c_sw, compiled: bool = compiled
                ) -> Any:
                    return twotime_events(t_sw, p_sw, c_sw, n, dyn, sta, dtype=np.float32, compiled=compiled)

                sparse_sweep()
                t, cpu = median_times(sparse_sweep, args.repeats)
                rows.append(
                    (
                        f"xpcs sparse numpy f32 {label} occ {t_sw.size / (n * p):.2%}",
                        t,
                        f"{sw_pairs:.2e} pairs, {sw_pairs / t / 1e6:.0f} M pair updates/s, cpu {cpu:.3f} s",
                    )
                )
    return rows


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=2000)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--bins", type=int, default=10)
    parser.add_argument("--rate", type=float, default=0.05)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--backends", nargs="+", default=["numpy", "jax"])
    parser.add_argument("--skip-boost", action="store_true")
    parser.add_argument("--sweep-rates", type=float, nargs="*", default=[0.02, 0.01, 0.005])
    return parser.parse_args()


def main() -> None:
    args = parse_args()

    from xpcs_device import use_backend
    from xpcs_kernels.twotime import twotime
    from xpcs_kernels.twotime_sparse import twotime_events

    rng = np.random.default_rng(0)
    dyn, sta = ring_maps(args.size, args.bins, 10)
    frames = rng.poisson(args.rate, size=(args.frames, args.size, args.size)).astype(np.uint8)
    n = args.frames
    sel = dyn.ravel() > 0
    p = int(sel.sum())
    flat = frames.reshape(n, -1)
    t_ev, p_ev = np.nonzero(flat * sel[None, :])
    c_ev = flat[t_ev, p_ev]
    per_pixel = np.bincount(p_ev, minlength=flat.shape[1])
    pairs = int((per_pixel * (per_pixel + 1) // 2).sum())
    flops = float(n) * n * p  # SYRK: N(N+1)/2 dot products of P multiply-adds, 2 flops each
    occupancy = t_ev.size / (n * p)
    print(
        f"two-time: N={n} frames, {args.size}x{args.size}, {args.bins} bins, {p} pixels in bins, "
        f"occupancy {occupancy:.3%}, {t_ev.size} events, {pairs:.3e} pair updates, "
        f"dense {flops / 1e9:.0f} GFLOP (SYRK); medians of {args.repeats}"
    )
    rows: list[tuple[str, float, str]] = []

    xs = [np.ascontiguousarray(flat[:, dyn.ravel() == d].astype(np.float32)) for d in range(1, args.bins + 1)]
    floor = median_time(lambda: [x @ x.T for x in xs], args.repeats)
    rows.append(("numpy f32 X X^T per bin (SYRK floor)", floor, f"{flops / floor / 1e9:.0f} GFLOP/s"))

    boost_t = None
    if not args.skip_boost and importlib.util.find_spec("boost_corr") is not None:
        run = boost_runner(frames, dyn, sta)
        run()
        boost_t = median_time(run, args.repeats)
        rows.append(
            (
                "boost_corr TwotimeCorrelator CPU f32",
                boost_t,
                f"{flops * 2 / boost_t / 1e9:.0f} GFLOP/s (full GEMM)",
            )
        )

    for name in args.backends:
        if name == "jax" and importlib.util.find_spec("jax") is None:
            continue
        with use_backend(name):
            for label, product, dense_compiled in DENSE_VARIANTS:

                def dense(product: Any = product, compiled: Any = dense_compiled) -> Any:
                    return twotime(frames, dyn, sta, dtype=np.float32, product=product, compiled=compiled)

                dense()
                t = median_time(dense, args.repeats)
                rows.append(
                    (
                        f"xpcs dense {name} f32 {label}",
                        t,
                        f"{flops / t / 1e9:.0f} GFLOP/s, {t / floor:.2f}x floor",
                    )
                )

            for label, compiled, pairs_only in SPARSE_VARIANTS:

                def sparse(compiled: bool = compiled, pairs_only: bool = pairs_only) -> Any:
                    return twotime_events(
                        t_ev,
                        p_ev,
                        c_ev,
                        n,
                        dyn,
                        sta,
                        dtype=np.float32,
                        dense_threshold=n if pairs_only else None,
                        compiled=compiled,
                    )

                sparse()
                t, cpu = median_times(sparse, args.repeats)
                rows.append(
                    (
                        f"xpcs sparse {name} f32 {label}",
                        t,
                        f"{pairs / t / 1e6:.0f} M pair updates/s, cpu {cpu:.3f} s",
                    )
                )

    rows.extend(sweep_rows(args, dyn, sta, sel, p, rng))

    print(f"{'path':<42}{'median s':>10}{'vs boost':>10}  rate")
    for label, t, rate in rows:
        ratio = f"{boost_t / t:.2f}x" if boost_t else "-"
        print(f"{label:<42}{t:>10.3f}{ratio:>10}  {rate}")


if __name__ == "__main__":
    main()
