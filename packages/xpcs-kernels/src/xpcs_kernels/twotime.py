"""Two-time correlation C(t1, t2) of dense frames, streamed in chunks, with g2 from its diagonals.

For each selected dynamic bin ``d`` (``P_d`` pixels) and frames ``t1, t2``::

    C(t1, t2) = <X(t1) X(t2)>_d / (<X(t1)>_d <X(t2)>_d) = P_d * sum_p X(p, t1) X(p, t2) / (S(t1) S(t2))

with ``S(t) = sum_{p in d} X(p, t)``. ``X`` is the intensity after the normalisation:

- ``"aps"`` (default; boost_corr / APS 8-ID-I ``smooth="sqmap"``): every pixel's count in
  frame ``t`` is divided by the mean count of its static bin in that frame,
  ``X(p, t) = I(p, t) / mean_{q in s(p)} I(q, t)``; a static bin with no photon in a frame
  keeps its zeros (divided by 1, as boost_corr does). This removes the slow variation of
  the mean intensity with q inside a dynamic bin and in time.
- ``"plain"``: ``X = I``, the textbook definition.

Two-time g2 (``/xpcs/twotime/normalized_g2``): the mean of C along each diagonal
``t2 - t1 = tau``, tau in frames (tau = 0 included, as the APS files have it);
``normalized_g2_segments``: the same within each of ``n_segments`` consecutive segments of
``L = N // n_segments`` frames (the last ``N % n_segments`` frames are in no segment, as in
boost_corr), for the delays below ``L``. ``delays="multitau"`` keeps only the APS
multi-tau delay list (:func:`multitau_delays`).

Frames with no intensity in a bin (``S(t) = 0``) have NaN in their row and column of C,
the means along the diagonals skip them, and a ``RuntimeWarning`` names the bin and the
frames (boost_corr would silently put 0 there); a delay without a defined pair has NaN.

Computation: frames stream in chunks (:func:`~xpcs_kernels.frames.iter_frame_chunks`);
each chunk is checked, normalised and scaled in one compiled kernel (selected pixels
ordered by dynamic then static bin, so the static-bin frame sums are contiguous column
sums), giving ``Y(t, p) = X(t, p) sqrt(P_d) / S_d(t)`` in ``dtype`` (0 for frames with
``S_d(t) = 0``): a tile of C is then the bare product ``Y_I Y_J^T``, nothing else per
element. Frames are cut into blocks of at most ``block_frames`` aligned to the segments, so
a tile lies inside one segment or outside all of them and each tile needs one diagonal sum
(the run and its segment alike); the pair counts of the means come from the frame mask
(``O(N)`` per delay, not per tile). ``product="tiles"``: the upper block triangle, one GEMM
per bin and tile as soon as its frames have arrived (``N^2 P`` multiply-adds plus ``B/N``
of it), with ``keep_maps=False`` only the selected pixels and one tile in memory and
``on_tile`` receiving every upper tile; ``product="whole"`` (the default on a CPU when the
maps are kept): one ``Y Y^T`` per bin. On a CPU that path runs on host arrays, within a
fifth of a bare SYRK: ``Y`` normalised straight into one ``(N, P)`` buffer (uint8 / uint16
frames by a numba loop over the frames on every core, others 64 frames at a time with
``np.take``, integer ``reduceat`` group sums, cast then scale in place), one BLAS SYRK per
bin straight into the maps, float64 diagonal sums row by row; the maps are then placed on
the backend's device (JAX's CPU: XLA's GEMMs reach a third of BLAS's rate there). With
``compiled=False``, or on an accelerator, JAX stacks the products and sums them tile by
tile under ``jit``.

Memory: before anything is read, :func:`twotime_memory_bytes` estimates the storage (maps
``n_bins N^2``, the selected pixels ``N P``, tiles); beyond ``memory_budget`` (default:
half of ``MemAvailable``) :class:`TwoTimeMemoryError` says how much is needed and what to
do. For a plain iterator of unknown length the check is repeated as frames arrive.

Bad input raises: label maps that are not 2-D integer maps of the same shape, static bins
that straddle dynamic bins (APS), selected bins without pixels, frames of another shape,
NaN, infinite or negative counts on the selected pixels (masked pixels may hold anything),
fewer than 2 frames, fewer frames than segments.
"""

from __future__ import annotations

import functools
import itertools
import math
import os
import warnings
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Literal, cast

import numpy as np

import xpcs_device
from xpcs_kernels.compiled import parallel_region, readonly, use_compiled
from xpcs_kernels.frames import _check_dtype, frame_count, iter_frame_chunks
from xpcs_kernels.partitions import check_nested
from xpcs_kernels.reductions import FrameValueError, _frame_value_error
from xpcs_protocol import Array, BackendProtocol

__all__ = [
    "TwoTime",
    "TwoTimeMemoryError",
    "available_memory_bytes",
    "multitau_delays",
    "twotime",
    "twotime_memory_bytes",
]

Normalization = Literal["aps", "plain"]
DelaySpec = Literal["all", "multitau"] | Sequence[int] | np.ndarray[Any, Any]
TileCallback = Callable[[int, int, int, Any], None]

DEFAULT_BLOCK_FRAMES = 512
"""Largest frame block: tiles up to 512 x 512 keep the GEMMs efficient and the skewed
diagonal sums cache-sized."""


class TwoTimeMemoryError(MemoryError):
    """The two-time maps would not fit the memory budget (the message says what to change)."""


