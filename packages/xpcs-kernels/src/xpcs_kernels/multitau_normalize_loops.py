"""numba loops of the bin sums of the multi-tau APS normalisation on the CPU (see
:mod:`xpcs_kernels.compiled`).

:func:`level_bin_sums` computes, for the delay rows of one level, the sums that
:mod:`xpcs_kernels.multitau_normalize` otherwise forms with matrix products or ``bincount``
over ``(rows, P)`` temporaries: per static bin the sums of the lag products, of the head
and tail sums and of the level totals; per dynamic bin the number of pixels with a
per-pixel g2 (``IP IF > 0``), the sum of those g2 and (second pass, around the bin mean)
the sum of their squared deviations. The small per-bin arithmetic stays in the array code.

Layout: each thread takes whole delay rows (rows ``c, c + n_chunks, ...``) and walks the
pixels in order, scatter-adding into its row's bins; the per-pixel g2 of the row is kept
in the thread's scratch row for the second pass (read from the cache, not recomputed).
Label 0 (pixels in no bin) is a bin of its own, dropped by the caller, so the loop has no
branch on it. No ``fastmath``: the NaN test of the second pass must hold.
"""

from __future__ import annotations

from typing import Any

import numba
import numpy as np
from numba import typed

from xpcs_kernels.compiled import parallel_region

__all__ = ["TILE", "bin_sums", "threads", "tile_segments"]

_JIT: dict[str, Any] = {"cache": True, "nogil": True, "boundscheck": False}


TILE = 4096
"""Pixels per tile: a tile's level sums and per-pixel g2 (4 x 32 KiB) stay in the L2 cache
while its bins are summed."""


def threads() -> int:
    """Threads of numba's parallel loops (one scratch row each)."""
    return int(numba.get_num_threads())


