"""Two-time correlation of photon events ``(frame, pixel, count)``: cost grows with photon pairs.

Same definitions and results as :func:`xpcs_kernels.twotime.twotime` (C, g2 along the
diagonals, segments, normalisations ``"aps"`` / ``"plain"``), for photon-sparse data given
as events: frame index, flat pixel index ``row * W + col`` and count (events of the same
frame and pixel are summed; pixels outside the selected bins are ignored).

The numerator ``sum_p X(p, t1) X(p, t2)`` is split by pixel, each pixel taking the
cheaper of two exact routes (``n_p`` events on pixel ``p``):

- pixels with at most ``dense_threshold`` events: their pairs of events, ``n_p (n_p + 1) / 2``
  updates, enumerated on the host by offset ``k`` inside each pixel's run (pixels of similar
  ``n_p`` padded into one ``(n, pixels)`` block, event-major so that consecutive updates hit
  nearby rows) and accumulated in float64 with ``np.add.at``;
- busier pixels: their columns (only those) filled into a dense ``(N, D)`` matrix and multiplied
  ``X X^T`` on the backend (a BLAS SYRK on NumPy), ``N^2 / 2`` multiply-adds a pixel, which
  beats ``n_p^2 / 2`` scattered updates once ``n_p`` exceeds a few percent of ``N``
  (:data:`DENSE_FRACTION`).

So the cost is ``sum_p min(n_p^2, c N^2) / 2`` plus ``O(N^2)`` per bin for the normalisation
and the diagonals: it scales with the photon pairs at low occupancy and never exceeds the
dense path's. Everything after the numerator runs on the active backend.

On a CPU (``compiled=None`` or ``True``) the event preparation and the pairs run as compiled
numba loops instead (:mod:`xpcs_kernels.twotime_loops`: events sorted per bin in parallel,
each row of ``C`` accumulated in cache, rows spread over the cores), ~2e-9 CPU s a pair
update, so the busy pixels go to the dense product only above ``0.15 N`` events
(:data:`COMPILED_DENSE_FRACTION`). Same results to rounding.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Sequence
from typing import Any, cast

import numpy as np

import xpcs_device
from xpcs_kernels.compiled import parallel_region, readonly, use_compiled
from xpcs_kernels.reductions import FrameValueError
from xpcs_kernels.twotime import (
    DelaySpec,
    Normalization,
    TwoTime,
    _check_budget,
    _check_dtype_arg,
    _host_result,
    _positive_int,
    _row_diagonal_sums,
    _segment_length,
    _select,
    _Selection,
    twotime_memory_bytes,
)
from xpcs_protocol import Array, BackendProtocol

__all__ = ["COMPILED_DENSE_FRACTION", "DENSE_FRACTION", "default_dense_threshold", "twotime_events"]

DEFAULT_PAIR_BATCH = 1 << 18
"""Largest block of pair updates generated at once (a few MiB of temporaries, in cache)."""

DENSE_FRACTION = 0.035
"""Default ``dense_threshold`` as a fraction of the frame count, for float32 on NumPy: a
pixel's column in a 2-thread BLAS SYRK (``N^2 / 2`` multiply-adds, ~1.1e-11 s each) costs what
its ``n_p^2 / 2`` pair updates cost (~9e-9 s each, single-threaded, enumeration included) at
``n_p = N sqrt(1.1e-11 / 9e-9) = 0.035 N`` (measured on a 2-core machine, N = 2000).
Scaled by ``sqrt(2)`` for float64 and by 2.5 on other backends (XLA has no SYRK and a slower
GEMM on CPU)."""

COMPILED_DENSE_FRACTION = 0.15
"""Default ``dense_threshold`` as a fraction of the frame count for the compiled loop
(:mod:`xpcs_kernels.twotime_loops`, ~2e-9 CPU s a pair update, 4-8x faster than the array
path's): all pixels as pairs or all as dense SYRK columns cost the same CPU time at about
``0.15 N`` events per pixel, float32 and float64 alike (measured on a 2-core machine under
load, N = 2000, 0.06-0.15 N events per pixel). Scaled by ``sqrt(2)`` on other backends (XLA
computes the whole product, not a SYRK's half)."""

BAND = 0.85
"""Pixels padded into one block have at least ``BAND`` times the events of its busiest pixel
(bounds the padding waste of the pair enumeration)."""


def default_dense_threshold(
    n_frames: int, dtype: Any = np.float32, backend: str = "numpy", *, compiled: bool = False
) -> int:
    """Events per pixel above which :func:`twotime_events` uses the dense product for that
    pixel (see :data:`DENSE_FRACTION`; :data:`COMPILED_DENSE_FRACTION` for the compiled loop)."""
    if compiled:  # host arrays and BLAS whatever the backend
        return max(1, math.ceil(COMPILED_DENSE_FRACTION * n_frames))
    fraction = DENSE_FRACTION * (math.sqrt(2.0) if np.dtype(dtype) == np.float64 else 1.0)
    if backend != "numpy":
        fraction *= 2.5
    return max(1, math.ceil(fraction * n_frames))


@functools.lru_cache(maxsize=16)
def _dense_kernel(b: BackendProtocol, jit: bool) -> Callable[..., Any]:
    def kernel(xt: Array) -> Array:
        """``X X^T`` from ``X^T (D, N)`` (one buffer, transposed: NumPy runs it as a SYRK)."""
        return b.matmul(b.transpose(xt), xt)

    return b.jit(kernel) if jit else kernel


def _ranks(counts: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    """``0 .. c - 1`` for each ``c`` of ``counts``, concatenated."""
    firsts: np.ndarray[Any, Any] = np.cumsum(counts) - counts
    ranks: np.ndarray[Any, Any] = np.arange(int(counts.sum())) - np.repeat(firsts, counts)
    return ranks


def _radix_order(key: np.ndarray[Any, Any], bound: int) -> np.ndarray[Any, Any]:
    """Stable sorting permutation of non-negative integer keys below ``bound``: LSD radix sort
    by 16-bit digits (NumPy's stable sort of ``uint16`` is a counting sort), ``O(n)`` a digit
    where a comparison sort of millions of events costs ten times more."""
    order = np.arange(key.size)
    shift = 0
    while shift == 0 or (bound - 1) >> shift:
        digit = ((key[order] >> shift) & 0xFFFF).astype(np.uint16)
        order = order[np.argsort(digit, kind="stable")]
        shift += 16
    return order


def _int_events(values: Any, name: str) -> np.ndarray[Any, Any]:
    arr = np.asarray(values)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be a 1-D array of events, got shape {arr.shape}")
    if arr.size and arr.dtype.kind not in "iu":
        raise TypeError(f"{name} must hold integer indices, got dtype {arr.dtype}")
    return arr.astype(np.int64, copy=False)


def _event_arrays(
    frame: Any, pixel: Any, count: Any
) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any], np.ndarray[Any, Any]]:
    """The events as int64, int64, float64 arrays (no copy when they are), after the checks
    of their shapes and dtypes."""
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
    return f, p, c.astype(np.float64, copy=False)


def _check_event_values(
    f: np.ndarray[Any, Any], p: np.ndarray[Any, Any], c64: np.ndarray[Any, Any], n_frames: int, n_pixels: int
) -> None:
    """Frames and pixels in range, counts finite and non-negative, or the error that says which."""
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
    bad = ~np.isfinite(c64) | (np.nan_to_num(c64, nan=0.0) < 0)
    if bad.any():
        first = int(np.argmax(bad))
        raise FrameValueError(
            f"{int(bad.sum())} events have NaN, infinite or negative counts (first: event {first}, frame "
            f"{int(f[first])}, count {c64[first]}); counts must be finite and non-negative"
        )


def _check_events(
    frame: Any, pixel: Any, count: Any, n_frames: int, n_pixels: int
) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any], np.ndarray[Any, Any]]:
    f, p, c = _event_arrays(frame, pixel, count)
    _check_event_values(f, p, c, n_frames, n_pixels)
    return f, p, c