# ------------------------------------------------------------------------- results
@dataclass(frozen=True, eq=False)
class TwoTime:
    """Two-time results, arrays of the active backend (definitions in the module docstring).

    ``n_bins`` below is the number of processed (selected) dynamic bins.
    """

    c2: Array | None
    """``(n_bins, N, N)`` C(t1, t2), symmetric, in the computed dtype; None with ``keep_maps=False``."""
    g2: Array
    """``(n_delays, n_bins)`` float64 mean of C along the diagonals at ``delays``."""
    g2_segments: Array
    """``(n_segment_delays, n_segments, n_bins)`` float64: g2 within each segment."""
    delays: Array
    """``(n_delays,)`` int64 delays of ``g2`` in frames (tau = t2 - t1)."""
    segment_delays: Array
    """``(n_segment_delays,)`` int64 delays of ``g2_segments`` (those below the segment length)."""
    bins: tuple[int, ...]
    """The processed dynamic bins (1-based labels), in the order of the bin axes."""
    segment_bounds: tuple[int, ...]
    """``n_segments + 1`` frame boundaries ``s * L``; frames from the last one on are in no segment."""
    n_frames: int
    num_pts: tuple[int, ...]
    """Pixels of each processed bin."""

    def to_aps(self, *, stride_frame: int = 1, avg_frame: int = 1) -> dict[str, np.ndarray[Any, Any]]:
        """The datasets of ``/xpcs/twotime`` in an APS 8-ID-I result file, keyed by path
        relative to that group: ``correlation_map/c2_00001`` ... (upper triangle, lower
        half zero, float32, one per processed bin in order), ``normalized_g2``
        ``(n_delays, n_bins)``, ``normalized_g2_segments``, ``delay_list``,
        ``processed_bins``, ``config/stride_frame``, ``config/avg_frame``."""
        b = xpcs_device.get_backend()
        out: dict[str, np.ndarray[Any, Any]] = {}
        if self.c2 is not None:
            maps = np.asarray(b.to_numpy(self.c2))
            for k in range(maps.shape[0]):
                out[f"correlation_map/c2_{k + 1:05d}"] = np.triu(maps[k]).astype(np.float32)
        out["normalized_g2"] = np.asarray(b.to_numpy(self.g2))
        out["normalized_g2_segments"] = np.asarray(b.to_numpy(self.g2_segments))
        out["delay_list"] = np.asarray(b.to_numpy(self.delays))
        out["processed_bins"] = np.asarray(self.bins, dtype=np.int64)
        out["config/stride_frame"] = np.asarray(stride_frame, dtype=np.int64)
        out["config/avg_frame"] = np.asarray(avg_frame, dtype=np.int64)
        return out


# ------------------------------------------------------------------ small helpers
def multitau_delays(n_frames: int, lags_per_level: int = 4) -> np.ndarray[Any, Any]:
    """The APS multi-tau delay list below ``n_frames`` (frames): ``1 .. 2m``, then
    ``(m + 1 .. 2m) * 2**l`` for levels ``l >= 1`` (``m = lags_per_level``; m = 4 gives
    1..8, 10, 12, 14, 16, 20, 24, ...)."""
    m = _positive_int(lags_per_level, "lags_per_level")
    out = [d for d in range(1, 2 * m + 1) if d < n_frames]
    level = 1
    while (m + 1) * 2**level < n_frames:
        out.extend(d * 2**level for d in range(m + 1, 2 * m + 1) if d * 2**level < n_frames)
        level += 1
    return np.asarray(out, dtype=np.int64)


