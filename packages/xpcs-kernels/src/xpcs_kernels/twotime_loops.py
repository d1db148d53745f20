"""Compiled (numba) loops of the two-time correlation on the CPU.

Imported only when :func:`xpcs_kernels.compiled.use_compiled` says so (``import xpcs_kernels``
never imports numba). Each is a pure function of host arrays.

Photon events (:func:`xpcs_kernels.twotime_sparse.twotime_events`), three steps:

- :func:`split_by_bin`: the events of the selected pixels (values checked on the way),
  grouped by dynamic bin with a stable counting sort;
- :func:`prepare_bins`: bin by bin in parallel, the events sorted by (column, frame) (one
  counting sort when they come in frame order), repeated (pixel, frame) events summed, the
  normalised values ``y = X sqrt(P_d) / S_d(t)`` (APS or plain) and the frame sums
  ``S_d(t)``, with the same operations as the array formulation;
- :func:`bin_numerator`: one bin's map ``C(t1, t2) = sum_p y(p, t1) y(p, t2)``, row by row.
  Row ``t1`` takes every event at frame ``t1`` and its pixel's later events (``t2 >= t1``),
  accumulated in a float64 row of ``N`` values that stays in the L1 cache (the scattered
  updates of a whole ``N x N`` accumulator miss the cache); the rows are spread over the
  threads interleaved (row ``t1`` has ``~N - t1`` updates) and no two threads write one row,
  so no atomics. The finished row is stored in the map's dtype, its diagonal sums taken from
  the stored values, and the lower triangle mirrored from the upper one in cache-sized tiles.

Dense frames (:func:`xpcs_kernels.twotime.twotime` on the host path):
:func:`normalise_frames`, ``Y`` and ``S`` of uint8 / uint16 frames, frames over the threads.
"""

from __future__ import annotations

from typing import Any

import numba
import numpy as np
from numba import prange

__all__ = ["bin_numerator", "n_threads", "normalise_frames", "prepare_bins", "row_chunks", "split_by_bin"]

MIRROR_TILE = 64
"""Side of the square tiles in which the lower triangle is copied from the upper one (two
64 x 64 float64 tiles fit in L1)."""

ROW_CHUNKS_PER_THREAD = 4
"""Interleaved row sets per thread (balances rows of unequal work)."""


def n_threads() -> int:
    """Threads of the parallel loops (numba's setting)."""
    return int(numba.get_num_threads())


def row_chunks() -> int:
    """Row sets of :func:`bin_numerator`: :data:`ROW_CHUNKS_PER_THREAD` per numba thread."""
    return int(numba.get_num_threads()) * ROW_CHUNKS_PER_THREAD


