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
each chunk is checked and normalised (one compiled kernel per chunk shape), only the
selected pixels are kept (``N x P`` in ``dtype``, bin by bin contiguous), and the
numerator is accumulated in frame tiles of ``B`` frames, upper block triangle only
(``X_I X_J^T`` for ``J >= I``: the SYRK cost ``N^2 P`` multiply-adds, plus ``B/N`` of
it for the diagonal tiles), each tile as soon as its frames have arrived. Each tile is
normalised and summed along its diagonals inside the same compiled kernel, so g2 needs no
second pass and no stored map: with ``keep_maps=False`` only the selected pixels of the
stack and one tile are in memory, and ``on_tile`` receives every upper tile (to write it
to a file, say).

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
import math
import os
import warnings
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Literal, cast

import numpy as np

import xpcs_device
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
"""Largest frame tile: 512 x 512 tiles keep the GEMMs efficient and the diagonal work small."""


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
    order = np.argsort(pos[keep], kind="stable")
    pix = keep[order]
    bin_of_col = pos[pix]
    counts = np.bincount(bin_of_col, minlength=len(chosen))
    col_bounds = (0, *np.cumsum(counts).tolist())
    static_of_col = static_counts = None
    if normalization == "aps":
        if static_labels is None:
            raise ValueError('normalization="aps" needs static_labels (the static roi map); or use "plain"')
        sta = _label_map(static_labels, "static_labels")
        if sta.shape != dyn.shape:
            raise ValueError(f"static_labels has shape {sta.shape} but dynamic_labels {dyn.shape}")
        check_nested(sta, dyn)  # each static bin inside one dynamic bin: smoothing stays in the bin
        s = sta.ravel()[pix].astype(np.int64)
        if s.size and int(s.min()) == 0:
            raise ValueError(
                "some pixels of the selected dynamic bins have static label 0; every pixel of a "
                "dynamic bin must lie in a static bin (use maps from make_partitions)"
            )
        uniq, static_of_col = np.unique(s, return_inverse=True)
        static_counts = np.bincount(static_of_col, minlength=uniq.size)
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


def _normalised_tile_sums(b: BackendProtocol, c: Array, w_i: Array, w_j: Array) -> tuple[Array, Array]:
    """Diagonal sums of the tile ``c`` (B, B) under each pair weight ``w_i[s] w_j[s]`` (0/1),
    and the diagonal counts of the weights: ``(n_w, 2B - 1)`` float64 each."""
    ww = w_i[:, :, None] * w_j[:, None, :]
    vals = b.where(ww > 0, b.astype(c, np.float64)[None], 0.0)
    return _diagonal_sums(b, vals), _diagonal_sums(b, ww)


@functools.lru_cache(maxsize=32)
def _chunk_kernel(
    b: BackendProtocol, n_bins: int, n_static: int, aps: bool, dtype: str, jit: bool
) -> Callable[..., Any]:
    """Selected pixels of a chunk, checked and normalised: ``(X, S, total, lowest)``."""
    f64 = np.float64

    def per_frame(index: Array, values: Array, n: int, k: int) -> Array:
        offsets = b.reshape(b.arange(n, dtype=np.int32) * k, (n, 1))
        return b.reshape(b.bincount(offsets + index[None, :], values, length=n * k), (n, k))

    def kernel(
        chunk: Array, pix: Array, bin_of_col: Array, static_of_col: Array, static_counts: Array
    ) -> Any:
        n = chunk.shape[0]
        x = b.astype(b.take(b.reshape(chunk, (n, -1)), pix, axis=1), f64)
        total = b.sum(x)
        lowest = b.min(x)
        if aps:
            mean = per_frame(static_of_col, x, n, n_static) / static_counts[None, :]
            # A static bin without photons in a frame keeps its zeros (boost_corr divides by 1).
            x = x / b.take(b.where(mean > 0, mean, 1.0), static_of_col, axis=1)
        sums = per_frame(bin_of_col, x, n, n_bins)
        return b.astype(x, dtype), sums, total, lowest

    return b.jit(kernel) if jit else kernel