def available_memory_bytes() -> int:
    """``MemAvailable`` of ``/proc/meminfo`` (bytes), else free physical pages from ``sysconf``."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return int(os.sysconf("SC_AVPHYS_PAGES")) * int(os.sysconf("SC_PAGE_SIZE"))
    except (ValueError, OSError, AttributeError):
        return 8 * 1024**3  # unknown platform: assume a small workstation


def twotime_memory_bytes(
    n_frames: int,
    n_pixels: int,
    n_bins: int,
    dtype: Any = np.float32,
    *,
    keep_maps: bool = True,
    block_frames: int = DEFAULT_BLOCK_FRAMES,
    n_segments: int = 5,
) -> int:
    """Estimated peak memory (bytes) of :func:`twotime`: the maps ``n_bins N^2`` (if kept),
    the selected pixels ``N x n_pixels`` in ``dtype`` plus float64 frame sums, and the
    per-tile temporaries."""
    item = np.dtype(dtype).itemsize
    maps = n_bins * n_frames * n_frames * item if keep_maps else 0
    stack = n_frames * n_pixels * item + 3 * n_frames * n_bins * 8
    b = min(block_frames, n_frames)
    tiles = n_bins * b * b * (item + 8 * (n_segments + 2) * 2)
    return int(maps + stack + tiles)


def _positive_int(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def _label_map(labels: Any, name: str) -> np.ndarray[Any, Any]:
    lab = np.asarray(labels)
    if lab.ndim != 2:
        raise ValueError(f"{name} must be a 2-D (H, W) label map of the detector, got shape {lab.shape}")
    if lab.dtype.kind not in "iu":
        raise TypeError(
            f"{name} must be an integer label map (1-based bins, 0 = excluded), got dtype {lab.dtype}"
        )
    if lab.size and int(lab.min()) < 0:
        raise ValueError(f"{name} has negative labels (min {int(lab.min())}); labels are 0 or 1-based bins")
    return lab


def _check_dtype_arg(dtype: Any) -> np.dtype[Any]:
    dt: np.dtype[Any] = np.dtype(dtype)
    if dt not in (np.dtype(np.float32), np.dtype(np.float64)):
        raise ValueError(f"dtype must be float32 or float64, got {dt}")
    return dt


def _check_budget(needed: int, budget: int | None, what: str) -> None:
    limit = int(available_memory_bytes() // 2) if budget is None else int(budget)
    if needed > limit:
        gib = 1024**3
        raise TwoTimeMemoryError(
            f"the two-time computation ({what}) needs about {needed / gib:.2f} GiB but the memory "
            f"budget is {limit / gib:.2f} GiB (memory_budget; default half of MemAvailable). Select "
            "fewer bins (bins=...), use dtype=float32, a frame range (start/stop), or keep_maps=False "
            "with on_tile= to receive the map in tiles"
        )


@dataclass(frozen=True)
class _Selection:
    """The pixels of the selected dynamic bins, bin by bin contiguous."""

    bins: tuple[int, ...]
    frame_shape: tuple[int, int]
    pix: np.ndarray[Any, Any]  # (P,) flat pixel index
    col_bounds: tuple[int, ...]  # n_bins + 1 column boundaries
    bin_of_col: np.ndarray[Any, Any]  # (P,) 0-based bin position
    static_of_col: np.ndarray[Any, Any] | None  # (P,) 0-based compact static index (APS)
    static_counts: np.ndarray[Any, Any] | None  # (n_static,) pixels per static bin

    @property
    def n_pixels(self) -> int:
        return int(self.pix.shape[0])

    @property
    def group_bounds(self) -> tuple[int, ...]:
        """Column boundaries of the normalisation groups: static bins (APS) or dynamic bins."""
        if self.static_counts is None:
            return self.col_bounds
        return (0, *np.cumsum(self.static_counts).tolist())

    @property
    def bin_of_group(self) -> np.ndarray[Any, Any]:
        return self.bin_of_col[np.asarray(self.group_bounds[:-1], dtype=np.int64)].astype(np.int64)

    @property
    def num_pts(self) -> tuple[int, ...]:
        return tuple(int(self.col_bounds[k + 1] - self.col_bounds[k]) for k in range(len(self.bins)))


def _select(
    dynamic_labels: Any, static_labels: Any, bins: Sequence[int] | None, normalization: str
) -> _Selection:
    if normalization not in ("aps", "plain"):
        raise ValueError(f'normalization must be "aps" or "plain", got {normalization!r}')
    dyn = _label_map(dynamic_labels, "dynamic_labels")
    flat = dyn.ravel().astype(np.int64)
    occupied = np.flatnonzero(np.bincount(flat, minlength=1)[1:]) + 1
    if bins is None:
        if occupied.size == 0:
            raise ValueError("dynamic_labels has no pixel in any bin (all labels are 0)")
        chosen = tuple(int(k) for k in occupied)
    else:
        chosen = tuple(int(k) for k in np.atleast_1d(np.asarray(bins)).ravel())
        if not chosen:
            raise ValueError("bins is empty; pass None for every occupied dynamic bin")
        if len(set(chosen)) != len(chosen):
            raise ValueError(f"bins has repeated labels: {chosen}")
        empty = [k for k in chosen if k < 1 or k not in set(occupied.tolist())]
        if empty:
            raise ValueError(
                f"dynamic bins {empty} have no pixel (occupied bins: {occupied.tolist()[:20]}...); "
                "select occupied 1-based labels"
            )
    position = np.full(int(flat.max(initial=0)) + 1, -1, dtype=np.int64)
    position[list(chosen)] = np.arange(len(chosen))
    pos = position[flat]
    keep = np.flatnonzero(pos >= 0)
    static_of_col = static_counts = None
    if normalization == "aps":
        if static_labels is None:
            raise ValueError('normalization="aps" needs static_labels (the static roi map); or use "plain"')
        sta = _label_map(static_labels, "static_labels")
        if sta.shape != dyn.shape:
            raise ValueError(f"static_labels has shape {sta.shape} but dynamic_labels {dyn.shape}")
        check_nested(sta, dyn)  # each static bin inside one dynamic bin: smoothing stays in the bin
        # Columns sorted by (dynamic bin, static bin): static bins are contiguous column ranges.
        pix = keep[np.lexsort((sta.ravel()[keep], pos[keep]))]
        s = sta.ravel()[pix].astype(np.int64)
        if s.size and int(s.min()) == 0:
            raise ValueError(
                "some pixels of the selected dynamic bins have static label 0; every pixel of a "
                "dynamic bin must lie in a static bin (use maps from make_partitions)"
            )
        # Compact static index in column order (each static bin is one contiguous run).
        static_of_col = np.cumsum(np.r_[True, s[1:] != s[:-1]]) - 1 if s.size else s
        static_counts = np.bincount(static_of_col, minlength=int(static_of_col.max(initial=-1)) + 1)
    else:
        pix = keep[np.argsort(pos[keep], kind="stable")]
    bin_of_col = pos[pix]
    counts = np.bincount(bin_of_col, minlength=len(chosen))
    col_bounds = (0, *np.cumsum(counts).tolist())
    return _Selection(
        bins=chosen,
        frame_shape=(int(dyn.shape[0]), int(dyn.shape[1])),
        pix=pix.astype(np.int64),
        col_bounds=tuple(int(c) for c in col_bounds),
        bin_of_col=bin_of_col.astype(np.int32),
        static_of_col=None if static_of_col is None else static_of_col.astype(np.int32),
        static_counts=static_counts,
    )


def _delay_plan(
    delays: Any, n_frames: int, seg_len: int, lags_per_level: int
) -> tuple[np.ndarray[Any, Any], ...]:
    if isinstance(delays, str):
        if delays == "all":
            full = np.arange(n_frames, dtype=np.int64)
        elif delays == "multitau":
            full = multitau_delays(n_frames, lags_per_level)
        else:
            raise ValueError(
                f'delays must be "all", "multitau" or a sequence of frame delays, got {delays!r}'
            )
    else:
        full = np.asarray(delays)
        if full.ndim != 1 or full.size == 0 or full.dtype.kind not in "iu":
            raise ValueError("delays must be a non-empty 1-D sequence of integer frame delays")
        if int(full.min()) < 0 or int(full.max()) >= n_frames:
            raise ValueError(f"delays must lie in 0..{n_frames - 1} (frames), got {full.min()}..{full.max()}")
        full = full.astype(np.int64)
    return full, full[full < seg_len]


# --------------------------------------------------------------------- kernels
def _diagonal_sums(b: BackendProtocol, t: Array) -> Array:
    """Sums of ``t[..., i, j]`` over ``j - i = k - (R - 1)``, ``k = 0 .. R + W - 2``,
    by skewing: rows reversed, padded and re-read with one more element per row."""
    *lead, r, w = t.shape
    flipped = b.flip(t, axis=-2)
    padded = b.concatenate([flipped, b.zeros((*lead, r, r), dtype=t.dtype)], axis=-1)
    flat = b.reshape(padded, (*lead, r * (w + r)))[..., : r * (w + r - 1)]
    return b.sum(b.reshape(flat, (*lead, r, w + r - 1)), axis=-2)


MAX_UNROLLED_GROUPS = 512
"""Up to this many normalisation groups, their frame sums are contiguous column-range sums
(one read of the chunk); beyond, one ``bincount`` (keeps the compiled kernel small)."""


@functools.lru_cache(maxsize=32)
def _chunk_kernel(
    b: BackendProtocol,
    group_bounds: tuple[int, ...],
    bin_of_group: tuple[int, ...],
    n_bins: int,
    aps: bool,
    dtype: str,
    jit: bool,
) -> Callable[..., Any]:
    """Selected pixels of a chunk, checked, normalised and scaled: ``(Y, S, total, lowest)``.

    ``Y(t, p) = X(t, p) sqrt(P_d) / S_d(t)`` (0 where ``S_d(t) = 0``), so that a tile of C is
    the bare product ``Y_I Y_J^T``; ``S (n, n_bins)`` float64 frame sums of ``X``."""
    f64 = np.float64
    n_groups = len(group_bounds) - 1
    group_sizes = np.diff(np.asarray(group_bounds)).astype(np.float64)
    group_of_col = np.repeat(np.arange(n_groups, dtype=np.int32), np.diff(np.asarray(group_bounds)))
    bin_of = np.asarray(bin_of_group, dtype=np.int32)
    pts = np.bincount(bin_of, weights=group_sizes, minlength=n_bins)

    def group_sums(raw: Array, n: int) -> Array:
        if n_groups <= MAX_UNROLLED_GROUPS:
            exact = raw if raw.dtype.kind in "iub" else b.astype(raw, f64)
            cols = [b.sum(exact[:, lo:hi], axis=1) for lo, hi in itertools.pairwise(group_bounds)]
            return b.astype(b.stack(cols, axis=1), f64)
        offsets = b.reshape(b.arange(n, dtype=np.int32) * n_groups, (n, 1))
        index = offsets + b.asarray(group_of_col)[None, :]
        return b.reshape(b.bincount(index, b.astype(raw, f64), length=n * n_groups), (n, n_groups))

    def kernel(chunk: Array, pix: Array) -> Any:
        n = chunk.shape[0]
        raw = b.take(b.reshape(chunk, (n, -1)), pix, axis=1)
        g = group_sums(raw, n)  # (n, n_groups)
        total = b.sum(g)  # not finite if any selected value is NaN or infinite
        lowest = b.zeros((), dtype=f64) if raw.dtype.kind in "ub" else b.astype(b.min(raw), f64)
        if aps:
            mean = g / b.asarray(group_sizes)[None, :]
            # A static bin without photons in a frame keeps its zeros (boost_corr divides by 1).
            factor = 1.0 / b.where(mean > 0, mean, 1.0)
        else:
            factor = b.ones_like(g)
        weighted = g * factor
        sums = b.stack([b.sum(weighted[:, bin_of == k], axis=1) for k in range(n_bins)], axis=1)
        scale_bin = b.where(sums > 0, b.sqrt(b.asarray(pts))[None, :] / b.where(sums > 0, sums, 1.0), 0.0)
        scale = b.astype(factor * b.take(scale_bin, b.asarray(bin_of), axis=1), dtype)
        y = raw * b.take(scale, b.asarray(group_of_col), axis=1)
        return b.astype(y, dtype), sums, total, lowest

    return b.jit(kernel) if jit else kernel


@functools.lru_cache(maxsize=32)
def _tile_kernel(
    b: BackendProtocol, col_bounds: tuple[int, ...], keep: bool, jit: bool
) -> Callable[..., Any]:
    """One frame tile of every bin: ``C = Y_I Y_J^T`` (one GEMM per bin) and its diagonal sums."""

    def kernel(y_i: Array, y_j: Array) -> Any:
        tiles = [
            b.matmul(y_i[:, lo:hi], b.transpose(y_j[:, lo:hi])) for lo, hi in itertools.pairwise(col_bounds)
        ]
        c = b.stack(tiles)
        return (c if keep else None), _diagonal_sums(b, c)

    return b.jit(kernel) if jit else kernel


@functools.lru_cache(maxsize=32)
def _sums_kernel(b: BackendProtocol, jit: bool) -> Callable[..., Any]:
    def kernel(c: Array) -> Array:
        return _diagonal_sums(b, c)

    return b.jit(kernel) if jit else kernel


def _block_edges(
    n_frames: int, seg_len: int, n_segments: int, block_frames: int
) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """Frame block boundaries aligned to the segments (each segment, and the frames after
    the last one, split into near-equal blocks of at most ``block_frames``), and the segment
    of each block (-1: none). A tile is then inside one segment or outside all of them."""
    spans = [(s * seg_len, (s + 1) * seg_len, s) for s in range(n_segments)]
    if n_frames > n_segments * seg_len:
        spans.append((n_segments * seg_len, n_frames, -1))
    edges, seg_of = [0], []
    for lo, hi, s in spans:
        k = -(-(hi - lo) // block_frames)
        edges.extend(lo + (hi - lo) * m // k for m in range(1, k + 1))
        seg_of.extend([s] * k)
    return tuple(edges), tuple(seg_of)


def _pair_counts(defined: np.ndarray[Any, Any], seg_len: int, n_segments: int) -> np.ndarray[Any, Any]:
    """``(n_bins, n_segments + 1, N)`` number of frame pairs ``(t, t + tau)`` with both frames
    defined, over the run and within each segment."""
    n, n_bins = defined.shape
    out = np.zeros((n_bins, n_segments + 1, n))
    spans = [(0, n)] + [(s * seg_len, (s + 1) * seg_len) for s in range(n_segments)]
    for k in range(n_bins):
        for row, (lo, hi) in enumerate(spans):
            d = defined[lo:hi, k].astype(np.float64)
            if d.all():
                out[k, row, : hi - lo] = np.arange(hi - lo, 0, -1)
            else:
                out[k, row, : hi - lo] = np.correlate(d, d, "full")[hi - lo - 1 :]
    return out


class _Accumulator:
    """Frame blocks as they arrive; the numerator tile by tile (upper block triangle) or, with
    ``whole``, one product per bin once every frame is in; diagonal sums per tile."""

    def __init__(
        self,
        b: BackendProtocol,
        sel: _Selection,
        edges: tuple[int, ...],
        seg_of_block: tuple[int, ...],
        dtype: np.dtype[Any],
        n_segments: int,
        keep_maps: bool,
        on_tile: TileCallback | None,
        whole: bool,
        jit: bool,
    ) -> None:
        self.b, self.sel, self.edges, self.seg_of_block, self.dtype = b, sel, edges, seg_of_block, dtype
        self.keep, self.on_tile, self.whole = keep_maps, on_tile, whole
        n_bins, n = len(sel.bins), edges[-1]
        self.kernel = _tile_kernel(cast(Any, b), sel.col_bounds, keep_maps or on_tile is not None, jit)
        self.sums_kernel = _sums_kernel(cast(Any, b), jit)
        self.blocks: list[Array] = []
        self.pending: list[Array] = []
        self.pending_frames = 0
        self.frame_sums: list[np.ndarray[Any, Any]] = []
        self.sum_acc = np.zeros((n_bins, n_segments + 1, n))
        self.maps: np.ndarray[Any, Any] | None = None
        if keep_maps and not whole:
            self.maps = np.empty((n_bins, n, n), dtype=dtype)
        self.device_maps: Array | None = None

    def add(self, y: Array, sums: np.ndarray[Any, Any]) -> None:
        self.frame_sums.append(sums)
        self.pending.append(y)
        self.pending_frames += int(y.shape[0])
        while len(self.blocks) < len(self.edges) - 1:
            size = self.edges[len(self.blocks) + 1] - self.edges[len(self.blocks)]
            if self.pending_frames < size:
                break
            self._flush(size)

    def _flush(self, take: int) -> None:
        b = self.b
        joined = self.pending[0] if len(self.pending) == 1 else b.concatenate(self.pending, axis=0)
        y, rest = joined[:take], joined[take:]
        self.pending = [rest] if rest.shape[0] else []
        self.pending_frames -= take
        self.blocks.append(y)
        if self.whole:
            return
        j = len(self.blocks) - 1
        for i in range(j + 1):
            tile, sums = self.kernel(self.blocks[i], y)
            self._add_sums(i, j, sums)
            if tile is not None:
                self._take_tile(i, j, np.asarray(b.to_numpy(tile)))

    def _add_sums(self, i: int, j: int, sums: Array) -> None:
        """Diagonal sums of tile (i, j) into the run and, inside a segment, that segment."""
        s = np.asarray(self.b.to_numpy(sums), dtype=np.float64)
        r0, r1, c0 = self.edges[i], self.edges[i + 1], self.edges[j]
        first = c0 - r0 - (r1 - r0 - 1)  # tau of index 0
        if i == j:  # the lower half of a diagonal tile mirrors the upper
            s, first = s[..., r1 - r0 - 1 :], 0
        end = first + s.shape[-1]
        self.sum_acc[:, 0, first:end] += s
        seg = self.seg_of_block[i]
        if seg >= 0 and seg == self.seg_of_block[j]:
            self.sum_acc[:, seg + 1, first:end] += s

    def _take_tile(self, i: int, j: int, tile: np.ndarray[Any, Any]) -> None:
        r0, r1, c0, c1 = self.edges[i], self.edges[i + 1], self.edges[j], self.edges[j + 1]
        if self.on_tile is not None:
            for k in range(tile.shape[0]):
                self.on_tile(k, r0, c0, tile[k])
        if self.maps is not None:
            self.maps[:, r0:r1, c0:c1] = tile
            if i != j:
                self.maps[:, c0:c1, r0:r1] = np.swapaxes(tile, 1, 2)

    def finish(self) -> None:
        if self.pending_frames:
            raise AssertionError(f"{self.pending_frames} frames beyond the planned blocks")  # unreachable
        if not self.whole:
            return
        b = self.b
        y = self.blocks[0] if len(self.blocks) == 1 else b.concatenate(self.blocks, axis=0)
        self.blocks.clear()
        bounds = self.sel.col_bounds
        # One product per bin: NumPy's matmul runs Y Y^T as a BLAS SYRK (half the multiply-adds).
        maps = b.stack(
            [b.matmul(y[:, lo:hi], b.transpose(y[:, lo:hi])) for lo, hi in itertools.pairwise(bounds)]
        )
        del y
        for j in range(len(self.edges) - 1):
            for i in range(j + 1):
                r0, r1, c0, c1 = self.edges[i], self.edges[i + 1], self.edges[j], self.edges[j + 1]
                self._add_sums(i, j, self.sums_kernel(maps[:, r0:r1, c0:c1]))
        self.device_maps = maps

    def defined(self) -> np.ndarray[Any, Any]:
        """``(N, n_bins)``: frames with intensity in the bin."""
        return np.concatenate(self.frame_sums, axis=0) > 0

    def assemble(self, defined: np.ndarray[Any, Any]) -> Array | None:
        """The maps, with NaN in the rows and columns of frames without intensity."""
        b = self.b
        if not self.keep:
            return None
        undefined = ~defined.T  # (n_bins, N)
        if self.maps is not None:
            for k in np.flatnonzero(undefined.any(axis=1)):
                self.maps[k, undefined[k], :] = np.nan
                self.maps[k, :, undefined[k]] = np.nan
            return b.asarray(self.maps)
        maps = self.device_maps
        if undefined.any():
            bad = undefined[:, :, None] | undefined[:, None, :]
            maps = b.where(b.asarray(bad), np.nan, maps)
        return maps


def _warn_zero_frames(
    zero: np.ndarray[Any, Any], bins: tuple[int, ...], offset: int, stacklevel: int = 3
) -> None:
    per_bin = zero.sum(axis=0)
    if not per_bin.any():
        return
    parts = []
    for k in np.flatnonzero(per_bin):
        first = int(np.argmax(zero[:, k])) + offset
        parts.append(f"bin {bins[k]}: {int(per_bin[k])} frame(s), first {first}")
    warnings.warn(
        "frames with zero intensity in a dynamic bin (C is undefined there): "
        + "; ".join(parts)
        + ". Their rows and columns of C are NaN and g2 averages over the other frames",
        RuntimeWarning,
        stacklevel=stacklevel,
    )


def _finish_g2(
    b: BackendProtocol,
    sum_acc: np.ndarray[Any, Any],
    count_acc: np.ndarray[Any, Any],
    delays: np.ndarray[Any, Any],
    seg_delays: np.ndarray[Any, Any],
) -> tuple[Array, Array]:
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(count_acc > 0, sum_acc / np.where(count_acc > 0, count_acc, 1.0), np.nan)
    g2 = mean[:, 0, delays].T  # (n_delays, n_bins)
    seg = np.transpose(mean[:, 1:, seg_delays], (2, 1, 0))  # (n_seg_delays, n_segments, n_bins)
    return b.asarray(np.ascontiguousarray(g2)), b.asarray(np.ascontiguousarray(seg))


def _segment_length(n_frames: int, n_segments: int) -> int:
    if n_frames < 2:
        raise ValueError(f"two-time correlation needs at least 2 frames, got {n_frames}")
    if n_frames < n_segments:
        raise ValueError(
            f"cannot split {n_frames} frames into n_segments={n_segments} segments; lower n_segments"
        )
    return n_frames // n_segments


def _check_chunk(sel: _Selection, chunk: Any, offset: int) -> None:
    """Refuse a chunk whose frame shape or dtype does not fit (``offset``: its first frame)."""
    if tuple(chunk.shape[1:]) != sel.frame_shape:
        raise ValueError(
            f"frames of shape {tuple(chunk.shape[1:])} (chunk at frame {offset}) do not match the "
            f"label maps' shape {sel.frame_shape}; the partition must be made for this detector"
        )
    _check_dtype(chunk.dtype, f"the chunk at frame {offset}")


def _normalised_chunks(
    b: BackendProtocol, sel: _Selection, chunks: Iterable[Any], aps: bool, dt: np.dtype[Any], jit: bool
) -> Iterator[tuple[Array, np.ndarray[Any, Any]]]:
    """Each chunk checked, normalised and scaled: ``(Y (n, P) in dt, S (n, n_bins) float64)``."""
    kernel = _chunk_kernel(
        cast(Any, b),
        sel.group_bounds,
        tuple(int(k) for k in sel.bin_of_group),
        len(sel.bins),
        aps,
        dt.name,
        jit,
    )
    place = xpcs_device.place_on_device
    pix = place(sel.pix)
    offset = 0
    for chunk in chunks:
        _check_chunk(sel, chunk, offset)
        x, sums, total, lowest = kernel(place(chunk), pix)
        if not math.isfinite(float(b.to_numpy(total))) or float(b.to_numpy(lowest)) < 0:
            selected = np.asarray(chunk).reshape(chunk.shape[0], -1)[:, sel.pix]
            error = _frame_value_error(selected, offset, False)
            if error is not None:
                raise FrameValueError(str(error) + " (on the pixels of the selected bins)")
        offset += int(chunk.shape[0])
        yield x, np.asarray(b.to_numpy(sums), dtype=np.float64)


NUMPY_SUB_FRAMES = 64
"""Frames normalised at a time on the NumPy path: the gathered uint8/float temporaries of a
sub-chunk stay in cache (whole 512-frame chunks were twice as slow)."""


def _numpy_normalise_into(
    sel: _Selection,
    chunk: np.ndarray[Any, Any],
    out: np.ndarray[Any, Any],
    sums_out: np.ndarray[Any, Any],
    aps: bool,
    offset: int,
) -> None:
    """NumPy fast path of :func:`_chunk_kernel`: the same ``Y`` and ``S`` (same formulas and
    roundings), written into ``out (n, P)`` and ``sums_out (n, n_bins)``. ``np.take`` and a
    grouped multiply into ``out`` replace the backend's bounds-checked gathers and copies."""
    n_bins = len(sel.bins)
    bounds = np.asarray(sel.group_bounds, dtype=np.int64)
    sizes = np.diff(bounds)
    bin_of = sel.bin_of_group.astype(np.int64)
    pts = np.bincount(bin_of, weights=sizes.astype(np.float64), minlength=n_bins)
    flat = np.asarray(chunk).reshape(chunk.shape[0], -1)
    exact: Any = np.int64 if flat.dtype.kind in "iub" else np.float64
    if flat.dtype.kind in "iub" and flat.dtype.itemsize <= 2 and int(sizes.max()) < 2**15:
        exact = np.int32  # cannot overflow (|count| < 2**16), and reduceat runs 3x faster than in int64
    for lo in range(0, flat.shape[0], NUMPY_SUB_FRAMES):
        hi = min(lo + NUMPY_SUB_FRAMES, flat.shape[0])
        raw = np.take(flat[lo:hi], sel.pix, axis=1)
        g = np.add.reduceat(raw, bounds[:-1], axis=1, dtype=exact).astype(np.float64)
        if flat.dtype.kind in "fi" and (not math.isfinite(float(g.sum())) or (raw.size and raw.min() < 0)):
            error = _frame_value_error(raw, offset + lo, False)
            if error is not None:
                raise FrameValueError(str(error) + " (on the pixels of the selected bins)")
        if aps:
            mean = g / sizes[None, :]
            factor = 1.0 / np.where(mean > 0, mean, 1.0)
        else:
            factor = np.ones_like(g)
        weighted = g * factor
        sums = np.stack([weighted[:, bin_of == k].sum(axis=1) for k in range(n_bins)], axis=1)
        scale_bin = np.where(sums > 0, np.sqrt(pts)[None, :] / np.where(sums > 0, sums, 1.0), 0.0)
        scale = (factor * scale_bin[:, bin_of]).astype(out.dtype)
        # Cast, then scale in place: two SIMD passes beat one mixed-type (buffered) multiply.
        # The product rounds as raw * scale would (the cast of the counts is exact).
        target = out[lo:hi]
        if raw.dtype.kind in "ub" and raw.dtype.itemsize <= 2:
            np.copyto(target, raw)
            np.multiply(target, np.repeat(scale, sizes, axis=1), out=target)
        else:
            np.multiply(raw, np.repeat(scale, sizes, axis=1), out=target)
        sums_out[lo:hi] = sums


