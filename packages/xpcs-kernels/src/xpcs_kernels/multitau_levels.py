"""The multi-tau level structure: per-pixel lag sums of a stream of frames.

Level 0 holds the (effective) frames; level ``l + 1`` holds the sums of consecutive pairs
of level-``l`` frames (an odd last frame is not passed up), so a level-``l`` frame is the
sum of ``2**l`` frames. Level 0 correlates lags ``1 .. 2 * dpl``, every higher level the
relative lags ``dpl + 1 .. 2 * dpl`` (``dpl``: lags per level), which is the APS delay list.

For every level and relative lag ``tau`` the stream keeps, per pixel, the exact sums from
which G2, IP and IF follow at the end (:class:`LevelSums`): the lag-product sum
``sum_t x[t] * x[t + tau]``, the total ``sum_t x[t]``, and the sums of the first and of
the last ``tau`` frames. Sums are float64 (integers exact to 2**53).

Speed: each call of the compiled kernel correlates a group of frames of one level with a
loop over blocks of 16 frames whose body is one element-wise expression over the pixels
(all lag products of the block added in registers; the accumulators are read and written
once per block). XLA's CPU reductions over the frame axis are 20-50x slower than this
formulation, so there is no reduction over frames at all. The block's frames are taken
in their stored (narrow) dtype and converted row by row inside the fused expression: a
converted block would be written to memory first. Integer counts are multiplied and
summed in int16 when a bound on the counts proves the group's sums stay below 2**15
(twice the SIMD lanes of float32 and half the accumulator bytes; sparse 8-bit data at
the low levels), in float32 below 2**24, in int32 below 2**31 (all exact), float64
otherwise. Without a compiler (NumPy) the same sums are one ``einsum`` per lag over
cache-sized pixel tiles instead of the frame-block loop (int16 is 2x faster than float32
there too).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any, cast

import numpy as np

import xpcs_device
from xpcs_kernels.compiled import host_array
from xpcs_protocol import Array, BackendProtocol

__all__ = ["LevelSums", "level_lags"]

_INT32_LIMIT = 2**31
_INT16_LIMIT = 2**15
_FLOAT32_EXACT = 2**24  # every integer below it is a float32
_BLOCK = 16  # frames per loop iteration of the kernel (the accumulators are read once per block)
_MIN_GROUP = 8  # frames per kernel call at least (a power of two)
_NUMPY_TILE = 4096  # pixels per NumPy product pass (a group's tile stays in L2)


def level_lags(n_frames: int | None, lags_per_level: int) -> tuple[tuple[int, ...], ...]:
    """Relative lags of each level (level ``l`` lag ``tau`` is ``tau * 2**l`` frames) for a
    run of ``n_frames`` frames: a lag is kept while it is shorter than the level's number
    of frames ``n_frames // 2**l`` (boost_corr ``gen_tau_bin``, which also stops there).
    ``n_frames=None``: the lags of every level that could ever be needed (60 levels)."""
    dpl = lags_per_level
    out: list[tuple[int, ...]] = []
    for level in range(61):
        lags = range(1, 2 * dpl + 1) if level == 0 else range(dpl + 1, 2 * dpl + 1)
        if n_frames is None:
            out.append(tuple(lags))
            continue
        kept = tuple(t for t in lags if t < n_frames >> level)
        if not kept:
            break
        out.append(kept)
        if len(kept) < len(lags):
            break
    return tuple(out)


@dataclass(frozen=True, eq=False)
class LevelSums:
    """Per-pixel sums of one level (arrays of the active backend, float64)."""

    level: int
    lags: tuple[int, ...]
    """Relative lags (frames of this level)."""
    n_frames: int
    """Frames of this level."""
    products: Array
    """``(n_lags, P)`` ``sum_t x[t] * x[t + tau]``."""
    total: Array
    """``(P,)`` sum of all frames of the level."""
    head: Array
    """``(n_lags, P)`` sum of the first ``tau`` frames."""
    tail: Array
    """``(n_lags, P)`` sum of the last ``tau`` frames."""


# ----------------------------------------------------------------------- dtype rules
def store_dtype(level: int, bound: int | None, raw_dtype: np.dtype[Any]) -> np.dtype[Any]:
    """The dtype of the frames held at ``level``: the input's at level 0; above, the
    narrowest of uint8, uint16, int32 that holds ``bound * 2**level`` (the largest possible
    sum of ``2**level`` frames), float64 otherwise (float input, or counts too large)."""
    if level == 0:
        return raw_dtype
    if bound is None:
        return np.dtype(np.float64)
    peak = bound * 2**level
    # the narrowest type that holds every sum: the kernel's loop reads these frames once
    # per lag block, so bytes per pixel decide its speed
    for dtype in (np.uint8, np.uint16, np.int32):
        if peak <= np.iinfo(dtype).max:
            return np.dtype(dtype)
    return np.dtype(np.float64)


def compute_dtype(level: int, n: int, window: int, bound: int | None) -> np.dtype[Any]:
    """The narrowest exact accumulator of a group of ``n`` frames of ``level`` with counts
    at most ``bound``: int16 when every lag-product sum and frame sum stays below 2**15
    (half the bytes of float32, and twice its SIMD lanes in XLA and in NumPy's einsum),
    float32 below 2**24 (float32 holds every integer there, and its multiply-add is the
    fastest), int32 below 2**31, float64 otherwise (and for float input)."""
    if bound is None:
        return np.dtype(np.float64)
    peak = bound * 2**level
    for dtype, limit in ((np.int16, _INT16_LIMIT), (np.float32, _FLOAT32_EXACT), (np.int32, _INT32_LIMIT)):
        if n * peak * peak < limit and (n + window) * peak < limit:
            return np.dtype(dtype)
    return np.dtype(np.float64)


# ---------------------------------------------------------------------------- kernel
@functools.lru_cache(maxsize=256)
def _kernel(
    b: BackendProtocol,
    n: int,
    window: int,
    lags: tuple[int, ...],
    compute: str,
    pair_dtype: str | None,
    jit: bool,
) -> Callable[..., Any]:
    """Correlates ``n`` new frames of a level given its last ``window`` frames (compiled
    once per configuration and shape)."""
    block = min(_BLOCK, n)
    n_blocks = n // block
    f64 = np.float64
    # einsum only where it is NumPy's: a float32 einsum on JAX is a dot, which a GPU may run
    # in TF32 and round; the loop below stays exact on every device (compiled or not).
    if not b.supports_jit:
        return _einsum_kernel(b, n, window, lags, compute, pair_dtype)

    def kernel(hist: Array, x: Array, products: Array, total: Array) -> tuple[Any, ...]:
        y = b.concatenate([hist, b.astype(x, hist.dtype)])  # (window + n, P), oldest first
        offsets = b.arange(block + window, dtype=np.int32)

        def body(i: Any, carry: tuple[Array, Array]) -> tuple[Array, Array]:
            acc, acc_total = carry
            # rows converted one by one: a converted window would be written to memory
            # (the gather is not fused), the narrow stored one is 2-4x fewer bytes
            win = b.take(y, i * block + offsets, axis=0, fill_value=0)
            rows = [b.astype(win[j], compute) for j in range(block + window)]
            # Rows window .. window + block - 1 are the block's frames; row r - tau is
            # the frame tau earlier. Summed as one expression: fused, no frame reduction.
            outs = []
            for tau in lags:
                term = rows[window - tau] * rows[window]
                for j in range(1, block):
                    term = term + rows[window + j - tau] * rows[window + j]
                outs.append(term)
            frame_sum = rows[window]
            for j in range(1, block):
                frame_sum = frame_sum + rows[window + j]
            return acc + b.stack(outs), acc_total + frame_sum

        p = x.shape[1]
        init = (b.zeros((len(lags), p), dtype=compute), b.zeros((p,), dtype=compute))
        acc, acc_total = b.fori_loop(0, n_blocks, body, init)
        products = products + b.astype(acc, f64)
        total = total + b.astype(acc_total, f64)
        new_hist = y[n:]
        pairs = None
        if pair_dtype is not None:
            pairs = b.astype(x[0 : n - 1 : 2], pair_dtype) + b.astype(x[1:n:2], pair_dtype)
        return products, total, new_hist, pairs

    return b.jit(kernel) if jit else kernel


def _einsum_kernel(
    b: BackendProtocol, n: int, window: int, lags: tuple[int, ...], compute: str, pair_dtype: str | None
) -> Callable[..., Any]:
    """The same sums without a compiler: one sum-of-products ``einsum`` per lag over the
    frames (no product temporary), on pixel tiles small enough for the cache. Used on
    backends without a compiler (NumPy), where the loop over frame blocks would run in
    Python."""
    f64 = np.float64

    def kernel(hist: Array, x: Array, products: Array, total: Array) -> tuple[Any, ...]:
        # tile by tile, from the stored frames: no copy of the whole group, and each tile's
        # frames, accumulators and float64 sums stay in the cache
        p = int(x.shape[1])
        prod_tiles, total_tiles = [], []
        for start in range(0, p, _NUMPY_TILE):
            cols = slice(start, start + _NUMPY_TILE)
            tile = b.concatenate([b.astype(hist[:, cols], compute), b.astype(x[:, cols], compute)])
            cur = tile[window:]  # (n, tile), oldest first; row r - tau is tau frames earlier
            sums = b.stack([b.einsum("tp,tp->p", tile[window - tau : window - tau + n], cur) for tau in lags])
            prod_tiles.append(products[:, cols] + b.astype(sums, f64))
            total_tiles.append(total[cols] + b.astype(b.einsum("tp->p", cur), f64))  # stays in compute dtype
        if n >= window:
            new_hist = b.astype(x[n - window :], hist.dtype)  # a copy: x may be the caller's buffer
        else:
            new_hist = b.concatenate([hist[n:], b.astype(x, hist.dtype)])
        pairs = None
        if pair_dtype is not None:
            pairs = b.astype(x[0 : n - 1 : 2], pair_dtype) + b.astype(x[1:n:2], pair_dtype)
        return b.concatenate(prod_tiles, axis=1), b.concatenate(total_tiles), new_hist, pairs

    return kernel


# ----------------------------------------------------------------------------- state
@dataclass(frozen=True, eq=False)
class Level:
    """One level of a running correlator (immutable; arrays of the active backend)."""

    index: int
    lags: tuple[int, ...]
    hist: Array
    """``(window, P)`` the last ``window`` frames (zeros before the first), store dtype."""
    head: Array
    """``(window, P)`` the first ``window`` frames (zeros after the last)."""
    products: Array
    total: Array
    pending: tuple[Array, ...]
    n_pending: int
    n_frames: int
    """Frames correlated so far."""


@dataclass(frozen=True, eq=False)
class Core:
    """The levels of one correlator over P pixels (immutable)."""

    n_pixels: int
    window: int
    lags_per_level: int
    group: int
    """Frames per kernel call at every level (a power of two >= 8): higher levels wait for
    a whole group too, so that their per-call costs are spread over as many frames."""
    raw_dtype: np.dtype[Any]
    bound: int | None
    """A static upper bound of the counts of every input frame (None: float input)."""
    max_levels: int
    levels: tuple[Level, ...]
    n_frames: int
    compiled: bool = False
    """Groups whose sums are exact in float32 run the numba loop of
    :mod:`xpcs_kernels.multitau_loops` (:func:`xpcs_kernels.compiled.use_compiled`); their
    level state is then kept as host NumPy arrays."""
    owned: bool = False
    """Whether the compiled loop may add into the level sums in place: only for a core that
    no caller holds an earlier version of (``update_multitau(..., consume=True)``, as the
    one-pass :func:`xpcs_kernels.multitau.multitau` does); otherwise every update makes new
    arrays, so earlier states stay unchanged (two copies of the sums while it runs)."""


def new_core(
    n_pixels: int,
    lags_per_level: int,
    group: int,
    raw_dtype: np.dtype[Any],
    bound: int | None,
    max_levels: int,
    *,
    compiled: bool = False,
) -> Core:
    return Core(
        n_pixels=n_pixels,
        window=2 * lags_per_level,
        lags_per_level=lags_per_level,
        group=group,
        raw_dtype=np.dtype(raw_dtype),
        bound=bound,
        max_levels=max_levels,
        levels=(),
        n_frames=0,
        compiled=compiled,
    )


def _new_level(core: Core, index: int) -> Level:
    dpl = core.lags_per_level
    lags = tuple(range(1, 2 * dpl + 1)) if index == 0 else tuple(range(dpl + 1, 2 * dpl + 1))
    dtype = store_dtype(index, core.bound, core.raw_dtype)

    def zeros(shape: tuple[int, ...], dt: Any) -> Array:
        return xpcs_device.place_on_device(np.zeros(shape, dtype=dt))

    p = core.n_pixels
    return Level(
        index=index,
        lags=lags,
        hist=zeros((core.window, p), dtype),
        head=zeros((core.window, p), dtype),
        products=zeros((len(lags), p), np.float64),
        total=zeros((p,), np.float64),
        pending=(),
        n_pending=0,
        n_frames=0,
    )


def _group_size(core: Core, index: int) -> int:
    # Compiled: a level correlates the pair sums of each group of the level below as they
    # come (no concatenation of waiting pieces; the loop has no per-call compilation).
    if core.compiled:
        return max(core.group >> index, _MIN_GROUP)
    return max(core.group, _MIN_GROUP)


def _correlate(
    b: BackendProtocol, core: Core, level: Level, x: Array, bound: int | None, jit: bool
) -> tuple[Level, Array | None]:
    """``level`` with the ``n`` frames ``x`` correlated (``n`` a power of two or a multiple
    of the block), and their pair sums for the next level (None when there is none)."""
    n = int(x.shape[0])
    window = core.window
    compute = compute_dtype(level.index, n, window, bound)
    wants_pairs = level.index + 1 < core.max_levels and n >= 2
    pair_dtype = str(store_dtype(level.index + 1, core.bound, core.raw_dtype)) if wants_pairs else None
    if core.compiled and compute in (np.int16, np.float32):
        products, total, hist, pairs = _compiled_group(b, level, x, pair_dtype, core.owned)
    else:
        # Backends are hashable (by identity); the protocol does not say so to the type checker.
        kernel = _kernel(cast(Any, b), n, window, level.lags, str(compute), pair_dtype, jit)
        if isinstance(x, np.ndarray):
            x = xpcs_device.place_on_device(x)
        products, total, hist, pairs = kernel(level.hist, x, level.products, level.total)
    head = level.head
    if level.n_frames < window:  # the first frames, kept for the IF sums
        take = min(window - level.n_frames, n)
        head = b.concatenate(
            [head[: level.n_frames], b.astype(x[:take], head.dtype), head[level.n_frames + take :]]
        )
    new = replace(level, products=products, total=total, hist=hist, head=head, n_frames=level.n_frames + n)
    return new, pairs


def _compiled_group(
    b: BackendProtocol, level: Level, x: Array, pair_dtype: str | None, owned: bool
) -> tuple[Any, Any, Any, Any]:
    """The array kernel's four results from the numba loop, as host NumPy arrays (a
    compiled level keeps its state on the host: no transfer per group). ``owned``: the
    level's sums may be updated in place (see :attr:`Core.owned`)."""
    from xpcs_kernels import multitau_loops

    hist = host_array(b, level.hist)
    xs = host_array(b, x)
    n, window = int(xs.shape[0]), int(hist.shape[0])
    products, total = host_array(b, level.products), host_array(b, level.total)
    # the first group's sums are the level's zeros (a device array on JAX): new arrays then
    in_place = owned and all(
        a.dtype == np.float64 and a.flags.writeable and a.flags.c_contiguous for a in (products, total)
    )
    products, total, pairs = multitau_loops.correlate_group(
        hist,
        xs,
        level.lags,
        products,
        total,
        None if pair_dtype is None else np.dtype(pair_dtype),
        in_place=in_place,
    )
    if n >= window:
        new_hist = xs[n - window :].astype(hist.dtype)  # a copy: x may be the caller's buffer
    else:
        new_hist = np.concatenate([hist[n:], xs.astype(hist.dtype)])
    return products, total, new_hist, pairs