@functools.lru_cache(maxsize=32)
def _tile_kernel(
    b: BackendProtocol, col_bounds: tuple[int, ...], keep: bool, jit: bool
) -> Callable[..., Any]:
    """One frame tile of every bin: C tile, its diagonal sums and counts per weight row."""
    n_bins = len(col_bounds) - 1

    def kernel(x_i: Array, x_j: Array, inv_i: Array, inv_j: Array, w_i: Array, w_j: Array) -> Any:
        tiles, sums, counts = [], [], []
        for k in range(n_bins):
            lo, hi = col_bounds[k], col_bounds[k + 1]
            num = b.matmul(x_i[:, lo:hi], b.transpose(x_j[:, lo:hi]))
            c = num * (float(hi - lo) * inv_i[k][:, None] * inv_j[k][None, :])
            s, n = _normalised_tile_sums(b, c, w_i[k], w_j[k])
            sums.append(s)
            counts.append(n)
            if keep:
                tiles.append(c)
        return (b.stack(tiles) if keep else None), b.stack(sums), b.stack(counts)

    return b.jit(kernel) if jit else kernel


class _Accumulator:
    """Tiles of the upper block triangle as blocks of ``B`` frames arrive."""

    def __init__(
        self,
        b: BackendProtocol,
        sel: _Selection,
        block: int,
        dtype: np.dtype[Any],
        seg_len: int,
        n_segments: int,
        keep_maps: bool,
        n_frames: int | None,
        on_tile: TileCallback | None,
        jit: bool,
    ) -> None:
        self.b, self.sel, self.block, self.dtype = b, sel, block, dtype
        self.seg_len, self.n_segments = seg_len, n_segments
        self.keep, self.on_tile = keep_maps, on_tile
        n_bins = len(sel.bins)
        self.kernel = _tile_kernel(cast(Any, b), sel.col_bounds, keep_maps or on_tile is not None, jit)
        self.blocks: list[tuple[Array, np.ndarray[Any, Any], np.ndarray[Any, Any]]] = []
        self.pending: list[Array] = []
        self.pending_sums: list[np.ndarray[Any, Any]] = []
        self.pending_frames = 0
        self.n_frames = 0
        self.sum_acc = np.zeros((n_bins, n_segments + 1, 0))
        self.count_acc = np.zeros((n_bins, n_segments + 1, 0))
        self.maps: np.ndarray[Any, Any] | None = None
        self.tiles: list[tuple[int, int, np.ndarray[Any, Any]]] = []
        if keep_maps and n_frames is not None:
            self.maps = np.empty((n_bins, n_frames, n_frames), dtype=dtype)
        self.zero_frames: list[np.ndarray[Any, Any]] = []

    def add(self, x: Array, sums: np.ndarray[Any, Any]) -> None:
        self.pending.append(x)
        self.pending_sums.append(sums)
        self.pending_frames += int(x.shape[0])
        self.n_frames += int(x.shape[0])
        while self.pending_frames >= self.block:
            self._flush(self.block)

    def finish(self) -> None:
        if self.pending_frames:
            self._flush(self.pending_frames)

    def _flush(self, take: int) -> None:
        b = self.b
        joined = self.pending[0] if len(self.pending) == 1 else b.concatenate(self.pending, axis=0)
        joined_sums = np.concatenate(self.pending_sums, axis=0)
        x, rest = joined[:take], joined[take:]
        sums, rest_sums = joined_sums[:take], joined_sums[take:]
        self.pending = [rest] if rest.shape[0] else []
        self.pending_sums = [rest_sums] if rest.shape[0] else []
        self.pending_frames -= take
        start = len(self.blocks) * self.block
        if take < self.block:  # the last, short block: zero frames of weight 0
            x = b.concatenate([x, b.zeros((self.block - take, x.shape[1]), dtype=self.dtype)], axis=0)
            sums = np.concatenate([sums, np.zeros((self.block - take, sums.shape[1]))], axis=0)
        frames = start + np.arange(self.block)
        real = frames < start + take
        defined = real[:, None] & (sums > 0)  # (B, n_bins)
        self.zero_frames.append(real[:, None] & (sums <= 0))
        inv = np.where(defined, 1.0 / np.where(sums > 0, sums, 1.0), np.where(real[:, None], np.nan, 0.0))
        seg = frames // self.seg_len
        in_seg = real & (seg < self.n_segments)
        weights = np.zeros((sums.shape[1], self.n_segments + 1, self.block))
        weights[:, 0, :] = defined.T
        for s in range(self.n_segments):
            weights[:, s + 1, :] = (defined & (in_seg & (seg == s))[:, None]).T
        entry = (xpcs_device.place_on_device(x), inv.T.astype(self.dtype), weights)
        self.blocks.append(entry)
        j = len(self.blocks) - 1
        for i in range(j + 1):
            self._tile(i, j)

    def _tile(self, i: int, j: int) -> None:
        b, blk = self.b, self.block
        x_i, inv_i, w_i = self.blocks[i]
        x_j, inv_j, w_j = self.blocks[j]
        place = xpcs_device.place_on_device
        tile, sums, counts = self.kernel(x_i, x_j, place(inv_i), place(inv_j), place(w_i), place(w_j))
        sums = np.asarray(b.to_numpy(sums))
        counts = np.asarray(b.to_numpy(counts))
        # Index m of the diagonal sums is tau = (j - i) * B + m - (B - 1); the diagonal tile
        # keeps tau >= 0 only (the lower half is its mirror).
        first = (j - i) * blk - (blk - 1)
        if i == j:
            sums, counts, first = sums[..., blk - 1 :], counts[..., blk - 1 :], 0
        end = first + sums.shape[-1]
        if end > self.sum_acc.shape[-1]:
            grow = end - self.sum_acc.shape[-1]
            pad = np.zeros((*self.sum_acc.shape[:2], grow))
            self.sum_acc = np.concatenate([self.sum_acc, pad], axis=-1)
            self.count_acc = np.concatenate([self.count_acc, pad], axis=-1)
        self.sum_acc[..., first:end] += sums
        self.count_acc[..., first:end] += counts
        if tile is None:
            return
        tile_np = np.asarray(b.to_numpy(tile))
        if self.on_tile is not None:
            for k in range(tile_np.shape[0]):
                self.on_tile(k, i * blk, j * blk, tile_np[k])
        if self.keep:
            if self.maps is not None:
                self._store(self.maps, i, j, tile_np)
            else:
                self.tiles.append((i, j, tile_np))

    def _store(self, maps: np.ndarray[Any, Any], i: int, j: int, tile: np.ndarray[Any, Any]) -> None:
        n, blk = maps.shape[1], self.block
        r0, c0 = i * blk, j * blk
        r1, c1 = min(n, r0 + blk), min(n, c0 + blk)
        part = tile[:, : r1 - r0, : c1 - c0]
        maps[:, r0:r1, c0:c1] = part
        if i != j:
            maps[:, c0:c1, r0:r1] = np.swapaxes(part, 1, 2)

    def assemble(self) -> np.ndarray[Any, Any] | None:
        if not self.keep:
            return None
        if self.maps is None:
            self.maps = np.empty((len(self.sel.bins), self.n_frames, self.n_frames), dtype=self.dtype)
            for i, j, tile in self.tiles:
                self._store(self.maps, i, j, tile)
            self.tiles.clear()
        return self.maps