def _host_normalise_into(
    sel: _Selection,
    chunk: np.ndarray[Any, Any],
    out: np.ndarray[Any, Any],
    sums_out: np.ndarray[Any, Any],
    aps: bool,
    offset: int,
    loops: bool,
) -> None:
    """:func:`_numpy_normalise_into`, as the numba loop of
    :func:`xpcs_kernels.twotime_loops.normalise_frames` (every core, no temporaries) for
    uint8 / uint16 frames when ``loops``; those cannot be NaN or negative."""
    flat = np.asarray(chunk).reshape(chunk.shape[0], -1)
    if not (loops and flat.dtype in (np.uint8, np.uint16)):
        _numpy_normalise_into(sel, chunk, out, sums_out, aps, offset)
        return
    from xpcs_kernels import twotime_loops

    bounds = np.asarray(sel.group_bounds, dtype=np.int64)
    sizes = np.diff(bounds).astype(np.float64)
    frames, pix = np.ascontiguousarray(flat), sel.pix.astype(np.int64)
    with parallel_region():
        twotime_loops.normalise_frames(
            readonly(frames),
            readonly(pix),
            readonly(bounds),
            readonly(sel.bin_of_group),
            readonly(sizes),
            readonly(np.sqrt(np.asarray(sel.num_pts, dtype=np.float64))),
            aps,
            out,
            sums_out,
        )