def tile_segments(static: np.ndarray[Any, Any], tile: int) -> tuple[np.ndarray[Any, Any], ...]:
    """The pixels of each tile of ``tile`` pixels grouped by static label: ``order``
    (pixel indices, tile by tile, label by label, pixels in no bin left out), ``start``
    (``n_seg + 1`` offsets of the segments into ``order``), ``label`` (static label of each
    segment) and ``tile_start`` (``n_tiles + 1`` offsets of each tile's segments)."""
    n = static.shape[0]
    key = (np.arange(n, dtype=np.int64) // tile) * (int(static.max(initial=0)) + 1) + static
    order = np.argsort(key, kind="stable")
    order = order[static[order] > 0]
    k = key[order]
    first = np.flatnonzero(np.r_[True, k[1:] != k[:-1]]) if order.size else np.zeros(0, np.int64)
    n_tiles = (n + tile - 1) // tile
    tile_start = np.searchsorted(order[first] // tile, np.arange(n_tiles + 1))
    return (
        order.astype(np.int32),
        np.r_[first, order.size].astype(np.int64),
        static[order[first]].astype(np.int32),
        tile_start.astype(np.int64),
    )


@numba.njit(**_JIT)
def _row_sums(
    products: Any,
    head: Any,
    tail: Any,
    total: Any,
    pairs: float,
    segments: tuple[Any, Any, Any, Any],
    tile: int,
    s2d: Any,
    g2: Any,
    stat: Any,
    dyn: Any,
) -> None:
    """One delay row: ``stat[0|1|2, k]`` sums of products / head / tail of static bin ``k``;
    ``dyn[0|1|2, d]`` count, g2 sum and squared deviations of dynamic bin ``d``.

    Tile by tile: the per-pixel g2 of the tile (a contiguous, vectorised loop; NaN where
    ``IP IF`` is 0), then each of the tile's label segments summed in registers (no
    scatter-add per pixel, whose store-to-load chains are slow). Accumulated in arrays of
    this thread, written out once (rows of other threads share cache lines)."""
    order, start, label, tile_start = segments
    n_pixels = products.shape[0]
    acc = np.zeros(stat.shape)
    dacc = np.zeros(dyn.shape)
    nan = np.nan
    for ti in range(tile_start.shape[0] - 1):
        j0 = ti * tile
        j1 = min(n_pixels, j0 + tile)
        p_, h_, t_, x_, g_ = products[j0:j1], head[j0:j1], tail[j0:j1], total[j0:j1], g2[j0:j1]
        for j in range(j1 - j0):
            den = (x_[j] - t_[j]) * (x_[j] - h_[j])  # early * late: IP IF up to the row's norm
            g_[j] = p_[j] * pairs / den if den > 0 else nan
        for k in range(tile_start[ti], tile_start[ti + 1]):
            sp = sh = st = count = sg = 0.0
            for i in range(start[k], start[k + 1]):
                j = order[i]
                sp += products[j]
                sh += head[j]
                st += tail[j]
                g = g2[j]
                if not np.isnan(g):
                    count += 1.0
                    sg += g
            s = label[k]
            d = s2d[s]
            acc[0, s] += sp
            acc[1, s] += sh
            acc[2, s] += st
            dacc[0, d] += count
            dacc[1, d] += sg
    # second pass: squared deviations from the bin mean (g2 of the row from the cache)
    for k in range(label.shape[0]):
        d = s2d[label[k]]
        mean = dacc[1, d] / dacc[0, d] if dacc[0, d] > 0 else 0.0
        q = 0.0
        for i in range(start[k], start[k + 1]):
            v = g2[order[i]] - mean
            if not np.isnan(v):  # pixels without a g2 are left out
                q += v * v
        dacc[2, d] += q
    stat[:] = acc
    dyn[:] = dacc


@numba.njit(parallel=True, **_JIT)
def _bin_sums(
    products: Any,
    head: Any,
    tail: Any,
    total: Any,
    row_level: Any,
    row_lag: Any,
    pairs: Any,
    segments: tuple[Any, Any, Any, Any],
    tile: int,
    s2d: Any,
    scratch: Any,
    stat: Any,
    dyn: Any,
    totals: Any,
) -> None:
    """:func:`bin_sums` in one parallel region (a region per level would wait for both
    threads at every level: a time slice each when the machine is busy)."""
    order, start, label, _ = segments
    n_rows = row_level.shape[0]
    n_chunks = scratch.shape[0]
    for c in numba.prange(n_chunks):
        for lvl in range(c, len(total), n_chunks):
            level_total = total[lvl]
            for k in range(label.shape[0]):
                x = 0.0
                for i in range(start[k], start[k + 1]):
                    x += level_total[order[i]]
                totals[lvl, label[k]] += x
        for r in range(c, n_rows, n_chunks):
            lvl, q = row_level[r], row_lag[r]
            _row_sums(
                products[lvl][q],
                head[lvl][q],
                tail[lvl][q],
                total[lvl],
                pairs[r],
                segments,
                tile,
                s2d,
                scratch[c],
                stat[r],
                dyn[r],
            )


def bin_sums(
    products: list[np.ndarray[Any, Any]],
    head: list[np.ndarray[Any, Any]],
    tail: list[np.ndarray[Any, Any]],
    total: list[np.ndarray[Any, Any]],
    pairs: np.ndarray[Any, Any],
    segments: tuple[np.ndarray[Any, Any], ...],
    tile: int,
    s2d: np.ndarray[Any, Any],
    n_static: int,
    n_dynamic: int,
) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any], np.ndarray[Any, Any]]:
    """The bin sums of every delay row of the levels.

    Per level ``l``: ``products[l]``, ``head[l]``, ``tail[l]`` ``(R_l, P)`` and ``total[l]``
    ``(P,)`` float64 C-contiguous level sums. ``pairs``: ``(R,)`` frame pairs ``n - tau``
    of each row (levels in order); ``segments``: :func:`tile_segments` of the static labels
    for tiles of ``tile`` pixels; ``s2d``: ``(n_static + 1,)`` int32 dynamic label of each static
    label. Returns ``stat`` ``(R, 3, n_static + 1)`` (sums of products, head, tail per static
    bin), ``dyn`` ``(R, 3, n_dynamic + 1)`` (pixels with a g2, their g2 sum, squared
    deviations from the bin mean) and ``totals`` ``(L, n_static + 1)`` level totals per
    static bin; column 0 (label 0) stays 0."""
    rows = [p.shape[0] for p in products]
    n_rows = sum(rows)
    row_level = np.repeat(np.arange(len(rows), dtype=np.int64), rows)
    row_lag = np.concatenate([np.arange(n, dtype=np.int64) for n in rows])
    stat = np.zeros((n_rows, 3, n_static + 1))
    dyn = np.zeros((n_rows, 3, n_dynamic + 1))
    totals = np.zeros((len(rows), n_static + 1))
    # one scratch row per thread, allocated once (fresh pages per row would fault)
    scratch = np.empty((max(1, min(threads(), n_rows)), total[0].shape[0]))
    with parallel_region():
        _bin_sums(
            *(typed.List(x) for x in (products, head, tail, total)),
            row_level,
            row_lag,
            pairs,
            segments,
            tile,
            s2d,
            scratch,
            stat,
            dyn,
            totals,
        )
    return stat, dyn, totals
