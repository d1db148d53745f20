"""Multi-tau g2 of photon events ``(frame, pixel, count)``: cost set by the photons.

The same definitions and results as :func:`xpcs_kernels.multitau.multitau` on the dense
frames, computed from the events alone: per level, the events are aggregated per (pixel,
level frame) (one sort), and the lag products come from pairs of events of the same pixel
at most ``2 * dpl`` level frames apart: after sorting by (pixel, frame) such a partner is
at most ``2 * dpl`` places further, so ``2 * dpl`` shifted comparisons find them all. The
work is O(E log E) per level for E events (and O(P) for the per-pixel sums), never
O(pixels x frames).

Per event that is far more work than the dense path spends per pixel and frame (measured
on a 2-core CPU: ~2-5 us per event against ~4 ns per pixel-frame), so above an occupancy of
:data:`DENSE_OCCUPANCY` photons per pixel-frame the events are written into dense frames,
a bounded chunk at a time, and correlated by the dense path: the cost is
``min(c_e E, c_d N P)``, growing with the photons at low occupancy and never above the
dense path.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from typing import Any, cast

import numpy as np

import xpcs_device
from xpcs_kernels.compiled import use_compiled
from xpcs_kernels.multitau import MultitauResult, _make_maps, _positive_int, assemble_result, multitau
from xpcs_kernels.multitau_levels import LevelSums, level_lags
from xpcs_kernels.multitau_normalize import Normalized, normalize
from xpcs_kernels.reductions import FrameValueError, segment_bounds
from xpcs_protocol import Array, BackendProtocol

__all__ = ["DENSE_OCCUPANCY", "multitau_events"]

DENSE_OCCUPANCY = 2e-3
"""Photons per correlated pixel and frame above which :func:`multitau_events` correlates
dense frames built from the events (the crossover of the two paths' measured costs)."""
_CHUNK_ELEMENTS = 1 << 22  # pixels x frames of one dense chunk built from events


def _events(frame: Any, pixel: Any, count: Any) -> tuple[np.ndarray[Any, Any], ...]:
    b = xpcs_device.get_backend()
    arrays = []
    for name, value in (("frame", frame), ("pixel", pixel), ("count", count)):
        arr = np.asarray(b.to_numpy(value)) if b.is_array(value) else np.asarray(value)
        if arr.ndim != 1:
            raise ValueError(f"event {name} must be a 1-D array (one entry per event), got shape {arr.shape}")
        if arr.dtype.kind not in ("iuf" if name == "count" else "iu"):
            raise TypeError(
                f"event {name} must hold {'numbers' if name == 'count' else 'integers'}, got {arr.dtype}"
            )
        arrays.append(arr)
    if not arrays[0].shape == arrays[1].shape == arrays[2].shape:
        raise ValueError(
            f"frame, pixel and count must have one entry per event, got lengths "
            f"{arrays[0].shape[0]}, {arrays[1].shape[0]}, {arrays[2].shape[0]}"
        )
    return tuple(arrays)


@functools.lru_cache(maxsize=64)
def _level_kernel(
    b: BackendProtocol, lags: tuple[int, ...], window: int, n_pixels: int, first: bool, jit: bool
) -> Callable[..., Any]:
    """One level from ``E`` (padded) events; pads and dropped events carry the sentinel
    pixel ``n_pixels`` and count 0, so every shape is static (compiled once per ``E``)."""
    n_lags = len(lags)
    lag_pos = np.full(window + 1, -1, dtype=np.int64)
    lag_pos[list(lags)] = np.arange(n_lags)
    length = n_lags * n_pixels

    def kernel(f: Array, p: Array, c: Array, n_l: Array) -> tuple[Array, ...]:
        e = f.shape[0]
        # one event per (pixel, frame): sort, then sum runs of equal keys (compacted to the
        # front; the rest becomes sentinels)
        key = p * n_l + f
        if first:
            order = b.argsort(key)
            key, c = b.take(key, order), b.take(c, order)
        # (higher levels need no sort: halving the frame keeps (pixel, frame) order, and
        # the sentinels left by the odd last frames only sit between pixels)
        last = b.concatenate([key[1:] != key[:-1], b.ones((1,), dtype=bool)])
        ends = b.nonzero(last, size=e)[0]  # padded with e: read as the fill values below
        csum = b.cumsum(c)
        run = b.take(csum, ends, fill_value=0.0)
        run = b.where(ends < e, run, csum[-1])
        c = run - b.concatenate([b.zeros((1,)), run[:-1]])
        key = b.take(key, ends, fill_value=0)
        real = b.logical_and(ends < e, key < n_pixels * n_l)
        p = b.where(real, key // n_l, n_pixels)
        f = b.where(real, key % n_l, 0)
        table = b.asarray(lag_pos)
        idx_parts, w_parts = [], []
        for k in range(1, window + 1):
            if e <= k:
                break
            dt = f[k:] - f[:-k]
            pos = b.take(table, b.clip(dt, 0, window))
            same = b.logical_and(p[k:] == p[:-k], p[:-k] < n_pixels)
            ok = b.logical_and(same, b.logical_and(dt <= window, pos >= 0))
            idx_parts.append(b.where(ok, pos * n_pixels + p[:-k], length))
            w_parts.append(c[:-k] * c[k:])
        if idx_parts:
            products = b.bincount(b.concatenate(idx_parts), b.concatenate(w_parts), length=length)
        else:
            products = b.zeros((length,))
        total = b.bincount(p, c, length=n_pixels)
        heads = [b.bincount(p, b.where(f < tau, c, 0.0), length=n_pixels) for tau in lags]
        tails = [b.bincount(p, b.where(f >= n_l - tau, c, 0.0), length=n_pixels) for tau in lags]
        # the next level: frames paired; the odd last frame of this level is not passed up
        n_next = n_l // 2
        up = b.logical_and(p < n_pixels, f // 2 < n_next)
        f_next = b.where(up, f // 2, 0)
        p_next = b.where(up, p, n_pixels)
        c_next = b.where(up, c, 0.0)
        return (
            b.reshape(products, (n_lags, n_pixels)),
            total,
            b.stack(heads),
            b.stack(tails),
            f_next,
            p_next,
            c_next,
        )

    return b.jit(kernel) if jit else kernel


def _level_sums(
    b: BackendProtocol,
    frame: np.ndarray[Any, Any],
    col: np.ndarray[Any, Any],
    count: np.ndarray[Any, Any],
    n_frames: int,
    n_pixels: int,
    dpl: int,
    jit: bool,
) -> tuple[LevelSums, ...]:
    """Level sums (as :func:`xpcs_kernels.multitau_levels.level_sums`) from events of
    ``n_frames`` frames: frame index, pixel column ``0..n_pixels-1`` and count (float64)."""
    window = 2 * dpl
    # pad to a power of two: few compiled shapes
    e = max(2, 1 << max(0, int(frame.shape[0]) - 1).bit_length())
    pad = e - frame.shape[0]
    f = np.concatenate([frame.astype(np.int64), np.zeros(pad, dtype=np.int64)])
    p = np.concatenate([col.astype(np.int64), np.full(pad, n_pixels, dtype=np.int64)])
    c = np.concatenate([count.astype(np.float64), np.zeros(pad)])
    f, p, c = xpcs_device.place_on_device((f, p, c))
    out: list[LevelSums] = []
    for level, lags in enumerate(level_lags(n_frames, dpl)):
        n_l = n_frames >> level
        kernel = _level_kernel(cast(Any, b), lags, window, n_pixels, level == 0, jit)
        products, total, head, tail, f, p, c = kernel(f, p, c, b.asarray(n_l, dtype=np.int64))
        out.append(LevelSums(level, lags, n_l, products, total, head, tail))
    return tuple(out)


def multitau_events(
    frame: Any,
    pixel: Any,
    count: Any,
    *,
    n_frames: int,
    static_labels: Any,
    dynamic_labels: Any,
    frame_time: float | None = None,
    lags_per_level: int = 4,
    stride: int = 1,
    avg: int = 1,
    n_segments: int = 1,
    keep_unnormalized: bool = False,
    dense_occupancy: float | None = None,
    compiled: bool | None = None,
    jit: bool = True,
) -> MultitauResult:
    """Multi-tau g2 of photon events, equal to :func:`~xpcs_kernels.multitau.multitau` on
    the dense frames they describe.

    ``frame`` (0-based input frame index, ``< n_frames``), ``pixel`` (flat index
    ``row * W + column`` into the label maps' shape) and ``count`` (photons, > 0; repeated
    (frame, pixel) entries add up): 1-D arrays, one entry per event. Events on pixels
    outside the static bins are ignored. ``dense_occupancy`` (default
    :data:`DENSE_OCCUPANCY`; ``0``: always, ``inf``: never): above this many correlated
    photons per correlated pixel and frame, the events become dense frames (a bounded chunk
    at a time) for the dense path. ``compiled`` (see :mod:`xpcs_kernels.compiled`) applies to
    the normalisation and to the dense path. Other arguments as in
    :func:`~xpcs_kernels.multitau.multitau`.
    """
    b = xpcs_device.get_backend()
    n_frames = _positive_int(n_frames, "n_frames")
    dpl = _positive_int(lags_per_level, "lags_per_level")
    stride = _positive_int(stride, "stride")
    avg = _positive_int(avg, "avg")
    n_segments = _positive_int(n_segments, "n_segments")
    maps = _make_maps(static_labels, dynamic_labels)
    f, p, c = _events(frame, pixel, count)
    h, w = maps.frame_shape
    if f.size and (int(f.min()) < 0 or int(f.max()) >= n_frames):
        raise ValueError(
            f"event frames must lie in 0..n_frames-1 = 0..{n_frames - 1}, "
            f"found {int(f.min())}..{int(f.max())}"
        )
    if p.size and (int(p.min()) < 0 or int(p.max()) >= h * w):
        raise ValueError(
            f"event pixels must be flat indices 0..{h * w - 1} of the {h}x{w} label maps, found "
            f"{int(p.min())}..{int(p.max())}"
        )
    if c.size and (not bool(np.isfinite(c).all()) or float(c.min()) < 0):
        raise FrameValueError("event counts must be finite and non-negative (photon counts)")
    n_eff = n_frames // (stride * avg)
    if n_eff < 2:
        raise ValueError(
            f"{n_frames} frames with stride={stride}, avg={avg} give {n_eff} effective frame(s); a "
            "correlation needs at least 2 (one lag)"
        )
    use_loops = use_compiled(compiled)
    limit = DENSE_OCCUPANCY if dense_occupancy is None else float(dense_occupancy)
    if not limit >= 0:  # NaN fails this too
        raise ValueError(f"dense_occupancy must be a number >= 0 (inf: never dense), got {dense_occupancy!r}")
    # effective frame of each event; columns of the correlated pixels
    use = (f % stride == 0) & (f < n_eff * stride * avg)
    column = np.full(h * w, -1, dtype=np.int64)
    if maps.pixels is None:
        column[:] = np.arange(h * w)
    else:
        column[maps.pixels] = np.arange(maps.pixels.size)
    col = column[p]
    use &= col >= 0
    eff = (f[use] // stride) // avg
    col, cnt = col[use], c[use].astype(np.float64)
    n_pixels = maps.static.shape[0]
    if col.size > limit * (n_eff * avg) * n_pixels:
        return multitau(
            _dense_chunks(f[use], p[use], c[use], n_frames, (h, w)),
            static_labels,
            dynamic_labels,
            frame_time=frame_time,
            lags_per_level=dpl,
            stride=stride,
            avg=avg,
            n_segments=n_segments,
            keep_unnormalized=keep_unnormalized,
            n_frames_total=n_frames,
            compiled=compiled,
            jit=jit,
        )

    def run(lo: int, hi: int, what: str, keep: bool) -> Normalized:
        sel = (eff >= lo) & (eff < hi)
        sums = _level_sums(b, eff[sel] - lo, col[sel], cnt[sel], hi - lo, n_pixels, dpl, jit)
        return normalize(b, sums, maps, avg=avg, keep_pixels=keep, what=what, compiled=use_loops, jit=jit)

    bounds = None
    parts = None
    if n_segments > 1:
        bounds = segment_bounds(n_eff, n_segments)
        if n_eff // n_segments < 2:
            raise ValueError(
                f"segments of {n_eff // n_segments} effective frame(s) have no lag; lower n_segments"
            )
        parts = [run(bounds[s], bounds[s + 1], f"segment {s}", False) for s in range(n_segments)]
    norm = run(0, n_eff, "the run", keep_unnormalized)
    return assemble_result(
        b,
        norm,
        parts,
        maps=maps,
        segment_bounds=bounds,
        n_frames=n_eff,
        stride=stride,
        avg=avg,
        frame_time=frame_time,
        lags_per_level=dpl,
    )


def _dense_chunks(
    frame: np.ndarray[Any, Any],
    pixel: np.ndarray[Any, Any],
    count: np.ndarray[Any, Any],
    n_frames: int,
    shape: tuple[int, int],
) -> Iterator[np.ndarray[Any, Any]]:
    """The dense frames ``0 .. n_frames-1`` that the events describe, in chunks of about
    ``_CHUNK_ELEMENTS`` values; repeated (frame, pixel) events are added. Integer counts
    give the narrowest unsigned dtype that holds the largest sum (exact), others float64."""
    n_pixels = shape[0] * shape[1]
    key = frame.astype(np.int64) * n_pixels + pixel.astype(np.int64)
    values = count
    if key.size > 1 and not bool(np.all(key[1:] > key[:-1])):
        order = np.argsort(key, kind="stable")
        key, values = key[order], values[order]
        starts = np.flatnonzero(np.concatenate([[True], key[1:] != key[:-1]]))
        key, values = key[starts], np.add.reduceat(values.astype(np.float64), starts)
    integral = values.dtype.kind in "iu" or bool(np.all(values == np.floor(values)))
    top = float(values.max()) if values.size else 0.0
    dtype: Any = np.float64
    if integral:
        dtype = next((t for t in (np.uint8, np.uint16, np.uint32) if top <= np.iinfo(t).max), np.float64)
    values = values.astype(dtype)
    f = key // n_pixels
    chunk = max(1, _CHUNK_ELEMENTS // n_pixels)
    for lo in range(0, n_frames, chunk):
        hi = min(n_frames, lo + chunk)
        a, b = np.searchsorted(f, [lo, hi])
        out = np.zeros((hi - lo, n_pixels), dtype=dtype)
        out.reshape(-1)[key[a:b] - lo * n_pixels] = values[a:b]
        yield out.reshape(hi - lo, *shape)
