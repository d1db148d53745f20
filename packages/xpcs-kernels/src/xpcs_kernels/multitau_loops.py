"""numba loops of the multi-tau lag sums on the CPU (see :mod:`xpcs_kernels.compiled`).

:func:`correlate_group` does what the array kernel of
:mod:`xpcs_kernels.multitau_levels` does for a group of frames of one level: per pixel the
lag-product sums ``sum_t x[t] x[t - tau]``, the frame sum, and the pair sums passed up to the
next level. Accumulators are float32, so the caller uses it only where the level's count
bound proves every sum of the group below 2**24 (exact).

Layout, measured on a 2-core AVX2 machine (2000 x 65536 uint8 frames, 8 lags: 45 ms where
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

__all__ = ["PIXELS", "correlate_group"]

PIXELS = 1024
"""Pixels per inner pass."""

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
def _pair_rows(x: Any, count: int, c0: int, c1: int, pairs: Any, wide: bool) -> None:
    """``pairs[i] = x[2 i] + x[2 i + 1]`` for the first ``count`` pairs, through float32
    (exact for sums below 2**24; numba's integer sums would be int64 and scalar) or,
    ``wide``, float64."""
    m = c1 - c0
    for i in range(count):
        a, b, out = x[2 * i, c0:c1], x[2 * i + 1, c0:c1], pairs[i, c0:c1]
        if wide:
            for j in range(m):
                out[j] = np.float64(a[j]) + np.float64(b[j])
        else:
            for j in range(m):
                out[j] = _F(a[j]) + _F(b[j])


@numba.njit(parallel=True, **_JIT)
def _correlate(
    y0: Any,
    w: int,
    x: Any,
    lags: Any,
    products: Any,
    total: Any,
    out_products: Any,
    out_total: Any,
    pairs: Any,
    wide: bool,
    n_segments: int,
) -> None:
    """Frames ``r < lead`` are read from ``y0`` (row ``w + r``, after the ``w`` history
    rows), the others from ``x``, so that ``r - tau`` always has a row."""
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
            m = c1 - c0
            acc[:] = 0
            tot[:] = 0
            r = 0
            while r < n:
                if r + 8 <= n and (r + 8 <= lead or r >= lead):
                    if r < lead:
                        _step8(y0, w + r, lags, c0, c1, acc, tot)
                    else:
                        _step8(x, r, lags, c0, c1, acc, tot)
                    r += 8
                else:
                    if r < lead:
                        _step1(y0, w + r, lags, c0, c1, acc, tot)
                    else:
                        _step1(x, r, lags, c0, c1, acc, tot)
                    r += 1
            for k in range(n_lags):
                src, out, a = products[k, c0:c1], out_products[k, c0:c1], acc[k]
                for j in range(m):
                    out[j] = src[j] + a[j]
            src, out = total[c0:c1], out_total[c0:c1]
            for j in range(m):
                out[j] = src[j] + tot[j]
            _pair_rows(x, n_pairs, c0, c1, pairs, wide)


def correlate_group(
    hist: np.ndarray[Any, Any],
    x: np.ndarray[Any, Any],
    lags: tuple[int, ...],
    products: np.ndarray[Any, Any],
    total: np.ndarray[Any, Any],
    pair_dtype: np.dtype[Any] | None,
) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any], np.ndarray[Any, Any] | None]:
    """``products + `` the lag-product sums ``(n_lags, P)`` and ``total +`` the frame sums
    ``(P,)`` (new float64 arrays) of the ``n`` frames ``x`` given the level's last
    ``window`` frames ``hist`` (``max(lags) <= window``), and their pair sums
    ``(n // 2, P)`` in ``pair_dtype`` (None: not wanted). The group's sums are float32: the
    caller checks they are exact."""
    n, p = x.shape
    lag_arr = np.asarray(lags, dtype=np.int64)
    lead = min(n, int(lag_arr.max()))
    y0 = np.concatenate([hist, x[:lead].astype(hist.dtype, copy=False)])
    xc = np.ascontiguousarray(x)
    out_products = np.empty((len(lags), p), dtype=np.float64)
    out_total = np.empty(p, dtype=np.float64)
    pairs = np.empty((n // 2 if pair_dtype is not None else 0, p), dtype=pair_dtype or x.dtype)
    prod = np.ascontiguousarray(products, dtype=np.float64)
    tot = np.ascontiguousarray(total, dtype=np.float64)
    wide = pairs.dtype.itemsize > 2  # int32 / float64 pair sums may exceed float32's integers
    _correlate(y0, hist.shape[0], xc, lag_arr, prod, tot, out_products, out_total, pairs, wide, _segments(p))
    return out_products, out_total, (pairs if pair_dtype is not None else None)


def _segments(n_pixels: int) -> int:
    """One contiguous pixel segment per thread, none smaller than a pass."""
    return max(1, min(numba.get_num_threads(), -(-n_pixels // PIXELS)))