def _numpy_whole(
    sel: _Selection,
    chunks: Iterable[np.ndarray[Any, Any]],
    aps: bool,
    dt: np.dtype[Any],
    known: int | None,
    n_segments: int,
    budget: Callable[[int, str], None],
    loops: bool,
) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any], np.ndarray[Any, Any]]:
    """``product="whole"`` on host arrays: ``Y`` written in place chunk by chunk (by the numba
    loop with ``loops``), one BLAS SYRK per bin straight into the maps, float64 diagonal sums
    row by row (no tiles, no stacking).

    Returns the maps ``(n_bins, N, N)`` (undefined frames still 0), the diagonal sums
    ``(n_bins, n_segments + 1, N)`` and the frames with intensity ``(N, n_bins)``."""
    n_bins, n_pix = len(sel.bins), sel.n_pixels
    parts: list[tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]] = []
    y = np.empty((known, n_pix), dtype=dt) if known is not None else None
    s = np.empty((known, n_bins)) if known is not None else None
    offset = 0
    for chunk in chunks:
        _check_chunk(sel, chunk, offset)
        m = int(chunk.shape[0])
        if y is not None and s is not None:
            _host_normalise_into(
                sel, chunk, y[offset : offset + m], s[offset : offset + m], aps, offset, loops
            )
        else:
            part = (np.empty((m, n_pix), dtype=dt), np.empty((m, n_bins)))
            _host_normalise_into(sel, chunk, part[0], part[1], aps, offset, loops)
            parts.append(part)
            budget(offset + m, f"{n_bins} bins, {offset + m}+ frames, {n_pix} pixels")
        offset += m
    n = offset
    seg_len = _segment_length(n, n_segments)
    if y is None or s is None:
        y = np.concatenate([p[0] for p in parts]) if parts else np.empty((0, n_pix), dtype=dt)
        s = np.concatenate([p[1] for p in parts]) if parts else np.empty((0, n_bins))
        parts.clear()
    maps = np.empty((n_bins, n, n), dtype=dt)
    for k, (lo, hi) in enumerate(itertools.pairwise(sel.col_bounds)):
        yk = y[:, lo:hi]
        np.matmul(yk, yk.T, out=maps[k])  # same buffer, transposed: NumPy calls BLAS SYRK
    del y
    return maps, _row_diagonal_sums(maps, seg_len, n_segments), s > 0


