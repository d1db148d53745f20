"""numba loops of the multi-tau lag sums on the CPU (see :mod:`xpcs_kernels.compiled`).

:func:`correlate_group` does what the array kernel of
:mod:`xpcs_kernels.multitau_levels` does for a group of frames of one level: per pixel the
lag-product sums ``sum_t x[t] x[t - tau]``, the frame sum, and the pair sums passed up to the
next level. Accumulators are float32, so the caller uses it only where the level's count
bound proves every sum of the group below 2**24 (exact).

Layout, measured on a 2-core AVX2 machine (2000 x 65536 uint8 frames, 8 lags: 30-36 ms where
XLA's loop took 105-120 ms): each core takes one contiguous segment of pixels and walks
the frames in order, 8 frames per step, in passes of :data:`PIXELS` pixels, so that the 16
rows a step reads stay in L1 and the frames are read row by row (reading a pixel tile down
all frames, stride one frame, thrashes the cache). The 8 products of a lag are summed in
registers and the accumulators are read and written once per step.
"""

from __future__ import annotations

from typing import Any

import numba
import numpy as np

from xpcs_kernels.compiled import parallel_region, readonly

__all__ = ["PIXELS", "correlate_group"]

PIXELS = 2048
"""Pixels per inner pass (1024: 20 % slower at level 0, 4096: no faster)."""

_F = np.float32
_JIT: dict[str, Any] = {"cache": True, "nogil": True, "boundscheck": False}
# reassociation is harmless here: every sum is of exact small integers in float32
_FAST = {"reassoc", "contract"}


@numba.njit(fastmath=_FAST, **_JIT)
def _step8(src: Any, q: int, lags: Any, c0: int, c1: int, acc: Any, tot: Any) -> None:
    """Frames ``q .. q + 7`` of ``src`` (rows ``q - tau`` are ``tau`` frames earlier),
    pixels ``c0 .. c1 - 1``, added to the pass accumulators ``acc`` / ``tot`` (from 0)."""
    a0, a1, a2, a3 = src[q, c0:c1], src[q + 1, c0:c1], src[q + 2, c0:c1], src[q + 3, c0:c1]
    a4, a5, a6, a7 = src[q + 4, c0:c1], src[q + 5, c0:c1], src[q + 6, c0:c1], src[q + 7, c0:c1]
    m = c1 - c0
    t = tot[:m]
    for j in range(m):
        t[j] += (
            (_F(a0[j]) + _F(a1[j]))
            + (_F(a2[j]) + _F(a3[j]))
            + ((_F(a4[j]) + _F(a5[j])) + (_F(a6[j]) + _F(a7[j])))
        )
    for k in range(lags.shape[0]):
        s = q - lags[k]
        b0, b1, b2, b3 = src[s, c0:c1], src[s + 1, c0:c1], src[s + 2, c0:c1], src[s + 3, c0:c1]
        b4, b5, b6, b7 = src[s + 4, c0:c1], src[s + 5, c0:c1], src[s + 6, c0:c1], src[s + 7, c0:c1]
        a = acc[k, :m]
        for j in range(m):
            a[j] += (
                (_F(a0[j]) * _F(b0[j]) + _F(a1[j]) * _F(b1[j]))
                + (_F(a2[j]) * _F(b2[j]) + _F(a3[j]) * _F(b3[j]))
                + (_F(a4[j]) * _F(b4[j]) + _F(a5[j]) * _F(b5[j]))
                + (_F(a6[j]) * _F(b6[j]) + _F(a7[j]) * _F(b7[j]))
            )