def _push(core: Core, index: int, frames: Array) -> Core:
    if index >= core.max_levels:
        return core
    levels = list(core.levels)
    if index == len(levels):
        levels.append(_new_level(core, index))
    lvl = levels[index]
    levels[index] = replace(
        lvl, pending=(*lvl.pending, frames), n_pending=lvl.n_pending + int(frames.shape[0])
    )
    return replace(core, levels=tuple(levels))


def _take_pending(b: BackendProtocol, level: Level, count: int) -> tuple[Level, Array]:
    """The first ``count`` pending frames as one array, and the level without them."""
    # Level 0 waits on the host (NumPy views of the input chunks, no copy); it is placed on
    # the device one group at a time.
    if len(level.pending) == 1:
        data = level.pending[0]
    elif isinstance(level.pending[0], np.ndarray):
        data = np.concatenate(level.pending)
    else:
        data = b.concatenate(list(level.pending))
    if count == level.n_pending:
        return replace(level, pending=(), n_pending=0), data
    rest = data[count:]
    return replace(level, pending=(rest,), n_pending=level.n_pending - count), data[:count]


def _run_level(b: BackendProtocol, core: Core, index: int, final: bool, bound: int | None, jit: bool) -> Core:
    """Correlates the pending frames of level ``index`` in whole groups (and, when
    ``final``, the rest in decreasing powers of two), pushing pair sums up."""
    while True:
        if index >= len(core.levels):
            return core
        level = core.levels[index]
        group = _group_size(core, index)
        if level.n_pending >= group:
            count = (level.n_pending // group) * group
        elif final and level.n_pending > 0:
            count = 1 << (level.n_pending.bit_length() - 1)
        else:
            return core
        level, data = _take_pending(b, level, count)
        step = group if count >= group else count
        for start in range(0, count, step):
            level, pairs = _correlate(b, core, level, data[start : start + step], bound, jit)
            core = replace(
                core, levels=tuple(level if i == index else lv for i, lv in enumerate(core.levels))
            )
            if pairs is not None and int(pairs.shape[0]) > 0:
                core = _push(core, index + 1, pairs)
                core = _run_level(b, core, index + 1, False, bound, jit)


def feed(b: BackendProtocol, core: Core, frames: Array, bound: int | None, *, jit: bool) -> Core:
    """``core`` with the ``(n, P)`` frames appended to level 0 (correlated in whole groups;
    the rest waits). ``bound``: an upper bound of the counts of every frame fed so far
    (None for float input)."""
    core = _push(core, 0, frames)
    core = replace(core, n_frames=core.n_frames + int(frames.shape[0]))
    core = _run_level(b, core, 0, False, bound, jit)
    # Frames left waiting may be views of the caller's chunk: copy them (fewer than one
    # group), so that a caller reusing its buffer cannot change them.
    level0 = core.levels[0]
    if any(isinstance(x, np.ndarray) and x.base is not None for x in level0.pending):
        pending = tuple(np.array(x) if isinstance(x, np.ndarray) else x for x in level0.pending)
        core = replace(core, levels=(replace(level0, pending=pending), *core.levels[1:]))
    return core


def flush(b: BackendProtocol, core: Core, bound: int | None, *, jit: bool) -> Core:
    """``core`` with every pending frame of every level correlated (the end of the run)."""
    index = 0
    while index < len(core.levels):
        core = _run_level(b, core, index, True, bound, jit)
        index += 1
    return core


@functools.lru_cache(maxsize=256)
def _sums_kernel(
    b: BackendProtocol, rows: tuple[int, ...], lags: tuple[int, ...], jit: bool
) -> Callable[..., Any]:
    """The products of the wanted lags and the head / tail sums of a level's buffers."""
    f64 = np.float64

    def running(frames: list[Array]) -> list[Array]:
        # sums of the first 1, 2, ... frames as explicit adds (XLA's CPU cumsum is slow)
        out = [frames[0]]
        for frame in frames[1:]:
            out.append(out[-1] + frame)
        return out

    def kernel(products: Array, head: Array, hist: Array) -> tuple[Array, Array, Array]:
        window = int(head.shape[0])
        head_cum = running([b.astype(head[i], f64) for i in range(window)])  # first 1..window frames
        tail_cum = running([b.astype(hist[window - 1 - i], f64) for i in range(window)])  # last 1..window
        # every lag wanted (all but the last level): the level's own sums, not a copy
        pick = (
            products if rows == tuple(range(int(products.shape[0]))) else b.stack([products[r] for r in rows])
        )
        return pick, b.stack([head_cum[t - 1] for t in lags]), b.stack([tail_cum[t - 1] for t in lags])

    return b.jit(kernel) if jit else kernel


def level_sums(b: BackendProtocol, core: Core, *, jit: bool = True) -> tuple[LevelSums, ...]:
    """The sums of a flushed core for the lags of the APS delay list of its frame count."""
    wanted = level_lags(core.n_frames, core.lags_per_level)
    out: list[LevelSums] = []
    for index, lags in enumerate(wanted):
        level = core.levels[index]
        if level.n_pending:
            raise RuntimeError("level_sums needs a flushed core")
        rows = tuple(level.lags.index(t) for t in lags)
        kernel = _sums_kernel(cast(Any, b), rows, lags, jit)
        products, head, tail = kernel(level.products, level.head, level.hist)
        out.append(LevelSums(index, lags, level.n_frames, products, level.total, head, tail))
    return tuple(out)