def _row_diagonal_sums(maps: np.ndarray[Any, Any], seg_len: int, n_segments: int) -> np.ndarray[Any, Any]:
    """``(n_bins, n_segments + 1, N)`` float64 sums along the diagonals ``tau = 0 .. N-1`` of
    the upper triangle of ``maps (n_bins, N, N)``, over the run and within each segment of
    ``seg_len`` frames: row by row, ``2 N`` vectorised adds over the bins (no skewed copies)."""
    n_bins, n = maps.shape[0], maps.shape[-1]
    out = np.zeros((n_bins, n_segments + 1, n))
    for i in range(n):
        out[:, 0, : n - i] += maps[:, i, i:]
        seg = i // seg_len
        if seg < n_segments:
            end = (seg + 1) * seg_len
            out[:, seg + 1, : end - i] += maps[:, i, i:end]
    return out


def _fill_undefined(maps: np.ndarray[Any, Any], defined: np.ndarray[Any, Any]) -> None:
    """NaN, in place, in the rows and columns of the frames without intensity (``defined``
    ``(N, n_bins)``)."""
    undefined = ~defined.T
    for k in np.flatnonzero(undefined.any(axis=1)):
        maps[k, undefined[k], :] = np.nan
        maps[k, :, undefined[k]] = np.nan