def _add_pairs(
    acc: np.ndarray[Any, Any],
    starts: np.ndarray[Any, Any],
    counts: np.ndarray[Any, Any],
    frame: np.ndarray[Any, Any],
    value: np.ndarray[Any, Any],
    n: int,
    batch: int,
) -> None:
    """Adds ``v1 v2`` at ``t1 * N + t2`` of ``acc`` (flat ``N x N`` float64) for every pair of
    events of the same pixel with ``t1 <= t2``; pixel ``i``'s events are
    ``frame[starts[i] : starts[i] + counts[i]]`` in frame order. Self pairs count half: the
    numerator is ``acc + acc^T``."""
    order = np.argsort(-counts, kind="stable")
    counts, starts = counts[order], starts[order]
    lo = 0
    while lo < counts.size and counts[lo] > 0:
        top = int(counts[lo])
        # A block: pixels with at least BAND * top events, at most `batch` padded slots.
        hi = lo + int(np.searchsorted(-counts[lo:], -math.ceil(BAND * top), side="right"))
        hi = max(lo + 1, min(hi, lo + max(1, batch // top)))
        n_ev = counts[lo:hi]
        m = hi - lo
        # Event-major (top, m) block: row j holds the j-th event of each pixel, so consecutive
        # updates land in nearby rows of acc (3x the scatter rate of pixel-major order). The
        # padding (frame 0, value 0) adds 0 to acc[0].
        j = np.arange(top)[:, None]
        valid = j < n_ev[None, :]
        src = np.where(valid, starts[lo:hi][None, :] + j, 0)
        f = np.where(valid, frame[src], 0)
        v = np.where(valid, value[src], 0.0)
        fn = f * n
        idx = np.empty(top * m, dtype=np.int64)
        w = np.empty(top * m)
        for k in range(top):
            mk = int(np.count_nonzero(n_ev > k))  # pixels with a partner k events later
            rows = top - k
            size = rows * mk
            ii = idx[:size].reshape(rows, mk)
            ww = w[:size].reshape(rows, mk)
            np.add(fn[:rows, :mk], f[k:, :mk], out=ii)
            np.multiply(v[:rows, :mk], v[k:, :mk], out=ww)
            if k == 0:
                ww *= 0.5
            np.add.at(acc, idx[:size], w[:size])
        lo = hi


def _prepare_events(
    sel: _Selection,
    f: np.ndarray[Any, Any],
    p: np.ndarray[Any, Any],
    c: np.ndarray[Any, Any],
    n_frames: int,
    aps: bool,
) -> tuple[np.ndarray[Any, Any], ...]:
    """Events of the selected pixels, summed per (pixel, frame), sorted by (column, frame):
    ``(column, frame, normalised value, frame sums (N, n_bins))``."""
    h, w = sel.frame_shape
    n_bins = len(sel.bins)
    col_of_pixel = np.full(h * w, -1, dtype=np.int64)
    col_of_pixel[sel.pix] = np.arange(sel.n_pixels)
    col = col_of_pixel[p]
    keep = (col >= 0) & (c > 0)
    col, f, c = col[keep], f[keep], c[keep]
    # Sort by (column, frame) and sum repeated events; columns are bin by bin contiguous.
    key = col * n_frames + f
    if f.size and bool((f[1:] >= f[:-1]).all()):  # events in frame order (as detectors write them)
        order = _radix_order(col, sel.n_pixels)
    else:
        order = _radix_order(key, sel.n_pixels * n_frames)
    key, c = key[order], c[order]
    first = np.ones(key.size, dtype=bool)
    first[1:] = key[1:] != key[:-1]
    if not first.all():
        starts = np.flatnonzero(first)
        key, c = key[starts], np.add.reduceat(c, starts)
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

    return col, f, v, sums


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
    dense_threshold: int | None = None,
    jit: bool = True,
    compiled: bool | None = None,
) -> TwoTime:
    """Two-time correlation of ``n_frames`` frames given as photon events.

    ``frame``, ``pixel``, ``count``: 1-D arrays, one entry per event (frame index in
    ``0 .. n_frames-1``, flat pixel index ``row * W + col`` of the label maps, count >= 0).
    The other arguments are those of :func:`xpcs_kernels.twotime.twotime`; ``keep_maps``
    False drops the maps after their diagonals are taken (one bin's map in memory).
    ``pair_batch``: most pair updates generated at once (bounds the temporaries of the
    array formulation; the compiled loop needs none).
    ``dense_threshold``: pixels with more events than this go to the dense product
    (0: all pixels; a value >= ``n_frames``: none); default
    :func:`default_dense_threshold`. Every choice gives the same result to rounding.
    ``compiled``: ``None`` (default) runs the numerators as a compiled CPU loop
    (:mod:`xpcs_kernels.twotime_loops`, numba: rows of ``C`` accumulated in cache, both
    cores) when numba is installed and the active device is a CPU, the array formulation
    otherwise; ``True`` requires the compiled loop (``ValueError`` where it cannot run),
    ``False`` the array formulation (see :mod:`xpcs_kernels.compiled`). Both give the same
    result to rounding; the compiled loop runs outside ``jax.jit``.
    """
    run_compiled = use_compiled(compiled)
    dt = _check_dtype_arg(dtype)
    n_frames = _positive_int(n_frames, "n_frames")
    n_segments = _positive_int(n_segments, "n_segments")
    pair_batch = _positive_int(pair_batch, "pair_batch")
    backend_name = xpcs_device.get_backend().name
    if dense_threshold is None:
        dense_threshold = default_dense_threshold(n_frames, dt, backend_name, compiled=run_compiled)
    elif (
        isinstance(dense_threshold, bool)
        or not isinstance(dense_threshold, int | np.integer)
        or dense_threshold < 0
    ):
        raise ValueError(
            f"dense_threshold must be a non-negative integer (events per pixel), got {dense_threshold!r}"
        )
    seg_len = _segment_length(n_frames, n_segments)
    sel = _select(dynamic_labels, static_labels, bins, normalization)
    h, w = sel.frame_shape
    # The compiled path checks the event values in its first pass over them.
    if run_compiled:
        f, p, c = _event_arrays(frame, pixel, count)
    else:
        f, p, c = _check_events(frame, pixel, count, n_frames, h * w)
    n_bins = len(sel.bins)
    needed = (
        twotime_memory_bytes(
            n_frames, 0, n_bins if keep_maps else 1, dt, n_segments=n_segments, block_frames=n_frames
        )
        + 4 * n_frames * n_frames * 8
        + n_frames * max(sel.num_pts) * dt.itemsize  # the dense columns of one bin
    )
    _check_budget(needed, memory_budget, f"{n_bins} bins, {n_frames} frames, events")

    b = xpcs_device.get_backend()
    if run_compiled:
        maps, sum_acc, defined = _compiled_numerators(
            sel,
            f,
            p,
            c,
            n_frames,
            normalization == "aps",
            dt,
            keep_maps,
            dense_threshold,
            seg_len,
            n_segments,
        )
        return _host_result(b, sel, maps, sum_acc, defined, n_segments, delays, lags_per_level, 0)
    col, f, v, sums = _prepare_events(sel, f, p, c, n_frames, normalization == "aps")
    defined = sums > 0
    # As on the dense path, the values are scaled to y = X sqrt(P_d) / S_d(t) (0 where S_d(t)
    # = 0): C is then the bare sum of y1 y2 over the pairs.
    scale = np.where(
        defined, np.sqrt(np.asarray(sel.num_pts, dtype=np.float64)) / np.where(defined, sums, 1.0), 0.0
    )
    y = v * scale[f, sel.bin_of_col[col]]
    maps, sum_acc = _numerators(
        b, sel, col, f, y, n_frames, dt, keep_maps, dense_threshold, pair_batch, seg_len, n_segments, jit
    )
    return _host_result(b, sel, maps, sum_acc, defined, n_segments, delays, lags_per_level, 0)


def _busy_columns(
    starts: np.ndarray[Any, Any],
    counts: np.ndarray[Any, Any],
    f: np.ndarray[Any, Any],
    y: np.ndarray[Any, Any],
    n_frames: int,
    dt: np.dtype[Any],
) -> np.ndarray[Any, Any]:
    """``Y^T (D, N)`` in ``dt``: the dense columns of the pixels whose events are
    ``starts[i] : starts[i] + counts[i]`` (in frame order)."""
    ev = np.repeat(starts, counts) + _ranks(counts)
    xt = np.zeros(starts.size * n_frames, dtype=dt)
    xt[np.repeat(np.arange(starts.size) * n_frames, counts) + f[ev]] = y[ev]
    return xt.reshape(starts.size, n_frames)


def _numerators(
    b: BackendProtocol,
    sel: _Selection,
    col: np.ndarray[Any, Any],
    f: np.ndarray[Any, Any],
    y: np.ndarray[Any, Any],
    n_frames: int,
    dt: np.dtype[Any],
    keep_maps: bool,
    dense_threshold: int,
    pair_batch: int,
    seg_len: int,
    n_segments: int,
    jit: bool,
) -> tuple[np.ndarray[Any, Any] | None, np.ndarray[Any, Any]]:
    """Bin by bin, C from the scaled events ``y`` sorted by (column, frame): the maps
    ``(n_bins, N, N)`` in ``dt`` (None without ``keep_maps``) and their diagonal sums."""
    n_bins = len(sel.bins)
    place = xpcs_device.place_on_device
    dense_kernel = _dense_kernel(cast(Any, b), jit)
    col_starts = np.searchsorted(col, np.arange(sel.n_pixels + 1))  # each pixel's events: one run
    maps = np.empty((n_bins if keep_maps else 1, n_frames, n_frames), dtype=dt)
    acc = np.empty(n_frames * n_frames)
    sum_acc = np.zeros((n_bins, n_segments + 1, n_frames))
    for k in range(n_bins):
        starts = col_starts[sel.col_bounds[k] : sel.col_bounds[k + 1]]
        counts = col_starts[sel.col_bounds[k] + 1 : sel.col_bounds[k + 1] + 1] - starts
        busy = counts > dense_threshold
        quiet = ~busy & (counts > 0)
        target = maps[k if keep_maps else 0]
        if quiet.any():
            acc.fill(0.0)
            _add_pairs(acc, starts[quiet], counts[quiet], f, y, n_frames, pair_batch)
            upper = acc.reshape(n_frames, n_frames)
            np.add(upper, upper.T, out=target)  # upper part plus its transpose (self pairs counted half)
        if busy.any():
            # The busy pixels' columns, dense: Y Y^T on the backend (BLAS SYRK on NumPy), filled
            # as (D, N): the events are in (column, frame) order, so the writes are sequential.
            xt = _busy_columns(starts[busy], counts[busy], f, y, n_frames, dt)
            if b.name == "numpy" and not quiet.any():
                np.matmul(xt.T, xt, out=target)  # the SYRK straight into the map
            elif quiet.any():
                target += np.asarray(b.to_numpy(dense_kernel(place(xt))))
            else:
                target[...] = np.asarray(b.to_numpy(dense_kernel(place(xt))))
        elif not quiet.any():
            target.fill(0.0)
        if not keep_maps:
            sum_acc[k] = _row_diagonal_sums(maps, seg_len, n_segments)[0]
    if not keep_maps:
        return None, sum_acc
    return maps, _row_diagonal_sums(maps, seg_len, n_segments)


def _compiled_numerators(
    sel: _Selection,
    f: np.ndarray[Any, Any],
    p: np.ndarray[Any, Any],
    c: np.ndarray[Any, Any],
    n_frames: int,
    aps: bool,
    dt: np.dtype[Any],
    keep_maps: bool,
    dense_threshold: int,
    seg_len: int,
    n_segments: int,
) -> tuple[np.ndarray[Any, Any] | None, np.ndarray[Any, Any], np.ndarray[Any, Any]]:
    """:func:`_prepare_events` and :func:`_numerators` as compiled loops
    (:mod:`xpcs_kernels.twotime_loops`): the maps (None without ``keep_maps``), their diagonal
    sums and the defined frames ``(N, n_bins)``. Busy pixels still go to the dense product."""
    from xpcs_kernels import twotime_loops as loops

    h, w = sel.frame_shape
    n_bins = len(sel.bins)
    col_of_pixel = np.full(h * w, -1, dtype=np.int32)
    col_of_pixel[sel.pix] = np.arange(sel.n_pixels)
    # contiguous and read-only whatever the caller passed: one compiled variant
    fr, px, ct = (readonly(np.ascontiguousarray(a)) for a in (f, p, c))
    with parallel_region():
        valid, bin_starts, bf, bc, bv, in_order = loops.split_by_bin(
            fr, px, ct, col_of_pixel, sel.bin_of_col, n_bins, n_frames, loops.n_threads()
        )
    if not valid:
        _check_event_values(f, p, c, n_frames, h * w)  # raises, saying which events are wrong
        raise AssertionError("split_by_bin rejected events that _check_event_values accepts")
    no_static = np.zeros(0, dtype=np.int64)
    with parallel_region():
        ef, y, col_lo, col_hi, frame_starts, first, last, value, sums = loops.prepare_bins(
            bin_starts,
            bf,
            bc,
            bv,
            in_order,
            np.asarray(sel.col_bounds, dtype=np.int64),
            np.asarray(sel.num_pts, dtype=np.int64),
            no_static if sel.static_of_col is None else sel.static_of_col.astype(np.int64),
            no_static if sel.static_counts is None else sel.static_counts.astype(np.int64),
            aps,
            dense_threshold,
            n_frames,
            loops.n_threads(),
        )
    maps = np.empty((n_bins, n_frames, n_frames), dtype=dt) if keep_maps else None
    n_chunks = min(loops.row_chunks(), n_frames)
    scratch: np.ndarray[Any, Any] | None = None
    sum_acc = np.zeros((n_bins, n_segments + 1, n_frames))
    for k in range(n_bins):
        c0, c1 = sel.col_bounds[k], sel.col_bounds[k + 1]
        counts = col_hi[c0:c1] - col_lo[c0:c1]
        busy = counts > dense_threshold
        any_busy = bool(busy.any())
        full = keep_maps or any_busy
        if keep_maps:
            assert maps is not None
            out = maps[k]
        elif full:
            out = np.empty((n_frames, n_frames), dtype=dt)
        else:
            if scratch is None:
                scratch = np.empty((n_chunks, n_frames), dtype=dt)
            out = scratch
        if any_busy:
            xt = _busy_columns(col_lo[c0:c1][busy], counts[busy], ef, y, n_frames, dt)
            # the SYRK straight into the map: the compiled path runs on a CPU, on host arrays,
            # where BLAS is 3x faster than XLA's product (JAX included)
            np.matmul(xt.T, xt, out=out)
        with parallel_region():
            sum_acc[k] = loops.bin_numerator(
                ef, y, frame_starts[k], first, last, value, out, any_busy, full, n_chunks, seg_len, n_segments
            )
    return maps, sum_acc, sums.T > 0
