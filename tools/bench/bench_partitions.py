"""Partition labelling and per-bin means on a 2048x2048 (4 Mpixel) detector.

Not a test: a script that prints a table of medians (``time.perf_counter``, warm: JAX
functions are compiled and run once before timing). Rows:

- ``labels q x phi + mask``: :func:`xpcs_kernels.partitions.partition_labels`, the
  jittable core (``b.jit`` on JAX; NumPy runs it as is), 100 q x 36 phi bins;
- ``partition core + relabel``: the core followed by ``relabel_occupied`` (both jitted);
- ``naive numpy digitize``: ``np.digitize`` of q and phi into their edges plus the
  combined label, the usual NumPy implementation (search, not arithmetic);
- ``digitize into 1000 edges``: ``np.digitize`` of q alone into 1000 edges;
- ``bin mean of one frame``: :func:`xpcs_kernels.binning.bin_means` of a 2048x2048 uint16
  frame of photon counts (exact; int32 accumulation on JAX), the frame already an array of
  the backend;
- ``bin mean, prepared partition``: the same with the label map prepared once
  (:func:`xpcs_kernels.binning.prepare_bins`, then ``BinMap.means`` per frame: whole-frame
  int32 accumulation where the largest bin allows it);
- ``bin mean, float64 frame, b.bincount``: ``b.bincount(roi, frame, length=K+1)[1:] /
  num_pts`` on the same counts as float64 (the direct backend call).

Goals on the 2-core reference machine: labels <= 15 ms on JAX (warm), bin mean <= 5 ms.

    python tools/bench/bench_partitions.py [--size 2048] [--repeats 15]
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import statistics
from collections.abc import Callable
from functools import partial
from time import perf_counter
from typing import Any

import numpy as np

from xpcs_device import use_backend
from xpcs_kernels.binning import bin_means, prepare_bins
from xpcs_kernels.partitions import PartitionSpec, make_partition, partition_labels, relabel_occupied

N_Q, N_PHI = 100, 36
GOAL_LABELS_MS = 15.0
GOAL_MEAN_MS = 5.0


def _median_ms(fn: Callable[[], Any], repeats: int, sync: Callable[[Any], Any]) -> float:
    sync(fn())  # warm: compile, caches
    times = []
    for _ in range(repeats):
        start = perf_counter()
        sync(fn())
        times.append(perf_counter() - start)
    return statistics.median(times) * 1e3


def _geometry(size: int) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any], np.ndarray[Any, Any]]:
    """q = k0·r/R and φ (degrees) of a flat detector, with a beam stop and module gaps."""
    k0 = 2 * np.pi / (12.398419843320026 / 10.0)
    i, j = np.indices((size, size), dtype=float)
    dx, dy = (j - 0.48 * size) * 75e-6, -(i - 0.53 * size) * 75e-6
    r = np.hypot(dx, dy)
    q = k0 * r / np.sqrt(r**2 + 5.0**2)
    phi = np.degrees(np.arctan2(dy, dx))
    mask = r > 20 * 75e-6
    mask[:: size // 8, :] = False
    return q, phi, mask


def _naive_numpy(q: Any, phi: Any, mask: Any, q_edges: Any, phi_edges: Any) -> Any:
    lq = np.clip(np.digitize(q, q_edges), 1, N_Q)
    lp = np.clip(np.digitize(phi, phi_edges), 1, N_PHI)
    inside = mask & (q >= q_edges[0]) & (q <= q_edges[-1]) & (phi >= phi_edges[0]) & (phi <= phi_edges[-1])
    return np.where(inside, (lq - 1) * N_PHI + lp, 0)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--size", type=int, default=2048, help="detector edge (size x size pixels)")
    parser.add_argument("--repeats", type=int, default=15, help="timed repetitions per cell (median)")
    args = parser.parse_args(argv)

    q, phi, mask = _geometry(args.size)
    counts = np.random.default_rng(0).poisson(3.0, q.shape)
    frame, frame16 = counts.astype(np.float64), counts.astype(np.uint16)
    backends = ["numpy"] + (["jax"] if importlib.util.find_spec("jax") is not None else [])
    rows: dict[str, dict[str, float]] = {}
    for name in backends:
        with use_backend(name) as b:
            part = make_partition(q, phi, mask, n_q=N_Q, n_phi=N_PHI)
            spec: PartitionSpec = part.spec
            qd, pd, md, fd, f16 = (b.asarray(x) for x in (q, phi, mask, frame, frame16))
            sync = b.block_until_ready
            core = b.jit(partition_labels, static_argnums=3)
            relabel = b.jit(relabel_occupied, static_argnums=1)
            k = part.num_labels
            roi, num_pts = part.roi_map, part.num_pts

            def bin_mean(roi: Any, frame: Any, num_pts: Any, b: Any = b, k: int = k) -> Any:
                return b.bincount(roi, frame, length=k + 1)[1:] / num_pts

            mean = b.jit(bin_mean)

            def full(
                qd: Any, pd: Any, md: Any, spec: PartitionSpec, core: Any = core, relabel: Any = relabel
            ) -> Any:
                return relabel(core(qd, pd, md, spec), spec.n_labels)

            cell = rows.setdefault
            cell("labels q x phi + mask (core)", {})[name] = _median_ms(
                partial(core, qd, pd, md, spec), args.repeats, sync
            )
            cell("partition core + relabel", {})[name] = _median_ms(
                partial(full, qd, pd, md, spec), args.repeats, sync
            )
            cell("bin mean of one frame", {})[name] = _median_ms(
                partial(bin_means, roi, f16, num_pts), args.repeats, sync
            )
            prepared = prepare_bins(roi, k)
            assert np.array_equal(np.asarray(prepared.means(f16)), np.asarray(bin_means(roi, f16, num_pts)))
            cell("bin mean, prepared partition", {})[name] = _median_ms(
                partial(prepared.means, f16), args.repeats, sync
            )
            cell("bin mean, float64 frame, b.bincount", {})[name] = _median_ms(
                partial(mean, roi, fd, num_pts), args.repeats, sync
            )
            if name == "numpy":
                q_edges, phi_edges = np.asarray(part.q_edges), np.asarray(part.phi_edges)
                folded = 180.0 - np.mod(180.0 - phi, 360.0)
                naive = partial(_naive_numpy, q, folded, mask, q_edges, phi_edges)
                assert np.array_equal(naive(), np.asarray(core(qd, pd, md, spec))), "core != naive labels"
                rows["naive numpy digitize q x phi + mask"] = {"numpy": _median_ms(naive, args.repeats, sync)}
                digitize = partial(np.digitize, q, np.linspace(q.min(), q.max(), 1001))
                rows["np.digitize of q into 1000 edges"] = {
                    "numpy": _median_ms(digitize, max(3, args.repeats // 3), sync)
                }

    naive_ms = rows["naive numpy digitize q x phi + mask"]["numpy"]
    print(
        f"{args.size}x{args.size} pixels, {N_Q} q x {N_PHI} phi bins; medians of {args.repeats} (ms); "
        f"load average {os.getloadavg()[0]:.1f}"
    )
    print(f"| {'workload':<38} | {'numpy':>9} | {'jax':>9} | {'numpy/jax':>9} | {'naive/jax':>9} |")
    print(f"|{'-' * 40}|{'-' * 11}|{'-' * 11}|{'-' * 11}|{'-' * 11}|")
    for label, cells in rows.items():
        npy, jx = cells.get("numpy"), cells.get("jax")
        ratio = f"{npy / jx:9.2f}" if npy is not None and jx is not None else f"{'-':>9}"
        vs_naive = f"{naive_ms / jx:9.2f}" if jx is not None else f"{'-':>9}"
        fmt = [f"{x:9.2f}" if x is not None else f"{'-':>9}" for x in (npy, jx)]
        print(f"| {label:<38} | {fmt[0]} | {fmt[1]} | {ratio} | {vs_naive} |")
    best_labels = min(rows["labels q x phi + mask (core)"].values())
    best_mean = min(min(rows[r].values()) for r in ("bin mean of one frame", "bin mean, prepared partition"))
    print(f"goal labels <= {GOAL_LABELS_MS} ms: best {best_labels:.2f} ms")
    print(f"goal bin mean <= {GOAL_MEAN_MS} ms: best {best_mean:.2f} ms")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