def _host_result(
    b: BackendProtocol,
    sel: _Selection,
    maps: np.ndarray[Any, Any] | None,
    sum_acc: np.ndarray[Any, Any],
    defined: np.ndarray[Any, Any],
    n_segments: int,
    delays: Any,
    lags_per_level: int,
    start: int,
) -> TwoTime:
    """The results from host maps (undefined frames still 0; NaN-filled here), diagonal sums
    ``(n_bins, n_segments + 1, N)`` and the defined frames ``(N, n_bins)``."""
    n_frames = int(defined.shape[0])
    seg_len = _segment_length(n_frames, n_segments)
    _warn_zero_frames(~defined, sel.bins, start, stacklevel=4)
    full, seg_delays = _delay_plan(delays, n_frames, seg_len, lags_per_level)
    g2, g2_seg = _finish_g2(b, sum_acc, _pair_counts(defined, seg_len, n_segments), full, seg_delays)
    if maps is not None:
        _fill_undefined(maps, defined)
    return TwoTime(
        # device_put: half the time of asarray for the (n_bins, N, N) maps on a JAX CPU
        c2=None if maps is None else xpcs_device.place_on_device(maps),
        g2=g2,
        g2_segments=g2_seg,
        delays=b.asarray(full),
        segment_delays=b.asarray(seg_delays),
        bins=sel.bins,
        segment_bounds=tuple(s * seg_len for s in range(n_segments + 1)),
        n_frames=n_frames,
        num_pts=sel.num_pts,
    )


def _check_source_shape(source: Any, sel: _Selection) -> None:
    shape = getattr(source, "shape", None)
    if shape is not None and len(shape) == 3 and tuple(int(s) for s in shape[1:]) != sel.frame_shape:
        raise ValueError(
            f"frames of shape {tuple(shape[1:])} do not match the label maps' shape {sel.frame_shape}; "
            "the partition must be made for this detector"
        )


def _whole_fits(
    n: int, n_pixels: int, n_bins: int, dt: np.dtype[Any], block: int, n_segments: int, budget: int | None
) -> bool:
    """``product="whole"`` holds the per-bin products and the stacked maps at once: twice the maps."""
    need = twotime_memory_bytes(n, n_pixels, n_bins, dt, block_frames=block, n_segments=n_segments)
    room = budget if budget is not None else available_memory_bytes() // 2
    return need + n_bins * n * n * dt.itemsize <= room


def _whole_product(product: str, keep_maps: bool, *, auto: Callable[[], bool]) -> bool:
    """Whether :func:`twotime` computes ``Y Y^T`` once all frames are in (``auto()``: the
    choice of ``product="auto"``)."""
    if product not in ("auto", "tiles", "whole"):
        raise ValueError(f'product must be "auto", "tiles" or "whole", got {product!r}')
    if product == "whole" and not keep_maps:
        raise ValueError('product="whole" computes the maps; it needs keep_maps=True (or use "tiles")')
    return product == "whole" or (product == "auto" and auto())