@numba.njit(cache=True, nogil=True, parallel=True)
def split_by_bin(
    frame: Any,
    pixel: Any,
    count: Any,
    col_of_pixel: Any,
    bin_of_col: Any,
    n_bins: int,
    n_frames: int,
    n_parts: int,
) -> tuple[bool, Any, Any, Any, Any, bool]:
    """The events with ``col_of_pixel[pixel] >= 0`` and ``count > 0``, grouped by bin (stable):
    ``(valid, bin_starts (n_bins + 1,), frame, column, count, in_frame_order)``. ``valid`` is
    False (and the rest empty) when an event has a frame outside ``0 .. n_frames - 1``, a
    pixel outside ``col_of_pixel`` or a negative, NaN or infinite count (the caller says
    which). ``n_parts`` ranges of events are read in parallel."""
    m = frame.size
    n_pix = col_of_pixel.size
    col = np.empty(m, np.int32)  # the column of each event, -1 if dropped
    per_part = np.zeros((n_parts, n_bins), np.int64)
    bad = np.zeros(n_parts, np.bool_)
    disorder = np.zeros(n_parts, np.bool_)
    for r in prange(n_parts):
        for i in range(m * r // n_parts, m * (r + 1) // n_parts):
            fi, pi, ci = frame[i], pixel[i], count[i]
            if fi < 0 or fi >= n_frames or pi < 0 or pi >= n_pix or not ci >= 0 or ci == np.inf:
                bad[r] = True
                break
            if i > 0 and fi < frame[i - 1]:
                disorder[r] = True
            c = col_of_pixel[pi]
            if ci == 0:
                c = -1
            col[i] = c
            if c >= 0:
                per_part[r, bin_of_col[c]] += 1
    bin_starts = np.zeros(n_bins + 1, np.int64)
    if bad.any():
        empty = np.zeros(0, np.int64)
        return (
            False,
            bin_starts,
            empty.astype(np.uint32),
            empty.astype(np.int32),
            empty.astype(np.float64),
            False,
        )
    # Part r's events of bin k go after those of the parts before it (stable).
    part_starts = np.empty((n_parts, n_bins), np.int64)
    for k in range(n_bins):
        w = bin_starts[k]
        for r in range(n_parts):
            part_starts[r, k] = w
            w += per_part[r, k]
        bin_starts[k + 1] = w
    n_keep = bin_starts[n_bins]
    bf = np.empty(n_keep, np.uint32)
    bc = np.empty(n_keep, np.int32)
    bv = np.empty(n_keep, np.float64)
    for r in prange(n_parts):
        pos = part_starts[r].copy()
        for i in range(m * r // n_parts, m * (r + 1) // n_parts):
            c = col[i]
            if c >= 0:
                k = bin_of_col[c]
                w = pos[k]
                pos[k] += 1
                bf[w] = frame[i]
                bc[w] = c
                bv[w] = count[i]
    return True, bin_starts, bf, bc, bv, not disorder.any()


@numba.njit(cache=True, nogil=True)
def _counting_sort(key: Any, n_keys: int, a: Any, b: Any, c: Any) -> tuple[Any, Any, Any, Any]:
    """``a, b, c`` permuted stably by ``key`` (``0 .. n_keys - 1``), and the start of each key
    (``n_keys + 1``)."""
    m = key.size
    starts = np.zeros(n_keys + 1, np.int64)
    for i in range(m):
        starts[key[i] + 1] += 1
    for k in range(n_keys):
        starts[k + 1] += starts[k]
    pos = starts[:-1].copy()
    sa, sb, sc = np.empty_like(a), np.empty_like(b), np.empty_like(c)
    for i in range(m):
        w = pos[key[i]]
        pos[key[i]] += 1
        sa[w] = a[i]
        sb[w] = b[i]
        sc[w] = c[i]
    return starts, sa, sb, sc


@numba.njit(cache=True, nogil=True)
def _aps_values(
    c0: int,
    c1: int,
    ef: Any,
    y: Any,
    col_lo: Any,
    col_hi: Any,
    static_of_col: Any,
    static_counts: Any,
    n_frames: int,
) -> None:
    """The counts in ``y`` of columns ``c0 .. c1 - 1`` divided, in place, by their static
    bin's mean count in their frame (1 where that is 0)."""
    s0 = static_of_col[c0]
    n_static = static_of_col[c1 - 1] - s0 + 1
    mean = np.zeros((n_frames, n_static))
    for c in range(c0, c1):
        s = static_of_col[c] - s0
        for e in range(col_lo[c], col_hi[c]):
            mean[ef[e], s] += y[e]
    for t in range(n_frames):
        for s in range(n_static):
            mean[t, s] = mean[t, s] / static_counts[s0 + s]
    for c in range(c0, c1):
        s = static_of_col[c] - s0
        for e in range(col_lo[c], col_hi[c]):
            mt = mean[ef[e], s]
            y[e] = y[e] / (mt if mt > 0 else 1.0)


@numba.njit(cache=True, nogil=True)
def _normalise_bin(
    c0: int,
    c1: int,
    ef: Any,
    y: Any,
    col_lo: Any,
    col_hi: Any,
    num_pts: int,
    static_of_col: Any,
    static_counts: Any,
    aps: bool,
    sums: Any,
) -> None:
    """The counts in ``y`` of columns ``c0 .. c1 - 1`` (one bin) replaced, in place, by
    ``y = v sqrt(P) / S(t)``; the frame sums ``S(t)`` of ``v`` into ``sums``. Same operations
    as the array formulation (``v = count / (S_static(t) / P_static)`` for APS)."""
    n_frames = sums.size
    if aps:
        _aps_values(c0, c1, ef, y, col_lo, col_hi, static_of_col, static_counts, n_frames)
    sums[:] = 0.0
    for c in range(c0, c1):
        for e in range(col_lo[c], col_hi[c]):
            sums[ef[e]] += y[e]
    scale = np.zeros(n_frames)
    root = np.sqrt(np.float64(num_pts))
    for t in range(n_frames):
        if sums[t] > 0:
            scale[t] = root / sums[t]
    for c in range(c0, c1):
        for e in range(col_lo[c], col_hi[c]):
            y[e] = y[e] * scale[ef[e]]


@numba.njit(cache=True, nogil=True)
def _frame_order_bin(
    lo: int,
    c0: int,
    c1: int,
    max_events: int,
    ef: Any,
    y: Any,
    col_lo: Any,
    col_hi: Any,
    frame_starts: Any,
    first: Any,
    last: Any,
    value: Any,
) -> None:
    """The events of the columns ``c0 .. c1 - 1`` with at most ``max_events`` events, by frame,
    from position ``lo`` on (see :func:`bin_numerator`)."""
    n_frames = frame_starts.size - 1
    fs = frame_starts
    fs[:] = 0
    for c in range(c0, c1):
        if col_hi[c] - col_lo[c] <= max_events:
            for e in range(col_lo[c], col_hi[c]):
                fs[ef[e] + 1] += 1
    fs[0] = lo
    for t in range(n_frames):
        fs[t + 1] += fs[t]
    pos = fs[:-1].copy()
    for c in range(c0, c1):
        if col_hi[c] - col_lo[c] <= max_events:
            for e in range(col_lo[c], col_hi[c]):
                q = pos[ef[e]]
                pos[ef[e]] += 1
                first[q] = e
                last[q] = col_hi[c]
                value[q] = y[e]


@numba.njit(cache=True, nogil=True)
def _prepare_bin(
    lo: int,
    hi: int,
    c0: int,
    c1: int,
    bf: Any,
    bc: Any,
    bv: Any,
    in_order: bool,
    n_frames: int,
    ef: Any,
    y: Any,
    col_lo: Any,
    col_hi: Any,
) -> None:
    """The events ``lo .. hi - 1`` of ``bf, bc, bv`` (one bin: columns ``c0 .. c1 - 1``)
    sorted by (column, frame) into ``ef, y`` from ``lo`` on, repeated events summed; the
    column runs into ``col_lo, col_hi``."""
    # Stable counting sorts by frame (unless the events are in frame order) then by column:
    # within a bin the open write positions stay in cache.
    tf, tc, tv = bf[lo:hi], bc[lo:hi], bv[lo:hi]
    if not in_order:
        _, tf, tc, tv = _counting_sort(tf, n_frames, tf, tc, tv)
    starts, gf, _, gv = _counting_sort(tc - c0, c1 - c0, tf, tc, tv)
    # Sum repeated (column, frame) events (adjacent now), in event order.
    w = lo
    for c in range(c1 - c0):
        col_lo[c0 + c] = w
        for i in range(starts[c], starts[c + 1]):
            if w > col_lo[c0 + c] and ef[w - 1] == gf[i]:
                y[w - 1] += gv[i]
            else:
                ef[w] = gf[i]
                y[w] = gv[i]
                w += 1
        col_hi[c0 + c] = w


@numba.njit(cache=True, nogil=True, parallel=True)
def prepare_bins(
    bin_starts: Any,
    bf: Any,
    bc: Any,
    bv: Any,
    in_order: bool,
    col_bounds: Any,
    num_pts: Any,
    static_of_col: Any,
    static_counts: Any,
    aps: bool,
    max_events: int,
    n_frames: int,
    n_threads: int,
) -> tuple[Any, ...]:
    """The events of :func:`split_by_bin`, bin by bin in parallel: sorted by (column, frame),
    repeated events summed, normalised and scaled. Returns ``(frame, y, col_lo, col_hi,
    frame_starts (n_bins, N + 1), first, last, value, sums (n_bins, N))``: column ``c``'s
    events are ``col_lo[c] : col_hi[c]`` of ``frame`` and ``y = v sqrt(P_d) / S_d(t)``
    (0 where ``S_d(t) = 0``), ``sums`` are the frame sums ``S_d(t)`` of the normalised counts
    ``v`` (``count / <count>_static(t)`` for APS, ``count`` for plain), and the other arrays
    the frame order of the events of columns with at most ``max_events`` events (see
    :func:`bin_numerator`)."""
    n_bins = col_bounds.size - 1
    n_ev = bin_starts[n_bins]
    n_cols = col_bounds[n_bins]
    ef = np.zeros(n_ev, np.uint32)  # unsigned: no negative-index check in the pair loop
    y = np.zeros(n_ev, np.float64)
    col_lo = np.zeros(n_cols, np.int64)
    col_hi = np.zeros(n_cols, np.int64)
    frame_starts = np.zeros((n_bins, n_frames + 1), np.int64)
    first = np.zeros(n_ev, np.int64)
    last = np.zeros(n_ev, np.int64)
    value = np.zeros(n_ev, np.float64)
    sums = np.zeros((n_bins, n_frames))
    # Bins by decreasing size dealt round-robin to the threads (balanced without a scheduler).
    order = np.argsort(-(bin_starts[1:] - bin_starts[:-1]))
    for w in prange(n_threads):
        for i in range(w, n_bins, n_threads):
            k = order[i]
            lo, c0, c1 = bin_starts[k], col_bounds[k], col_bounds[k + 1]
            _prepare_bin(lo, bin_starts[k + 1], c0, c1, bf, bc, bv, in_order, n_frames, ef, y, col_lo, col_hi)
            _normalise_bin(
                c0, c1, ef, y, col_lo, col_hi, num_pts[k], static_of_col, static_counts, aps, sums[k]
            )
            _frame_order_bin(
                lo, c0, c1, max_events, ef, y, col_lo, col_hi, frame_starts[k], first, last, value
            )
    return ef, y, col_lo, col_hi, frame_starts, first, last, value, sums


@numba.njit(cache=True, nogil=True)
def _store_row(row: Any, dst: Any, t1: int, add: bool, d: Any, seg_len: int, n_segments: int) -> None:
    """Row ``t1`` of the upper triangle into ``dst`` (added to its values with ``add``), in the
    map's dtype, and the stored values into the diagonal sums ``d (n_segments + 1, N)``."""
    n = row.size
    if add:
        for j in range(t1, n):
            dst[j] += row[j]
    else:
        for j in range(t1, n):
            dst[j] = row[j]
    d0 = d[0]
    for j in range(t1, n):
        d0[j - t1] += np.float64(dst[j])
    seg = t1 // seg_len
    if seg < n_segments:
        ds = d[seg + 1]
        for j in range(t1, (seg + 1) * seg_len):
            ds[j - t1] += np.float64(dst[j])


@numba.njit(cache=True, nogil=True, parallel=True)
def bin_numerator(
    frame: Any,
    y: Any,
    frame_starts: Any,
    first: Any,
    last: Any,
    value: Any,
    out: Any,
    add: bool,
    full_map: bool,
    n_chunks: int,
    seg_len: int,
    n_segments: int,
) -> Any:
    """One bin's ``C(t1, t2) = sum_p y(p, t1) y(p, t2)`` from its events (see the module
    docstring; ``frame`` unsigned, which spares the negative-index check of every update;
    the other event arrays from :func:`frame_order`) and its diagonal sums
    ``(n_segments + 1, N)`` float64 over the run and within each segment of ``seg_len``
    frames (as ``_row_diagonal_sums``).

    ``full_map``: ``out`` is the ``(N, N)`` map, written whole (``add``: its values, e.g. the
    dense part of busy pixels, are added to, else overwritten); otherwise ``out`` is an
    ``(n_chunks, N)`` scratch of the map's dtype (the diagonal sums only). Row ``t1`` goes to
    row set ``t1 % n_chunks`` (a few sets per thread)."""
    n = frame_starts.size - 1
    diag = np.zeros((n_chunks, n_segments + 1, n))
    for ch in prange(n_chunks):
        row = np.empty(n)
        for t1 in range(ch, n, n_chunks):
            row[t1:] = 0.0
            for q in range(frame_starts[t1], frame_starts[t1 + 1]):
                vq = value[q]
                for j in range(first[q], last[q]):
                    row[frame[j]] += vq * y[j]
            _store_row(row, out[t1] if full_map else out[ch], t1, add, diag[ch], seg_len, n_segments)
    if full_map:
        n_tiles = (n + MIRROR_TILE - 1) // MIRROR_TILE
        for bi in prange(n_tiles):  # tile row bi of the lower triangle, from tile column bi above
            r0 = bi * MIRROR_TILE
            r1 = min(n, r0 + MIRROR_TILE)
            for bj in range(bi + 1):
                c0 = bj * MIRROR_TILE
                for r in range(r0, r1):
                    for c in range(c0, min(r, c0 + MIRROR_TILE)):
                        out[r, c] = out[c, r]
    total = np.zeros((n_segments + 1, n))
    for ch in range(n_chunks):
        total += diag[ch]
    return total


@numba.njit(cache=True, nogil=True, parallel=True)
def normalise_frames(
    flat: Any,
    pix: Any,
    bounds: Any,
    bin_of: Any,
    sizes: Any,
    sqrt_pts: Any,
    aps: bool,
    out: Any,
    sums_out: Any,
) -> None:
    """The dense path's ``Y`` and ``S`` (see ``twotime._numpy_normalise_into``, same formulas)
    of unsigned integer frames ``flat (m, H*W)``, frame by frame in parallel: the exact group
    sums ``g`` over ``pix[bounds[k]:bounds[k + 1]]``, ``factor = 1 / (g / size)`` (APS; 1 for
    an empty group or plain), ``S_d = sum_k g factor`` over the groups of bin ``d``, and
    ``Y = count * (factor sqrt(P_d) / S_d)`` (0 where ``S_d = 0``), the scale rounded to the
    dtype of ``out (m, P)`` before the product, as the array path does."""
    m = flat.shape[0]
    n_groups = bounds.size - 1
    n_bins = sums_out.shape[1]
    for t in prange(m):
        row, o = flat[t], out[t]
        factor = np.empty(n_groups)
        scale = np.empty(n_groups, dtype=out.dtype)
        sums = np.zeros(n_bins)
        for k in range(n_groups):
            acc = 0
            for i in range(bounds[k], bounds[k + 1]):
                v = row[pix[i]]
                o[i] = v  # exact in float32 / float64; scaled in place below (one gather)
                acc += v
            g = np.float64(acc)
            mean = g / sizes[k]
            factor[k] = 1.0 / mean if aps and mean > 0 else 1.0
            sums[bin_of[k]] += g * factor[k]
        for k in range(n_groups):
            s = sums[bin_of[k]]
            scale[k] = factor[k] * (sqrt_pts[bin_of[k]] / s) if s > 0 else 0.0
            sc = scale[k]
            for i in range(bounds[k], bounds[k + 1]):
                o[i] *= sc  # one product in out's dtype, as the array path
        sums_out[t] = sums