# The APS default (4 lags per level: lags 1..8 at level 0, 5..8 above) written out: the 16
# frames of a step are converted once and every product of a lag stays in registers (the
# generic step converts each frame once per lag). Four lags per loop: eight lags in one loop
# spilled registers and ran 6x slower. Level 0: 36 instead of 56 ms for 2000 x 65536 uint8 frames.
@numba.njit(fastmath=_FAST, **_JIT)
def _step8_lags1to4(src: Any, q: int, c0: int, c1: int, acc: Any, tot: Any) -> None:
    """Frames ``q .. q + 7`` of ``src``, lags 1 .. 4 (``acc`` rows 0 .. 3) and the frame sums."""
    p0 = src[q + 0, c0:c1]
    p1 = src[q + 1, c0:c1]
    p2 = src[q + 2, c0:c1]
    p3 = src[q + 3, c0:c1]
    p4 = src[q + 4, c0:c1]
    p5 = src[q + 5, c0:c1]
    p6 = src[q + 6, c0:c1]
    p7 = src[q + 7, c0:c1]
    m1 = src[q - 1, c0:c1]
    m2 = src[q - 2, c0:c1]
    m3 = src[q - 3, c0:c1]
    m4 = src[q - 4, c0:c1]
    m = c1 - c0
    t = tot[:m]
    a0 = acc[0, :m]
    a1 = acc[1, :m]
    a2 = acc[2, :m]
    a3 = acc[3, :m]
    for j in range(m):
        x0 = _F(p0[j])
        x1 = _F(p1[j])
        x2 = _F(p2[j])
        x3 = _F(p3[j])
        x4 = _F(p4[j])
        x5 = _F(p5[j])
        x6 = _F(p6[j])
        x7 = _F(p7[j])
        y1 = _F(m1[j])
        y2 = _F(m2[j])
        y3 = _F(m3[j])
        y4 = _F(m4[j])
        t[j] += ((x0 + x1) + (x2 + x3)) + ((x4 + x5) + (x6 + x7))
        a0[j] += ((x0 * y1 + x1 * x0) + (x2 * x1 + x3 * x2)) + ((x4 * x3 + x5 * x4) + (x6 * x5 + x7 * x6))
        a1[j] += ((x0 * y2 + x1 * y1) + (x2 * x0 + x3 * x1)) + ((x4 * x2 + x5 * x3) + (x6 * x4 + x7 * x5))
        a2[j] += ((x0 * y3 + x1 * y2) + (x2 * y1 + x3 * x0)) + ((x4 * x1 + x5 * x2) + (x6 * x3 + x7 * x4))
        a3[j] += ((x0 * y4 + x1 * y3) + (x2 * y2 + x3 * y1)) + ((x4 * x0 + x5 * x1) + (x6 * x2 + x7 * x3))


@numba.njit(fastmath=_FAST, **_JIT)
def _step8_lags5to8_rows4(src: Any, q: int, c0: int, c1: int, acc: Any, tot: Any) -> None:
    """Frames ``q .. q + 7`` of ``src``, lags 5 .. 8 (``acc`` rows 4 .. 7; level 0 with 4 lags per level)."""
    p0 = src[q + 0, c0:c1]
    p1 = src[q + 1, c0:c1]
    p2 = src[q + 2, c0:c1]
    p3 = src[q + 3, c0:c1]
    p4 = src[q + 4, c0:c1]
    p5 = src[q + 5, c0:c1]
    p6 = src[q + 6, c0:c1]
    p7 = src[q + 7, c0:c1]
    m1 = src[q - 1, c0:c1]
    m2 = src[q - 2, c0:c1]
    m3 = src[q - 3, c0:c1]
    m4 = src[q - 4, c0:c1]
    m5 = src[q - 5, c0:c1]
    m6 = src[q - 6, c0:c1]
    m7 = src[q - 7, c0:c1]
    m8 = src[q - 8, c0:c1]
    m = c1 - c0
    a0 = acc[4, :m]
    a1 = acc[5, :m]
    a2 = acc[6, :m]
    a3 = acc[7, :m]
    for j in range(m):
        x0 = _F(p0[j])
        x1 = _F(p1[j])
        x2 = _F(p2[j])
        x3 = _F(p3[j])
        x4 = _F(p4[j])
        x5 = _F(p5[j])
        x6 = _F(p6[j])
        x7 = _F(p7[j])
        y1 = _F(m1[j])
        y2 = _F(m2[j])
        y3 = _F(m3[j])
        y4 = _F(m4[j])
        y5 = _F(m5[j])
        y6 = _F(m6[j])
        y7 = _F(m7[j])
        y8 = _F(m8[j])
        a0[j] += ((x0 * y5 + x1 * y4) + (x2 * y3 + x3 * y2)) + ((x4 * y1 + x5 * x0) + (x6 * x1 + x7 * x2))
        a1[j] += ((x0 * y6 + x1 * y5) + (x2 * y4 + x3 * y3)) + ((x4 * y2 + x5 * y1) + (x6 * x0 + x7 * x1))
        a2[j] += ((x0 * y7 + x1 * y6) + (x2 * y5 + x3 * y4)) + ((x4 * y3 + x5 * y2) + (x6 * y1 + x7 * x0))
        a3[j] += ((x0 * y8 + x1 * y7) + (x2 * y6 + x3 * y5)) + ((x4 * y4 + x5 * y3) + (x6 * y2 + x7 * y1))