# ------------------------------------------------------------------------- public API
def twotime(
    source: Any,
    dynamic_labels: Any,
    static_labels: Any = None,
    *,
    bins: Sequence[int] | None = None,
    normalization: Normalization = "aps",
    dtype: Any = np.float32,
    n_segments: int = 5,
    delays: DelaySpec = "all",
    lags_per_level: int = 4,
    chunk_frames: int | None = None,
    start: int = 0,
    stop: int | None = None,
    block_frames: int = DEFAULT_BLOCK_FRAMES,
    keep_maps: bool = True,
    on_tile: TileCallback | None = None,
    memory_budget: int | None = None,
    product: Literal["auto", "tiles", "whole"] = "auto",
    compiled: bool | None = None,
    jit: bool = True,
) -> TwoTime:
    """Two-time correlation of frames ``[start, stop)`` of ``source`` for the selected
    dynamic bins (see the module docstring for definitions).

    ``source``: anything :func:`~xpcs_kernels.frames.iter_frame_chunks` reads (an
    ``(N, H, W)`` array, an ``h5py.Dataset``, an iterable of chunks or frames), read
    ``chunk_frames`` at a time. ``dynamic_labels`` / ``static_labels``: ``(H, W)``
    integer roi maps (1-based, 0 excluded); the static map is needed for
    ``normalization="aps"``. ``bins``: dynamic labels to process (default: every occupied
    one). ``dtype``: float32 (default, as boost_corr) or float64 for the maps and the
    products; frame sums and g2 are float64. ``delays``: ``"all"`` (0 .. N-1),
    ``"multitau"`` (:func:`multitau_delays`) or explicit frame delays. ``block_frames``:
    largest frame block (blocks are aligned to the segments). ``keep_maps=False`` keeps
    no map (``c2`` is None); ``on_tile(bin_position, row_start, col_start, tile)`` then
    (or also) receives each upper tile as a NumPy array (tiles of the block sizes, not padded).
    ``memory_budget``: bytes (default half of ``MemAvailable``). ``product``: ``"tiles"``
    computes the numerator tile by tile as frames arrive (one GEMM per bin and tile, upper
    block triangle); ``"whole"`` one ``Y Y^T`` per bin once all frames are in (on host
    arrays a BLAS SYRK; peak memory twice the maps); ``"auto"``: ``"whole"`` on the host
    path when the maps are kept, no ``on_tile`` is given, the frame count is known and twice
    the maps fit the budget, else ``"tiles"``. ``compiled``: None (default) runs the host
    path (uint8 / uint16 frames normalised by a numba loop, NumPy's BLAS SYRK; the maps then
    handed to the backend) where the active device is a CPU and numba is installed, True
    requires it, False keeps the backend's own arrays (XLA's GEMMs under ``jit`` on JAX,
    3x slower than BLAS on a CPU); see :mod:`xpcs_kernels.compiled`. NumPy always uses host
    arrays (with ``compiled=False``, NumPy's normalisation). Results agree to rounding.
    """
    dt = _check_dtype_arg(dtype)
    n_segments = _positive_int(n_segments, "n_segments")
    block_frames = _positive_int(block_frames, "block_frames")
    sel = _select(dynamic_labels, static_labels, bins, normalization)
    known = frame_count(source, start=start, stop=stop)
    _check_source_shape(source, sel)
    n_bins = len(sel.bins)
    b = xpcs_device.get_backend()
    loops = use_compiled(compiled)
    host = b.name == "numpy" or loops
    whole = _whole_product(
        product,
        keep_maps,
        auto=lambda: (
            host
            and keep_maps
            and on_tile is None
            and known is not None
            and _whole_fits(known, sel.n_pixels, n_bins, dt, block_frames, n_segments, memory_budget)
        ),
    )

    def budget(n: int, what: str) -> None:
        needed = twotime_memory_bytes(
            n, sel.n_pixels, n_bins, dt, keep_maps=keep_maps, block_frames=block_frames, n_segments=n_segments
        )
        _check_budget(needed, memory_budget, what)

    if known is not None:
        budget(known, f"{n_bins} bins, {known} frames, {sel.n_pixels} pixels, {dt}")

    chunks = iter_frame_chunks(source, chunk_frames, start=start, stop=stop)
    if whole and host:
        return _host_result(
            b,
            sel,
            *_numpy_whole(sel, chunks, normalization == "aps", dt, known, n_segments, budget, loops),
            n_segments,
            delays,
            lags_per_level,
            start,
        )
    # Segment-aligned blocks need N: for an iterator of unknown length the frames are first
    # collected (selected pixels only), then tiled.
    acc: _Accumulator | None = None
    collected: list[tuple[Array, np.ndarray[Any, Any]]] = []
    offset = 0

    def accumulator(n: int) -> _Accumulator:
        seg_len = _segment_length(n, n_segments)
        edges, seg_of = _block_edges(n, seg_len, n_segments, block_frames)
        return _Accumulator(b, sel, edges, seg_of, dt, n_segments, keep_maps, on_tile, whole, jit)

    for x, sums_np in _normalised_chunks(b, sel, chunks, normalization == "aps", dt, jit):
        offset += int(x.shape[0])
        if known is not None:
            if acc is None:
                acc = accumulator(known)
            acc.add(x, sums_np)
        else:
            collected.append((x, sums_np))
            budget(offset, f"{n_bins} bins, {offset}+ frames, {sel.n_pixels} pixels")
    n_frames = offset
    seg_len = _segment_length(n_frames, n_segments)
    if known is None:
        acc = accumulator(n_frames)
        for x, sums_np in collected:
            acc.add(x, sums_np)
        collected.clear()
    if acc is None:  # no frame at all
        raise AssertionError("unreachable")  # _segment_length above raises
    acc.finish()
    defined = acc.defined()
    _warn_zero_frames(~defined, sel.bins, start)
    full, seg_delays = _delay_plan(delays, n_frames, seg_len, lags_per_level)
    g2, g2_seg = _finish_g2(b, acc.sum_acc, _pair_counts(defined, seg_len, n_segments), full, seg_delays)
    maps = acc.assemble(defined)
    return TwoTime(
        c2=maps,
        g2=g2,
        g2_segments=g2_seg,
        delays=b.asarray(full),
        segment_delays=b.asarray(seg_delays),
        bins=sel.bins,
        segment_bounds=tuple(s * seg_len for s in range(n_segments + 1)),
        n_frames=n_frames,
        num_pts=sel.num_pts,
    )