def _warn_zero_frames(zero: np.ndarray[Any, Any], bins: tuple[int, ...], offset: int) -> None:
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
        stacklevel=3,
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


def _normalised_chunks(
    b: BackendProtocol, sel: _Selection, chunks: Iterable[Any], aps: bool, dt: np.dtype[Any], jit: bool
) -> Iterator[tuple[Array, np.ndarray[Any, Any]]]:
    """Each chunk checked and normalised: ``(X (n, P) in dt, S (n, n_bins) float64)``."""
    n_static = 0 if sel.static_counts is None else int(sel.static_counts.shape[0])
    kernel = _chunk_kernel(cast(Any, b), len(sel.bins), n_static, aps, dt.name, jit)
    place = xpcs_device.place_on_device
    pix, bin_of_col = place(sel.pix), place(sel.bin_of_col)
    static_of_col = place(sel.static_of_col if sel.static_of_col is not None else np.zeros(1, np.int32))
    static_counts = place(
        sel.static_counts.astype(np.float64) if sel.static_counts is not None else np.ones(1)
    )
    offset = 0
    for chunk in chunks:
        if tuple(chunk.shape[1:]) != sel.frame_shape:
            raise ValueError(
                f"frames of shape {tuple(chunk.shape[1:])} (chunk at frame {offset}) do not match the "
                f"label maps' shape {sel.frame_shape}; the partition must be made for this detector"
            )
        _check_dtype(chunk.dtype, f"the chunk at frame {offset}")
        x, sums, total, lowest = kernel(place(chunk), pix, bin_of_col, static_of_col, static_counts)
        if not math.isfinite(float(b.to_numpy(total))) or float(b.to_numpy(lowest)) < 0:
            selected = np.asarray(chunk).reshape(chunk.shape[0], -1)[:, sel.pix]
            error = _frame_value_error(selected, offset, False)
            if error is not None:
                raise FrameValueError(str(error) + " (on the pixels of the selected bins)")
        offset += int(chunk.shape[0])
        yield x, np.asarray(b.to_numpy(sums), dtype=np.float64)


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
    frame tile size (balanced to the frame count when known). ``keep_maps=False`` keeps
    no map (``c2`` is None); ``on_tile(bin_position, row_start, col_start, tile)`` then
    (or also) receives each upper tile as a NumPy array (the last tiles are padded).
    ``memory_budget``: bytes (default half of ``MemAvailable``).
    """
    dt = _check_dtype_arg(dtype)
    n_segments = _positive_int(n_segments, "n_segments")
    block_frames = _positive_int(block_frames, "block_frames")
    sel = _select(dynamic_labels, static_labels, bins, normalization)
    known = frame_count(source, start=start, stop=stop)
    shape = getattr(source, "shape", None)
    if shape is not None and len(shape) == 3 and tuple(int(s) for s in shape[1:]) != sel.frame_shape:
        raise ValueError(
            f"frames of shape {tuple(shape[1:])} do not match the label maps' shape {sel.frame_shape}; "
            "the partition must be made for this detector"
        )
    n_bins = len(sel.bins)
    if known is not None:
        seg_len = _segment_length(known, n_segments)
        block = math.ceil(known / math.ceil(known / block_frames))
        needed = twotime_memory_bytes(
            known, sel.n_pixels, n_bins, dt, keep_maps=keep_maps, block_frames=block, n_segments=n_segments
        )
        _check_budget(needed, memory_budget, f"{n_bins} bins, {known} frames, {sel.n_pixels} pixels, {dt}")
    else:
        seg_len, block = 0, block_frames

    b = xpcs_device.get_backend()
    chunks = iter_frame_chunks(source, chunk_frames, start=start, stop=stop)
    # Segment bounds need N: for an iterator of unknown length the frames are first collected
    # (selected pixels only), then tiled.
    acc: _Accumulator | None = None
    collected: list[tuple[Array, np.ndarray[Any, Any]]] = []
    offset = 0
    for x, sums_np in _normalised_chunks(b, sel, chunks, normalization == "aps", dt, jit):
        offset += int(x.shape[0])
        if known is not None:
            if acc is None:
                acc = _Accumulator(b, sel, block, dt, seg_len, n_segments, keep_maps, known, on_tile, jit)
            acc.add(x, sums_np)
        else:
            collected.append((x, sums_np))
            needed = twotime_memory_bytes(
                offset,
                sel.n_pixels,
                n_bins,
                dt,
                keep_maps=keep_maps,
                block_frames=block,
                n_segments=n_segments,
            )
            _check_budget(needed, memory_budget, f"{n_bins} bins, {offset}+ frames, {sel.n_pixels} pixels")
    n_frames = offset
    if known is None:
        seg_len = _segment_length(n_frames, n_segments)
        block = math.ceil(n_frames / math.ceil(n_frames / block_frames))
        acc = _Accumulator(b, sel, block, dt, seg_len, n_segments, keep_maps, n_frames, on_tile, jit)
        for x, sums_np in collected:
            acc.add(x, sums_np)
        collected.clear()
    if acc is None:  # no frame at all
        _segment_length(n_frames, n_segments)
        raise AssertionError("unreachable")  # the line above raises
    acc.finish()
    _warn_zero_frames(np.concatenate(acc.zero_frames, axis=0), sel.bins, start)
    full, seg_delays = _delay_plan(delays, n_frames, seg_len, lags_per_level)
    g2, g2_seg = _finish_g2(b, acc.sum_acc, acc.count_acc, full, seg_delays)
    maps = acc.assemble()
    return TwoTime(
        c2=None if maps is None else b.asarray(maps),
        g2=g2,
        g2_segments=g2_seg,
        delays=b.asarray(full),
        segment_delays=b.asarray(seg_delays),
        bins=sel.bins,
        segment_bounds=tuple(s * seg_len for s in range(n_segments + 1)),
        n_frames=n_frames,
        num_pts=sel.num_pts,
    )
