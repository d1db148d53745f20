"""Two-time correlation of photon events ``(frame, pixel, count)``: cost grows with photon pairs.

Same definitions and results as :func:`xpcs_kernels.twotime.twotime` (C, g2 along the
diagonals, segments, normalisations ``"aps"`` / ``"plain"``), for photon-sparse data given
as events: frame index, flat pixel index ``row * W + col`` and count (events of the same
frame and pixel are summed; pixels outside the selected bins are ignored).

The numerator ``sum_p X(p, t1) X(p, t2)`` is a sum over pairs of events on the same
pixel: events are sorted by (pixel, frame) and, for each offset ``k`` inside a pixel's
run, every event is paired with the one ``k`` places later (upper triangle, ``t1 <= t2``);
the pair products are scattered into ``N x N`` per bin with one compiled ``bincount`` per
batch of ``pair_batch`` pairs. The work is ``sum_p n_p (n_p + 1) / 2`` pair updates
(``n_p`` events on pixel ``p``) plus ``O(N^2)`` per bin for the normalisation and the
diagonals, against ``N^2 P`` for dense frames: the occupancy squared, 0.25 % at 5 %
occupancy. The pair enumeration is index bookkeeping in NumPy on the host; the scatter
and everything after runs on the active backend.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any, cast

import numpy as np

import xpcs_device
from xpcs_kernels.reductions import FrameValueError
from xpcs_kernels.twotime import (
    DelaySpec,
    Normalization,
    TwoTime,
    _check_budget,
    _check_dtype_arg,
    _delay_plan,
    _diagonal_sums,
    _finish_g2,
    _positive_int,
    _segment_length,
    _select,
    _Selection,
    _warn_zero_frames,
    twotime_memory_bytes,
)
from xpcs_protocol import Array, BackendProtocol

__all__ = ["twotime_events"]

DEFAULT_PAIR_BATCH = 1 << 22
"""Pairs scattered per compiled call (two int64/float64 arrays of 32 MiB)."""


@functools.lru_cache(maxsize=16)
def _scatter_kernel(b: BackendProtocol, length: int, jit: bool) -> Callable[..., Any]:
    def kernel(acc: Array, index: Array, weight: Array) -> Array:
        return acc + b.bincount(index, weight, length=length)

    return b.jit(kernel) if jit else kernel


@functools.lru_cache(maxsize=16)
def _map_kernel(
    b: BackendProtocol, n_segments: int, seg_len: int, dtype: str, jit: bool
) -> Callable[..., Any]:
    """Upper numerator to the symmetric map, with its diagonal sums and counts."""

    def kernel(upper: Array, n_pix: Array, inv: Array, defined: Array) -> Any:
        n = upper.shape[0]
        full = upper + b.transpose(upper)
        c = b.astype(full * (n_pix * inv[:, None] * inv[None, :]), dtype)
        ok = defined[:, None] * defined[None, :]
        vals = b.where(ok > 0, b.astype(c, np.float64), 0.0)
        sums = [_diagonal_sums(b, vals)[n - 1 :]]
        counts = [_diagonal_sums(b, ok)[n - 1 :]]
        for s in range(n_segments):
            lo, hi = s * seg_len, (s + 1) * seg_len
            pad = n - seg_len
            sums.append(b.pad(_diagonal_sums(b, vals[lo:hi, lo:hi])[seg_len - 1 :], (0, pad)))
            counts.append(b.pad(_diagonal_sums(b, ok[lo:hi, lo:hi])[seg_len - 1 :], (0, pad)))
        return c, b.stack(sums), b.stack(counts)

    return b.jit(kernel) if jit else kernel


def _int_events(values: Any, name: str) -> np.ndarray[Any, Any]:
    arr = np.asarray(values)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be a 1-D array of events, got shape {arr.shape}")
    if arr.size and arr.dtype.kind not in "iu":
        raise TypeError(f"{name} must hold integer indices, got dtype {arr.dtype}")
    return arr.astype(np.int64)


def _check_events(
    frame: Any, pixel: Any, count: Any, n_frames: int, n_pixels: int
) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any], np.ndarray[Any, Any]]:
    f = _int_events(frame, "frame")
    p = _int_events(pixel, "pixel")
    c = np.asarray(count)
    if c.ndim != 1:
        raise ValueError(f"count must be a 1-D array of events, got shape {c.shape}")
    if c.size and c.dtype.kind not in "iuf":
        raise TypeError(f"count must hold numbers (photon counts), got dtype {c.dtype}")
    if not (f.shape == p.shape == c.shape):
        raise ValueError(
            f"frame, pixel and count must have one entry per event, got {f.size}, {p.size}, {c.size}"
        )
    if f.size:
        if int(f.min()) < 0 or int(f.max()) >= n_frames:
            raise ValueError(
                f"frame indices must lie in 0..n_frames-1 = 0..{n_frames - 1}, got {f.min()}..{f.max()}"
            )
        if int(p.min()) < 0 or int(p.max()) >= n_pixels:
            raise ValueError(
                f"pixel indices must be flat indices row * W + col in 0..{n_pixels - 1}, "
                f"got {p.min()}..{p.max()}"
            )
    c64 = c.astype(np.float64)
    bad = ~np.isfinite(c64) | (np.nan_to_num(c64, nan=0.0) < 0)
    if bad.any():
        first = int(np.argmax(bad))
        raise FrameValueError(
            f"{int(bad.sum())} events have NaN, infinite or negative counts (first: event {first}, frame "
            f"{int(f[first])}, count {c64[first]}); counts must be finite and non-negative"
        )
    return f, p, c64


def _pair_batches(
    run_rem: np.ndarray[Any, Any],
    frame: np.ndarray[Any, Any],
    value: np.ndarray[Any, Any],
    n: int,
    batch: int,
) -> Any:
    """Yields ``(flat index t1 * N + t2, v1 * v2)`` of all same-pixel pairs, in batches."""
    active = np.arange(frame.size)
    idx_parts: list[np.ndarray[Any, Any]] = []
    w_parts: list[np.ndarray[Any, Any]] = []
    size = 0
    k = 0
    while active.size:
        second = active + k
        idx_parts.append(frame[active] * n + frame[second])
        # Self pairs (t1 = t2) count half: the map is the upper part plus its transpose.
        w_parts.append(value[active] * value[second] * (0.5 if k == 0 else 1.0))
        size += active.size
        while size >= batch:
            idx, wts = np.concatenate(idx_parts), np.concatenate(w_parts)
            yield idx[:batch], wts[:batch]
            idx_parts, w_parts, size = [idx[batch:]], [wts[batch:]], idx.size - batch
        k += 1
        active = active[run_rem[active] >= k]
    if size:
        yield np.concatenate(idx_parts), np.concatenate(w_parts)


def _prepare_events(
    sel: _Selection,
    f: np.ndarray[Any, Any],
    p: np.ndarray[Any, Any],
    c: np.ndarray[Any, Any],
    n_frames: int,
    aps: bool,
) -> tuple[np.ndarray[Any, Any], ...]:
    """Events of the selected pixels, summed per (pixel, frame), sorted by (column, frame):
    ``(column, frame, normalised value, frame sums (N, n_bins), events left in the run)``."""
    h, w = sel.frame_shape
    n_bins = len(sel.bins)
    col_of_pixel = np.full(h * w, -1, dtype=np.int64)
    col_of_pixel[sel.pix] = np.arange(sel.n_pixels)
    col = col_of_pixel[p]
    keep = (col >= 0) & (c > 0)
    col, f, c = col[keep], f[keep], c[keep]
    # Sort by (column, frame) and sum repeated events; columns are bin by bin contiguous.
    key, inverse = np.unique(col * n_frames + f, return_inverse=True)
    c = np.bincount(inverse.ravel(), c, minlength=key.size)
    col, f = key // n_frames, key % n_frames

    if aps:
        assert sel.static_of_col is not None
        assert sel.static_counts is not None
        n_static = int(sel.static_counts.shape[0])
        sidx = sel.static_of_col[col].astype(np.int64)
        mean = np.bincount(f * n_static + sidx, c, minlength=n_frames * n_static).reshape(n_frames, n_static)
        mean = mean / sel.static_counts[None, :]
        v = c / np.where(mean > 0, mean, 1.0)[f, sidx]
    else:
        v = c
    bin_of = sel.bin_of_col[col].astype(np.int64)
    sums = np.bincount(f * n_bins + bin_of, v, minlength=n_frames * n_bins).reshape(n_frames, n_bins)

    # Position of each event in its pixel's run, counted from the end.
    new_run = np.ones(col.size, dtype=bool)
    new_run[1:] = col[1:] != col[:-1]
    starts = np.flatnonzero(new_run)
    lengths = np.diff(np.append(starts, col.size))
    run_end = np.repeat(starts + lengths, lengths)
    run_rem = run_end - 1 - np.arange(col.size)

    return col, f, v, sums, run_rem


def twotime_events(
    frame: Any,
    pixel: Any,
    count: Any,
    n_frames: int,
    dynamic_labels: Any,
    static_labels: Any = None,
    *,
    bins: Sequence[int] | None = None,
    normalization: Normalization = "aps",
    dtype: Any = np.float32,
    n_segments: int = 5,
    delays: DelaySpec = "all",
    lags_per_level: int = 4,
    keep_maps: bool = True,
    memory_budget: int | None = None,
    pair_batch: int = DEFAULT_PAIR_BATCH,
    jit: bool = True,
) -> TwoTime:
    """Two-time correlation of ``n_frames`` frames given as photon events.

    ``frame``, ``pixel``, ``count``: 1-D arrays, one entry per event (frame index in
    ``0 .. n_frames-1``, flat pixel index ``row * W + col`` of the label maps, count >= 0).
    The other arguments are those of :func:`xpcs_kernels.twotime.twotime`; ``keep_maps``
    False drops the maps after their diagonals are taken (one bin's map in memory).
    """
    dt = _check_dtype_arg(dtype)
    n_frames = _positive_int(n_frames, "n_frames")
    n_segments = _positive_int(n_segments, "n_segments")
    pair_batch = _positive_int(pair_batch, "pair_batch")
    seg_len = _segment_length(n_frames, n_segments)
    sel = _select(dynamic_labels, static_labels, bins, normalization)
    h, w = sel.frame_shape
    f, p, c = _check_events(frame, pixel, count, n_frames, h * w)
    n_bins = len(sel.bins)
    needed = (
        twotime_memory_bytes(
            n_frames, 0, n_bins if keep_maps else 1, dt, n_segments=n_segments, block_frames=n_frames
        )
        + 4 * n_frames * n_frames * 8
    )
    _check_budget(needed, memory_budget, f"{n_bins} bins, {n_frames} frames, events")

    col, f, v, sums, run_rem = _prepare_events(sel, f, p, c, n_frames, normalization == "aps")
    defined = sums > 0
    _warn_zero_frames(~defined, sel.bins, 0)
    bin_of = sel.bin_of_col[col].astype(np.int64)

    b = xpcs_device.get_backend()
    place = xpcs_device.place_on_device
    scatter = _scatter_kernel(cast(Any, b), n_frames * n_frames, jit)
    finish = _map_kernel(cast(Any, b), n_segments, seg_len, dt.name, jit)
    bin_edges = np.searchsorted(bin_of, np.arange(n_bins + 1))
    maps: list[Array] = []
    sum_acc = np.zeros((n_bins, n_segments + 1, n_frames))
    count_acc = np.zeros_like(sum_acc)
    for k in range(n_bins):
        lo, hi = int(bin_edges[k]), int(bin_edges[k + 1])
        upper = b.zeros(n_frames * n_frames)
        for idx, wts in _pair_batches(run_rem[lo:hi], f[lo:hi], v[lo:hi], n_frames, pair_batch):
            m = idx.size
            # A fixed batch shape (one compilation); padding points past the end and is dropped.
            index = np.full(pair_batch, n_frames * n_frames, dtype=np.int64)
            weight = np.zeros(index.size)
            index[:m], weight[:m] = idx, wts
            upper = scatter(upper, place(index), place(weight))
        col_sum = sums[:, k]
        inv = np.where(defined[:, k], 1.0 / np.where(defined[:, k], col_sum, 1.0), np.nan)
        c2, s_k, n_k = finish(
            b.reshape(upper, (n_frames, n_frames)),
            place(np.asarray(float(sel.num_pts[k]))),
            place(inv),
            place(defined[:, k].astype(np.float64)),
        )
        sum_acc[k] = np.asarray(b.to_numpy(s_k))
        count_acc[k] = np.asarray(b.to_numpy(n_k))
        if keep_maps:
            maps.append(c2)

    full, seg_delays = _delay_plan(delays, n_frames, seg_len, lags_per_level)
    g2, g2_seg = _finish_g2(b, sum_acc, count_acc, full, seg_delays)
    return TwoTime(
        c2=b.stack(maps) if keep_maps else None,
        g2=g2,
        g2_segments=g2_seg,
        delays=b.asarray(full),
        segment_delays=b.asarray(seg_delays),
        bins=sel.bins,
        segment_bounds=tuple(s * seg_len for s in range(n_segments + 1)),
        n_frames=n_frames,
        num_pts=sel.num_pts,
    )