@numba.njit(fastmath=_FAST, **_JIT)
def _step8_lags5to8(src: Any, q: int, c0: int, c1: int, acc: Any, tot: Any) -> None:
    """Frames ``q .. q + 7`` of ``src``, lags 5 .. 8 (``acc`` rows 0 .. 3) and the frame sums: a
    level above 0 with 4 lags per level."""
    p0 = src[q + 0, c0:c1]
    p1 = src[q + 1, c0:c1]
    p2 = src[q + 2, c0:c1]
    p3 = src[q + 3, c0:c1]
    p4 = src[q + 4, c0:c1]
    p5 = src[q + 5, c0:c1]
    p6 = src[q + 6, c0:c1]
    p7 = src[q + 7, c0:c1]
    m1 = src[q - 1, c0:c1]
    m2 = src[q - 2, c0:c1]
    m3 = src[q - 3, c0:c1]
    m4 = src[q - 4, c0:c1]
    m5 = src[q - 5, c0:c1]
    m6 = src[q - 6, c0:c1]
    m7 = src[q - 7, c0:c1]
    m8 = src[q - 8, c0:c1]
    m = c1 - c0
    t = tot[:m]
    a0 = acc[0, :m]
    a1 = acc[1, :m]
    a2 = acc[2, :m]
    a3 = acc[3, :m]
    for j in range(m):
        x0 = _F(p0[j])
        x1 = _F(p1[j])
        x2 = _F(p2[j])
        x3 = _F(p3[j])
        x4 = _F(p4[j])
        x5 = _F(p5[j])
        x6 = _F(p6[j])
        x7 = _F(p7[j])
        y1 = _F(m1[j])
        y2 = _F(m2[j])
        y3 = _F(m3[j])
        y4 = _F(m4[j])
        y5 = _F(m5[j])
        y6 = _F(m6[j])
        y7 = _F(m7[j])
        y8 = _F(m8[j])
        t[j] += ((x0 + x1) + (x2 + x3)) + ((x4 + x5) + (x6 + x7))
        a0[j] += ((x0 * y5 + x1 * y4) + (x2 * y3 + x3 * y2)) + ((x4 * y1 + x5 * x0) + (x6 * x1 + x7 * x2))
        a1[j] += ((x0 * y6 + x1 * y5) + (x2 * y4 + x3 * y3)) + ((x4 * y2 + x5 * y1) + (x6 * x0 + x7 * x1))
        a2[j] += ((x0 * y7 + x1 * y6) + (x2 * y5 + x3 * y4)) + ((x4 * y3 + x5 * y2) + (x6 * y1 + x7 * x0))
        a3[j] += ((x0 * y8 + x1 * y7) + (x2 * y6 + x3 * y5)) + ((x4 * y4 + x5 * y3) + (x6 * y2 + x7 * y1))


@numba.njit(**_JIT)
def _step8_of(kind: int, src: Any, q: int, lags: Any, c0: int, c1: int, acc: Any, tot: Any) -> None:
    """The step of ``kind`` (see :func:`_correlate`)."""
    if kind == 1:
        _step8_lags1to4(src, q, c0, c1, acc, tot)
        _step8_lags5to8_rows4(src, q, c0, c1, acc, tot)
    elif kind == 2:
        _step8_lags5to8(src, q, c0, c1, acc, tot)
    else:
        _step8(src, q, lags, c0, c1, acc, tot)


@numba.njit(fastmath=_FAST, **_JIT)
def _step1(src: Any, q: int, lags: Any, c0: int, c1: int, acc: Any, tot: Any) -> None:
    """Frame ``q`` of ``src`` alone."""
    a0 = src[q, c0:c1]
    m = c1 - c0
    t = tot[:m]
    for j in range(m):
        t[j] += _F(a0[j])
    for k in range(lags.shape[0]):
        b0 = src[q - lags[k], c0:c1]
        a = acc[k, :m]
        for j in range(m):
            a[j] += _F(a0[j]) * _F(b0[j])


@numba.njit(**_JIT)
def _pair_rows(x: Any, start: int, stop: int, c0: int, c1: int, pairs: Any) -> None:
    """``pairs[i] = x[2 i] + x[2 i + 1]`` for pairs ``start .. stop - 1``, through float32
    (exact below 2**24; numba's integer sums would be int64 and scalar)."""
    m = c1 - c0
    for i in range(start, stop):
        a, b, out = x[2 * i, c0:c1], x[2 * i + 1, c0:c1], pairs[i, c0:c1]
        for j in range(m):
            out[j] = _F(a[j]) + _F(b[j])


@numba.njit(**_JIT)
def _add_pass(
    products: Any, total: Any, acc: Any, tot: Any, c0: int, c1: int, out_p: Any, out_t: Any
) -> None:
    """``out = previous sums + the pass's float32 sums`` over pixels ``c0 .. c1 - 1``."""
    m = c1 - c0
    for k in range(products.shape[0]):
        src, out, a = products[k, c0:c1], out_p[k, c0:c1], acc[k]
        for j in range(m):
            out[j] = src[j] + a[j]
    src, out = total[c0:c1], out_t[c0:c1]
    for j in range(m):
        out[j] = src[j] + tot[j]


