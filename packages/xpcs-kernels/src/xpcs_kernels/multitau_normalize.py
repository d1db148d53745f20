"""The APS normalisation of multi-tau sums: per-pixel G2, IP, IF, then static bins, then
dynamic bins.

For level ``l`` (scale ``s = 2**l``), relative lag ``tau`` and ``n_l`` frames of the level,
with frames that are sums of ``avg`` input frames (``avg`` > 1 averages frames first):

- ``G2 = products / ((n_l - tau) * s**2 * avg**2)``
- ``IP = (total - tail) / ((n_l - tau) * s * avg)``: mean of ``I(t)`` over ``t < n_l - tau``
- ``IF = (total - head) / ((n_l - tau) * s * avg)``: mean of ``I(t + tau)``

Static bin ``k`` (``n_k`` pixels): ``g2_static = <G2>_k / (<IP>_k <IF>_k)``, NaN where
``<IP>_k <IF>_k`` is 0 (no photon in the bin). Dynamic bin ``d``: the mean of
``g2_static`` over the static bins with pixels inside it (NaN if one of them is NaN);
its error is the standard error over its pixels of the per-pixel ``G2 / (IP IF)``,
``std(ddof=1) / sqrt(m)`` over the ``m`` pixels where ``IP IF > 0`` (pixels without
photons have no g2 and are left out; boost_corr counts them as 0), NaN when ``m < 2``.

On a CPU with numba (``compiled``, :mod:`xpcs_kernels.compiled`) the per-pixel work, the
bin sums of every delay row, is a loop of :mod:`xpcs_kernels.multitau_normalize_loops`;
the per-bin arithmetic that follows is the same code for both formulations.
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, cast

import numpy as np

import xpcs_device
from xpcs_kernels.compiled import host_array, readonly, use_compiled
from xpcs_kernels.multitau_levels import LevelSums
from xpcs_protocol import Array, BackendProtocol

__all__ = ["BinMaps", "Normalized", "bin_maps", "normalize"]


@dataclass(frozen=True, eq=False)
class BinMaps:
    """The pixels a correlator works on and their bins (host NumPy, static)."""

    frame_shape: tuple[int, int]
    pixels: np.ndarray[Any, Any] | None
    """Flat indices of the correlated pixels in the frame, or None: every pixel."""
    static: np.ndarray[Any, Any]
    """``(P,)`` static label of each correlated pixel (0: correlated but in no bin)."""
    dynamic: np.ndarray[Any, Any]
    """``(P,)`` dynamic label of each correlated pixel (0 likewise)."""
    n_static: int
    n_dynamic: int
    static_to_dynamic: np.ndarray[Any, Any]
    """``(n_static,)`` the dynamic label of each static bin (0: empty static bin)."""
    static_counts: np.ndarray[Any, Any]
    dynamic_counts: np.ndarray[Any, Any]
    """Pixels of each dynamic bin that are in a static bin."""

    @functools.cached_property
    def tile_segments(self) -> tuple[int, tuple[np.ndarray[Any, Any], ...]]:
        """The tile size and the correlated pixels grouped by tile and static label for the
        compiled loops (:func:`xpcs_kernels.multitau_normalize_loops.tile_segments`;
        computed once)."""
        from xpcs_kernels import multitau_normalize_loops as loops

        return loops.TILE, loops.tile_segments(self.static, loops.TILE)


def bin_maps(
    static: np.ndarray[Any, Any], dynamic: np.ndarray[Any, Any], n_static: int, n_dynamic: int
) -> BinMaps:
    """Maps for labels already checked (same 2-D shape, nested). Every pixel is correlated
    when at least half of them are in a static bin (no gather of the frames, as
    boost_corr's crop threshold); otherwise only those."""
    s = static.reshape(-1).astype(np.int64)
    d = np.where(s > 0, dynamic.reshape(-1).astype(np.int64), 0)
    valid = s > 0
    pixels = None if valid.mean() >= 0.5 else np.flatnonzero(valid)
    if pixels is not None:
        s, d = s[pixels], d[pixels]
    s2d = np.zeros(n_static + 1, dtype=np.int64)
    s2d[s] = d
    return BinMaps(
        frame_shape=(int(static.shape[0]), int(static.shape[1])),
        pixels=pixels,
        static=s,
        dynamic=d,
        n_static=n_static,
        n_dynamic=n_dynamic,
        static_to_dynamic=s2d[1:],
        static_counts=np.bincount(s, minlength=n_static + 1)[1:],
        dynamic_counts=np.bincount(d, minlength=n_dynamic + 1)[1:],
    )


@dataclass(frozen=True, eq=False)
class Normalized:
    delays: np.ndarray[Any, Any]
    """``(n_delay,)`` int64 lags in (effective) frames."""
    g2: Array
    g2_err: Array
    g2_static: Array
    G2: Array | None
    IP: Array | None
    IF: Array | None


_ONE_HOT_LIMIT = 2**23  # elements of a pixel x bin indicator matrix worth a matrix product
_ROWS_BUDGET = 2**22  # elements of one (rows, P) float64 temporary of a normalisation call


def _use_indicator(b: BackendProtocol, n_pixels: int, n_bins: int) -> bool:
    """Whether bin sums are a product with a 0/1 pixel x bin matrix: under a compiler and
    while the matrix is small (XLA's scatter-add is slow on CPU; NumPy's ``bincount``
    beats the product)."""
    return b.supports_jit and n_pixels * n_bins <= _ONE_HOT_LIMIT


def _indicator(b: BackendProtocol, labels: Array, n_bins: int) -> Array:
    """The ``(P, n_bins)`` 0/1 float64 pixel x bin matrix (label 0 in no column), built
    inside the compiled kernel (no host-side construction or transfer per call)."""
    hit = b.reshape(labels, (-1, 1)) == b.reshape(b.arange(1, n_bins + 1, dtype=np.int64), (1, -1))
    return b.astype(hit, np.float64)


def _row_binner(
    b: BackendProtocol, labels: Array, n_rows: int, n_bins: int, indicator: Array | None
) -> Callable[[Array], Array]:
    """A function summing ``(n_rows, P)`` values per (row, label) -> ``(n_rows, n_bins)``
    (label 0 dropped): a matrix product with the 0/1 pixel x bin ``indicator`` where there
    is one, one offset ``bincount`` otherwise (its flat index built once, shared by every
    operand of the same shape)."""
    if indicator is not None:
        return lambda values: b.matmul(values, indicator)
    offsets = b.reshape(b.arange(n_rows, dtype=np.int64) * (n_bins + 1), (n_rows, 1))
    flat = b.reshape(offsets + labels, (-1,))

    def bins(values: Array) -> Array:
        sums = b.bincount(flat, b.reshape(values, (-1,)), length=n_rows * (n_bins + 1))
        return b.reshape(sums, (n_rows, n_bins + 1))[:, 1:]

    return bins


def _finish(
    b: BackendProtocol,
    n_dynamic: int,
    bin_sums: tuple[Array, Array, Array, Array, Array, Array],
    pairs: Array,
    scale: Array,
    s_counts: Array,
    occupied: Array,
    s2d: Array,
    per_dyn: Array,
) -> tuple[Array, Array, Array]:
    """g2, g2_err and g2_static from the bin sums of ``R`` delay rows (shared by the array
    and the compiled formulations): ``(R, n_static)`` sums of products, head, tail and the
    level totals per static bin, ``(R, n_dynamic)`` pixels with a per-pixel g2 and the sums
    of their squared deviations from the bin mean; ``pairs``, ``scale``: ``(R, 1)``."""
    f64 = np.float64
    prod_b, head_b, tail_b, total_b, n_def, ss = bin_sums
    n_rows = prod_b.shape[0]
    # the sums are subtracted before any division: a difference of exact sums is exactly 0
    # where a bin has no photon (XLA contracts a difference of quotients into a
    # multiply-add, whose rounding would leave a tiny non-zero IP or IF and no NaN)
    norm = s_counts * (pairs * scale)
    mean_g2 = prod_b / (norm * scale)
    mean_ip = (total_b - tail_b) / norm
    mean_if = (total_b - head_b) / norm
    denom = mean_ip * mean_if
    g2_static = b.where(denom > 0, mean_g2 / b.where(denom > 0, denom, 1.0), np.nan)
    # dynamic bins: mean over the occupied static bins inside
    # (a NaN static g2 is counted apart: in a matrix product NaN * 0 would spread it)
    occ = b.reshape(occupied, (1, -1))
    undefined = b.logical_and(occ, b.isnan(g2_static))
    g2_occ = b.where(b.logical_and(occ, b.logical_not(undefined)), g2_static, 0.0)
    s2d_ind = b.astype(
        b.reshape(s2d, (-1, 1)) == b.reshape(b.arange(1, n_dynamic + 1, dtype=np.int64), (1, -1)), f64
    )
    both_d = _row_binner(b, s2d, 2 * n_rows, n_dynamic, s2d_ind)(
        b.concatenate([g2_occ, b.astype(undefined, f64)], axis=0)
    )  # (small: static bins, not pixels)
    g2 = b.where(both_d[n_rows:] > 0, np.nan, both_d[:n_rows] / per_dyn)
    safe = b.where(n_def > 1, n_def, 2.0)
    g2_err = b.where(n_def > 1, b.sqrt(ss / (safe - 1.0) / safe), np.nan)
    return g2, g2_err, g2_static


def _pixel_values(
    b: BackendProtocol, products: Array, early: Array, late: Array, pairs: Array, scale: Array
) -> tuple[Array, Array, Array]:
    """Per-pixel G2, IP, IF of ``(R, P)`` rows (``early = total - tail``,
    ``late = total - head``; ``pairs``, ``scale``: ``(R, 1)``)."""
    norm = pairs * scale
    return products / (norm * scale), early / norm, late / norm


@functools.lru_cache(maxsize=64)
def _finish_kernel(b: BackendProtocol, n_dynamic: int, jit: bool) -> Callable[..., Any]:
    """:func:`_finish` compiled (the compiled loops' bin sums are its inputs)."""

    def kernel(bin_sums: tuple[Array, ...], pairs: Array, scale: Array, *consts: Array) -> tuple[Array, ...]:
        return _finish(b, n_dynamic, cast(Any, bin_sums), pairs, scale, *consts)

    return b.jit(kernel) if jit else kernel


@functools.lru_cache(maxsize=64)
def _normalize_kernel(
    b: BackendProtocol,
    n_static: int,
    n_dynamic: int,
    level_rows: tuple[int, ...],
    matrix_static: bool,
    matrix_dynamic: bool,
    keep_pixels: bool,
    jit: bool,
) -> Callable[..., Any]:
    """The array work of :func:`normalize` for a batch of levels with ``level_rows`` lags
    each (the frame counts and scales are arguments). :func:`normalize` batches as many
    levels as keep the per-pixel ``(rows, P)`` temporaries within ``_ROWS_BUDGET``
    elements, so the memory stays bounded for large detectors while small ones take one
    call.

    Bin sums are linear, so the static means come from bin sums of the raw level sums
    (the level totals binned once per level, not once per lag), scaled per row
    afterwards: the only per-pixel work is the per-pixel g2 of the errors."""
    f64 = np.float64
    row_level = np.repeat(np.arange(len(level_rows)), level_rows)  # the level of each row

    def kernel(
        sums: tuple[tuple[Array, Array, Array, Array, Array, Array], ...],
        slab: Array,
        dlab: Array,
        s_counts: Array,
        occupied: Array,
        s2d: Array,
        per_dyn: Array,
    ) -> tuple[Array, ...]:
        ind_static = _indicator(b, slab, n_static) if matrix_static else None
        ind_dynamic = _indicator(b, dlab, n_dynamic) if matrix_dynamic else None
        products = b.concatenate([lv[0] for lv in sums], axis=0)  # (R, P)
        head = b.concatenate([lv[2] for lv in sums], axis=0)  # sums of the first tau frames
        tail = b.concatenate([lv[3] for lv in sums], axis=0)  # of the last tau frames
        totals = b.stack([lv[1] for lv in sums])  # (L, P)
        pairs = b.reshape(b.concatenate([lv[4] for lv in sums]), (-1, 1))  # n - tau per row
        scale = b.reshape(b.concatenate([b.broadcast_to(lv[5], lv[4].shape) for lv in sums]), (-1, 1))
        n_rows = products.shape[0]
        # static bins: means of G2, IP = total - tail, IF = total - head over each bin's
        # pixels, from bin sums of the raw sums (one product per operand rather than one
        # of their (3R + L, P) concatenation, which would be written to memory first)
        static_bins = _row_binner(b, slab, n_rows, n_static, ind_static)
        prod_b, head_b, tail_b = (static_bins(v) for v in (products, head, tail))
        total_b = _row_binner(b, slab, len(sums), n_static, ind_static)(totals)
        total_b = b.take(total_b, b.asarray(row_level), axis=0)
        # errors: spread of the per-pixel g2 = G2 / (IP IF) = products * pairs / (early * late)
        # over the pixels of the dynamic bin that have one
        level_totals = b.concatenate(
            [b.broadcast_to(b.reshape(lv[1], (1, -1)), lv[0].shape) for lv in sums], axis=0
        )  # fused into its users, unlike a gather
        early, late = level_totals - tail, level_totals - head
        pix_den = early * late
        defined = pix_den > 0
        g2_pix = b.where(defined, products * pairs / b.where(defined, pix_den, 1.0), 0.0)
        dynamic_bins = _row_binner(b, dlab, n_rows, n_dynamic, ind_dynamic)
        n_def, sum_pix = dynamic_bins(b.astype(defined, f64)), dynamic_bins(g2_pix)
        mean = sum_pix / b.where(n_def > 0, n_def, 1.0)
        if ind_dynamic is not None:
            # each pixel's bin mean as a product (one 1 per row of the indicator: exact);
            # cheaper than XLA's gather on CPU
            mean_pix = b.matmul(mean, b.transpose(ind_dynamic))
        else:
            mean_pix = b.take(b.concatenate([b.zeros((n_rows, 1)), mean], axis=1), dlab, axis=1)
        dev = b.where(defined, g2_pix - mean_pix, 0.0)
        ss = dynamic_bins(dev * dev)
        out = _finish(
            b,
            n_dynamic,
            (prod_b, head_b, tail_b, total_b, n_def, ss),
            pairs,
            scale,
            s_counts,
            occupied,
            s2d,
            per_dyn,
        )
        if not keep_pixels:
            return out
        return (*out, *_pixel_values(b, products, early, late, pairs, scale))

    return b.jit(kernel) if jit else kernel


def _batches(sums: Sequence[LevelSums], n_pixels: int) -> list[list[LevelSums]]:
    """Consecutive levels grouped so that each group's rows x pixels stay within the budget
    (at least one level per group)."""
    out: list[list[LevelSums]] = []
    rows = 0
    for lv in sums:
        if out and (rows + len(lv.lags)) * n_pixels <= _ROWS_BUDGET:
            out[-1].append(lv)
            rows += len(lv.lags)
        else:
            out.append([lv])
            rows = len(lv.lags)
    return out


def normalize(
    b: BackendProtocol,
    sums: Sequence[LevelSums],
    maps: BinMaps,
    *,
    avg: int = 1,
    keep_pixels: bool = False,
    what: str = "the run",
    jit: bool = True,
    compiled: bool | None = None,
) -> Normalized:
    """g2 of the dynamic bins from the level sums (see the module docstring).

    ``compiled``: the per-pixel bin sums in a numba loop on the CPU (see
    :mod:`xpcs_kernels.compiled`: ``None`` where it can run, ``True`` required, ``False``
    the backend's array formulation); the same numbers either way."""
    on_host = use_compiled(compiled)
    f64 = np.float64
    occupied = maps.static_counts > 0
    per_dyn = np.bincount(maps.static_to_dynamic[occupied], minlength=maps.n_dynamic + 1)[1:]
    consts = xpcs_device.place_on_device(
        (
            maps.static,
            maps.dynamic,
            np.maximum(maps.static_counts, 1).astype(f64),  # empty static bins are unused
            occupied,
            np.where(occupied, maps.static_to_dynamic, 0),
            np.where(per_dyn > 0, per_dyn, np.nan).astype(f64),
        )
    )
    if on_host:
        parts = [_normalize_compiled(b, sums, maps, avg, keep_pixels, jit, consts)]
    else:
        parts = [
            _normalize_batch(b, batch, maps, avg, keep_pixels, jit, consts)
            for batch in _batches(sums, maps.static.shape[0])
        ]
    g2, g2_err, g2_static = (b.concatenate([part[i] for part in parts], axis=0) for i in range(3))
    delays = np.asarray([t * 2**lv.level for lv in sums for t in lv.lags], dtype=np.int64)
    _warn_undefined(b, g2_static, maps, what)
    G2 = IP = IF = None
    if keep_pixels:
        G2, IP, IF = (
            _to_frames(b, b.concatenate([part[i] for part in parts], axis=0), maps) for i in (3, 4, 5)
        )
    return Normalized(delays, g2, g2_err, g2_static, G2, IP, IF)


def _normalize_batch(
    b: BackendProtocol,
    batch: Sequence[LevelSums],
    maps: BinMaps,
    avg: int,
    keep_pixels: bool,
    jit: bool,
    consts: tuple[Array, ...],
) -> tuple[Array, ...]:
    """:func:`normalize`'s work for a batch of levels in the backend's array formulation."""
    args = []
    for lv in batch:
        pairs, scale = xpcs_device.place_on_device(
            (
                np.asarray([lv.n_frames - t for t in lv.lags], dtype=np.float64),
                np.asarray(float(2**lv.level * avg)),
            )
        )
        args.append((lv.products, lv.total, lv.head, lv.tail, pairs, scale))
    n_pixels = maps.static.shape[0]
    kernel = _normalize_kernel(
        cast(Any, b),
        maps.n_static,
        maps.n_dynamic,
        tuple(len(lv.lags) for lv in batch),
        _use_indicator(b, n_pixels, maps.n_static),
        _use_indicator(b, n_pixels, maps.n_dynamic),
        keep_pixels,
        jit,
    )
    return tuple(kernel(tuple(args), *consts))


def _normalize_compiled(
    b: BackendProtocol,
    sums: Sequence[LevelSums],
    maps: BinMaps,
    avg: int,
    keep_pixels: bool,
    jit: bool,
    consts: tuple[Array, ...],
) -> tuple[Array, ...]:
    """:func:`normalize`'s work with the per-pixel bin sums in the numba loops of
    :mod:`xpcs_kernels.multitau_normalize_loops` (delay rows on every core) and the per-bin
    arithmetic in :func:`_finish` (the array code's)."""
    from xpcs_kernels import multitau_normalize_loops as loops

    f64 = np.float64
    n_static, n_dynamic = maps.n_static, maps.n_dynamic
    tile, segments = maps.tile_segments
    s2d = np.zeros(n_static + 1, dtype=np.int32)
    s2d[maps.static] = maps.dynamic  # nested labels: one dynamic label per static one
    pairs = np.asarray([lv.n_frames - t for lv in sums for t in lv.lags], dtype=f64)
    scale = np.asarray([float(2**lv.level * avg) for lv in sums for _ in lv.lags])
    level_row = np.repeat(np.arange(len(sums)), [len(lv.lags) for lv in sums])
    products, head, tail, total = (
        # one array type for the loops whatever the backend hands over (a copy only if needed)
        [readonly(np.ascontiguousarray(host_array(b, getattr(lv, name)), dtype=f64)) for lv in sums]
        for name in ("products", "head", "tail", "total")
    )
    stat, dyn, totals = loops.bin_sums(
        products, head, tail, total, pairs, segments, tile, s2d, n_static, n_dynamic
    )
    totals = totals[level_row]
    host = (stat[:, 0, 1:], stat[:, 1, 1:], stat[:, 2, 1:], totals[:, 1:], dyn[:, 0, 1:], dyn[:, 2, 1:])
    bin_sums, pairs_d, scale_d = xpcs_device.place_on_device(
        (tuple(np.ascontiguousarray(x) for x in host), pairs.reshape(-1, 1), scale.reshape(-1, 1))
    )
    out = _finish_kernel(cast(Any, b), n_dynamic, jit)(bin_sums, pairs_d, scale_d, *consts[2:])
    if not keep_pixels:
        return tuple(out)
    pixel = [
        _pixel_values(
            b,
            lv.products,
            b.reshape(lv.total, (1, -1)) - lv.tail,
            b.reshape(lv.total, (1, -1)) - lv.head,
            *xpcs_device.place_on_device(
                (pairs[r : r + len(lv.lags), None], scale[r : r + len(lv.lags), None])
            ),
        )
        for lv, r in zip(sums, np.cumsum([0] + [len(lv.lags) for lv in sums]), strict=False)
    ]
    return (*out, *(b.concatenate([p[i] for p in pixel], axis=0) for i in range(3)))


def _to_frames(b: BackendProtocol, values: Array, maps: BinMaps) -> Array:
    """``(R, P)`` per-pixel values as ``(R, H, W)``, NaN on the pixels in no static bin."""
    h, w = maps.frame_shape
    rows = values.shape[0]
    in_bin = xpcs_device.place_on_device(maps.static > 0)
    values = b.where(b.reshape(in_bin, (1, -1)), values, np.nan)
    if maps.pixels is None:
        return b.reshape(values, (rows, h, w))
    full = b.full((h * w, rows), np.nan, dtype=np.float64)
    full = b.index_set(full, xpcs_device.place_on_device(maps.pixels), b.transpose(values))
    return b.reshape(b.transpose(full), (rows, h, w))


def _warn_undefined(b: BackendProtocol, g2_static: Array, maps: BinMaps, what: str) -> None:
    empty = np.flatnonzero(maps.dynamic_counts == 0) + 1
    if empty.size:
        warnings.warn(
            f"dynamic bins {empty[:10].tolist()} ({empty.size} in all) have no pixel in a static bin, "
            f"so their g2 is NaN in {what}; relabel the partition to the occupied bins "
            "(xpcs_kernels.relabel_occupied) or check the mask",
            RuntimeWarning,
            stacklevel=4,
        )
    occupied = maps.static_counts > 0
    bad = np.isnan(np.asarray(b.to_numpy(g2_static))) & occupied[None, :]
    if bad.any():
        bins = np.flatnonzero(bad.any(axis=0)) + 1
        dyn = np.unique(maps.static_to_dynamic[bins - 1])
        warnings.warn(
            f"static bins {bins[:10].tolist()} ({bins.size} in all) have no photon at "
            f"{int(bad.any(axis=1).sum())} delay(s) in {what} (mean intensity 0), so g2 is NaN "
            f"there and in dynamic bins {dyn[:10].tolist()}; use more frames or coarser bins",
            RuntimeWarning,
            stacklevel=4,
        )