@numba.njit(parallel=True, **_JIT)
def _correlate(
    y0: Any,
    x: Any,
    lags: Any,
    products: Any,
    total: Any,
    w: int,
    out_products: Any,
    out_total: Any,
    pairs: Any,
    n_segments: int,
    kind: int,
) -> None:
    """Frames ``r < lead`` are read from ``y0`` (row ``w + r``, after the ``w`` history
    rows), the others from ``x``, so that ``r - tau`` always has a row. ``kind``: 1 for the
    lags 1 .. 8, 2 for 5 .. 8, 0 for any other lags (generic step)."""
    n, p = x.shape
    lead = y0.shape[0] - w
    n_pairs = pairs.shape[0]
    seg = (p + n_segments - 1) // n_segments
    n_lags = lags.shape[0]
    for part in numba.prange(n_segments):
        s0 = part * seg
        s1 = min(p, s0 + seg)
        acc = np.empty((n_lags, PIXELS), dtype=_F)  # one pass's sums stay in L1
        tot = np.empty(PIXELS, dtype=_F)
        for c0 in range(s0, s1, PIXELS):
            c1 = min(c0 + PIXELS, s1)
            acc[:] = 0
            tot[:] = 0
            r = 0
            paired = 0
            while r < n:
                if r + 8 <= n and (r + 8 <= lead or r >= lead):
                    if r < lead:
                        _step8_of(kind, y0, w + r, lags, c0, c1, acc, tot)
                    else:
                        _step8_of(kind, x, r, lags, c0, c1, acc, tot)
                    if r == 2 * paired and paired + 4 <= n_pairs:  # while the step's rows are in L1
                        _pair_rows(x, paired, paired + 4, c0, c1, pairs)
                        paired += 4
                    r += 8
                else:
                    if r < lead:
                        _step1(y0, w + r, lags, c0, c1, acc, tot)
                    else:
                        _step1(x, r, lags, c0, c1, acc, tot)
                    r += 1
            _add_pass(products, total, acc, tot, c0, c1, out_products, out_total)
            _pair_rows(x, paired, n_pairs, c0, c1, pairs)


def correlate_group(
    hist: np.ndarray[Any, Any],
    x: np.ndarray[Any, Any],
    lags: tuple[int, ...],
    products: np.ndarray[Any, Any],
    total: np.ndarray[Any, Any],
    pair_dtype: np.dtype[Any] | None,
    *,
    in_place: bool = False,
) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any], np.ndarray[Any, Any] | None]:
    """``products + `` the lag-product sums ``(n_lags, P)`` and ``total +`` the frame sums
    ``(P,)`` of the ``n`` frames ``x`` given the level's last ``window`` frames ``hist``
    (``max(lags) <= window``), and their pair sums ``(n // 2, P)`` in ``pair_dtype`` (None:
    not wanted). The sums are new float64 arrays or, ``in_place`` (writeable C-contiguous
    float64 ``products`` and ``total``), those two arrays updated.

    The group's sums are float32: the caller checks they are exact, which bounds every
    count below 2**12 (``n * count**2 < 2**24``). The loop therefore reads the frames as
    uint8 or, converted if they are wider, uint16, and writes uint16 pairs: two compiled
    variants in all (each takes seconds to compile) whatever the input's integer type."""
    n, p = x.shape
    frame_dtype = np.uint8 if x.dtype == np.uint8 and hist.dtype == np.uint8 else np.uint16
    lag_arr = np.asarray(lags, dtype=np.int64)
    lead = min(n, int(lag_arr.max()))
    xc = np.ascontiguousarray(x, dtype=frame_dtype)
    y0 = np.concatenate([hist.astype(frame_dtype, copy=False), xc[:lead]])
    if in_place:
        out_products, out_total = products, total
    else:
        out_products, out_total = np.empty((len(lags), p), dtype=np.float64), np.empty(p, dtype=np.float64)
    pairs = np.empty((n // 2 if pair_dtype is not None else 0, p), dtype=np.uint16)
    prod = np.ascontiguousarray(products, dtype=np.float64)
    tot = np.ascontiguousarray(total, dtype=np.float64)
    kind = 1 if lags == tuple(range(1, 9)) else 2 if lags == (5, 6, 7, 8) else 0
    with parallel_region():
        _correlate(
            *map(readonly, (y0, xc, lag_arr, prod, tot)),
            hist.shape[0],
            out_products,
            out_total,
            pairs,
            _segments(p),
            kind,
        )
    if pair_dtype is None:
        return out_products, out_total, None
    return out_products, out_total, pairs.astype(pair_dtype, copy=False)


def _segments(n_pixels: int) -> int:
    """One contiguous pixel segment per thread, none smaller than a pass."""
    return max(1, min(int(numba.get_num_threads()), -(-n_pixels // PIXELS)))
