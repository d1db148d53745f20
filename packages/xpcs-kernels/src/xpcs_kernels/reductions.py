"""Streaming reductions of a frame stack: mean image, I(q), I(q) per segment, intensity vs time.

One pass over frames that arrive in chunks, with memory independent of the number of
frames (apart from the per-frame intensity, 8 bytes a frame), in the functional style of
the kernels::

    state = init_reductions(labels, n_bins, n_frames_total=N, n_segments=4)
    for chunk in iter_frame_chunks(dataset):
        state = update_reductions(state, chunk)
    result = finalize_reductions(state)

or all at once with :func:`reduce_frames`. The state is an immutable value: an update
returns a new state and leaves the old one valid (an update that raises leaves nothing
half done). The array work of an update is one compiled function (``get_backend().jit``)
per chunk shape and dtype; counting frames and splitting a chunk at segment boundaries is
Python bookkeeping around it.

Definitions (``labels`` is the static partition: an ``(H, W)`` integer map, bins
``1..n_bins``, 0 = masked or outside every bin; "valid pixels" are those with a label in
``1..n_bins``; N frames; bin k has ``n_k`` pixels):

- ``mean_image`` (SAXS 2D, ``/xpcs/temporal_mean/scattering_2d``): the mean over frames
  of every pixel, masked pixels included, float64. Sums are accumulated in float64 (each
  chunk is converted to float64 on the device), so integer counts are summed exactly up
  to 2**53.
- ``iq`` (SAXS 1D, ``scattering_1d``): mean intensity per pixel and frame of each bin,
  ``sum over frames and the bin's pixels / (N * n_k)`` — equal to the mean over the bin's
  pixels of ``mean_image``.
- ``iq_err``: the standard error of that mean from the spread of the time-averaged image
  over the bin's pixels, ``std(mean_image[bin], ddof=1) / sqrt(n_k)``: what a SAXS 1D
  error bar shows (pixels of one ring differ by speckle and by the variation of q inside
  the bin, not only by counting noise). It is NaN for a bin with fewer than 2 pixels.
- ``iq_counts``: ``n_k``, the number of pixels of each bin (APS ``static_num_pts``).
- ``iq_segments`` (``scattering_1d_segments``), shape ``(n_segments, n_bins)``: ``iq`` of
  each of ``n_segments`` consecutive frame ranges, ``[s * L, (s + 1) * L)`` with
  ``L = N // n_segments``, the last one also taking the remaining ``N % n_segments``
  frames; ``segment_bounds`` gives the ``n_segments + 1`` boundaries.
- ``intensity_vs_time`` (``/xpcs/spatial_mean/intensity_vs_time``), shape ``(2, N)``:
  row 0 the frame number in the source (``first_frame`` + index within the reduced range,
  so ``start`` of :func:`reduce_frames` for the first reduced frame) times ``frame_time``
  (the number itself when ``frame_time`` is None), row 1 the mean intensity per valid
  pixel of that frame.

A bin without pixels has NaN in ``iq``, ``iq_err`` and ``iq_segments`` (never 0) and 0 in
``iq_counts``.

Bad input raises: a label map that is not a 2-D integer map with values in
``0..n_bins`` or has no valid pixel; frames whose shape differs from the label map's;
non-numeric frames; negative values (counts cannot be negative) and infinities, naming
how many and the first frame; NaN unless ``nan="ignore"``; zero frames; more or fewer
frames than ``n_frames_total``. With ``nan="ignore"`` NaN values are missing data: every
mean is taken over the values that are not NaN (``mean_image`` per pixel, ``iq`` and
``iq_segments`` pooled over the bin's non-NaN values, ``intensity_vs_time`` per frame);
``iq_err`` uses the pixels whose ``mean_image`` is defined; a mean over no value is NaN.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any, Literal, cast

import numpy as np

import xpcs_device
from xpcs_kernels.binning import _bin_sums
from xpcs_kernels.frames import _check_dtype, frame_count, iter_frame_chunks
from xpcs_protocol import Array, BackendProtocol

__all__ = [
    "FrameValueError",
    "ReductionState",
    "Reductions",
    "finalize_reductions",
    "init_reductions",
    "reduce_frames",
    "segment_bounds",
    "update_reductions",
]

NanPolicy = Literal["raise", "ignore"]

# Frame sums per chunk, newest first, as an immutable linked list: appending is O(1), so a
# run of many chunks does not copy a growing tuple at every update.
_Chain = tuple["_Chain | None", Array] | None


class FrameValueError(ValueError):
    """Frame values that are not photon counts (negative, infinite, or NaN when not ignored)."""


def segment_bounds(n_frames: int, n_segments: int) -> tuple[int, ...]:
    """The ``n_segments + 1`` frame boundaries of ``n_segments`` consecutive ranges of
    ``n_frames // n_segments`` frames, the last range also taking the remainder."""
    if isinstance(n_segments, bool) or not isinstance(n_segments, int | np.integer) or n_segments < 1:
        raise ValueError(f"n_segments must be a positive integer, got {n_segments!r}")
    if n_frames < n_segments:
        raise ValueError(
            f"cannot split {n_frames} frames into n_segments={n_segments} segments of at least "
            "one frame; lower n_segments"
        )
    length = n_frames // n_segments
    return (*(s * length for s in range(n_segments)), int(n_frames))


@dataclass(frozen=True, eq=False)
class ReductionState:
    """The running state of the streaming reductions (see :func:`init_reductions`).

    Treat it as opaque and immutable: pass it to :func:`update_reductions` and
    :func:`finalize_reductions`. Arrays live on the backend that was active at
    :func:`init_reductions` (``backend``), which must stay active.
    """

    backend: str
    n_bins: int
    frame_shape: tuple[int, int]
    n_segments: int
    n_frames_total: int | None
    bounds: tuple[int, ...] | None
    nan: NanPolicy
    n_valid_pixels: int
    first_frame: int
    """Frame number in the source of the first reduced frame (row 0 of ``intensity_vs_time``)."""
    labels: Array
    """``(H * W,)`` int32 flat label map."""
    valid: Array
    """``(H * W,)`` float64: 1 on valid pixels, 0 elsewhere."""
    num_pts: Array
    """``(n_bins,)`` int64 pixels per bin."""
    sum_image: Array
    """``(H * W,)`` float64 sum over frames."""
    count_image: Array | None
    """``(H * W,)`` float64 number of non-NaN frames per pixel (``nan="ignore"`` only)."""
    segment_sums: Array
    """``(n_segments, n_bins)`` float64 sums over each segment's frames and each bin's pixels."""
    segment_counts: Array | None
    """``(n_segments, n_bins)`` float64 number of non-NaN values summed (``nan="ignore"`` only)."""
    frame_sums: _Chain
    frame_counts: _Chain
    n_frames: int


@dataclass(frozen=True, eq=False)
class Reductions:
    """Results of the streaming reductions, arrays of the active backend (definitions in
    the :mod:`xpcs_kernels.reductions` module docstring)."""

    mean_image: Array
    """``(H, W)`` float64 mean over frames (SAXS 2D)."""
    iq: Array
    """``(n_bins,)`` float64 mean intensity per pixel and frame of each bin (SAXS 1D)."""
    iq_err: Array
    """``(n_bins,)`` float64 standard error of ``iq``: pixel spread of ``mean_image`` in the bin."""
    iq_counts: Array
    """``(n_bins,)`` int64 pixels per bin."""
    iq_segments: Array
    """``(n_segments, n_bins)`` float64 ``iq`` of each consecutive frame segment."""
    segment_bounds: tuple[int, ...]
    """``n_segments + 1`` frame boundaries: segment s is ``[bounds[s], bounds[s + 1])``."""
    intensity_vs_time: Array
    """``(2, N)`` float64: frame number in the source (times ``frame_time``) and mean intensity
    per valid pixel."""
    n_frames: int
    n_valid_pixels: int


# --------------------------------------------------------------------------- helpers
def _positive_int(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def _check_labels(labels: Any, n_bins: int) -> np.ndarray[Any, Any]:
    lab = np.asarray(labels)
    if lab.ndim != 2:
        raise ValueError(f"labels must be a 2-D (H, W) label map of the detector, got shape {lab.shape}")
    if lab.dtype.kind not in "iu":
        raise TypeError(
            f"labels must be an integer label map (1..n_bins, 0 = excluded), got dtype {lab.dtype}; "
            "use the static_roi_map of a partition"
        )
    if lab.size == 0:
        raise ValueError(f"labels has no pixel (shape {lab.shape})")
    low, high = int(lab.min()), int(lab.max())
    if low < 0 or high > n_bins:
        raise ValueError(
            f"labels must lie in 0..n_bins = 0..{n_bins} (0 = excluded), found values from {low} to "
            f"{high}; pass the partition's number of static bins as n_bins"
        )
    if high == 0:
        raise ValueError(
            "labels has no valid pixel (every label is 0); the mask or partition excludes everything"
        )
    return lab


def _chain_to_list(chain: _Chain) -> list[Array]:
    items: list[Array] = []
    while chain is not None:
        chain, value = chain
        items.append(value)
    items.reverse()
    return items


def _active_backend(state: ReductionState) -> BackendProtocol:
    b = xpcs_device.get_backend()
    if b.name != state.backend:
        raise RuntimeError(
            f"this reduction state was created under the {state.backend!r} backend but "
            f"{b.name!r} is active now; keep one backend for init, update and finalize"
        )
    return b


# ----------------------------------------------------------------------- chunk kernel
@functools.lru_cache(maxsize=64)
def _chunk_kernel(
    b: BackendProtocol, n_bins: int, nan_ignore: bool, with_min: bool, jit: bool
) -> Callable[..., Any]:
    """The array work of one update (compiled once per configuration, shape and dtype)."""
    f64 = np.float64

    def per_piece_bins(labels: Array, values: Array) -> Array:
        # (P, H*W) float64 values summed per (piece, bin), block by block (no full-size temporary).
        return _bin_sums(b, labels, values, n_bins, "float64")

    def kernel(
        labels: Array,
        valid: Array,
        sum_image: Array,
        segment_sums: Array,
        count_image: Array | None,
        segment_counts: Array | None,
        chunk: Array,
        piece_masks: Array,
        piece_segments: Array,
    ) -> tuple[Any, ...]:
        n = chunk.shape[0]
        x = b.astype(b.reshape(chunk, (n, -1)), f64)
        frame_counts = None
        if nan_ignore:
            present = b.astype(b.logical_not(b.isnan(x)), f64)
            x = b.where(present > 0, x, 0.0)
            counted = b.matmul(piece_masks, present)  # non-NaN frames per piece and pixel
            count_image = count_image + b.sum(counted, axis=0)
            segment_counts = b.index_add(segment_counts, piece_segments, per_piece_bins(labels, counted))
            frame_counts = b.matmul(present, valid)
        images = b.matmul(piece_masks, x)  # (P, H*W): sum over each piece's frames
        sum_image = sum_image + b.sum(images, axis=0)
        segment_sums = b.index_add(segment_sums, piece_segments, per_piece_bins(labels, images))
        frame_sums = b.matmul(x, valid)  # per frame, over the valid pixels
        # Checks, reduced to two scalars: the sum of everything is finite unless a NaN or an
        # infinity is in the chunk, and the minimum shows negative values (signed types).
        total = b.sum(images)
        lowest = b.min(x) if with_min else b.zeros(())
        return sum_image, segment_sums, count_image, segment_counts, frame_sums, frame_counts, total, lowest

    return b.jit(kernel) if jit else kernel


# ------------------------------------------------------------------------- public API
def init_reductions(
    labels: Any,
    n_bins: int,
    frame_shape: tuple[int, int] | None = None,
    n_frames_total: int | None = None,
    n_segments: int = 1,
    *,
    nan: NanPolicy = "raise",
    first_frame: int = 0,
) -> ReductionState:
    """The empty state of the reductions over frames of shape ``labels.shape``.

    ``labels``: ``(H, W)`` integer static label map, bins ``1..n_bins``, 0 excluded (any
    array; copied to the device). ``frame_shape``, if given, must equal ``labels.shape``.
    ``n_frames_total``: the number of frames that will be streamed; required when
    ``n_segments > 1`` (the boundaries are fixed before the first frame), optional
    otherwise (then checked at the end). ``nan``: ``"raise"`` (default) or ``"ignore"``
    (NaN values are missing data, see the module docstring). ``first_frame``: the frame
    number in the source of the first frame that will be streamed (``start`` of a frame
    range), so that ``intensity_vs_time`` and error messages carry source frame numbers.
    """
    n_bins = _positive_int(n_bins, "n_bins")
    n_segments = _positive_int(n_segments, "n_segments")
    if nan not in ("raise", "ignore"):
        raise ValueError(f"nan must be 'raise' or 'ignore', got {nan!r}")
    if isinstance(first_frame, bool) or not isinstance(first_frame, int | np.integer) or first_frame < 0:
        raise ValueError(f"first_frame must be a non-negative integer (a frame number), got {first_frame!r}")
    lab = _check_labels(labels, n_bins)
    shape = (int(lab.shape[0]), int(lab.shape[1]))
    if frame_shape is not None and tuple(frame_shape) != shape:
        raise ValueError(f"frame_shape {tuple(frame_shape)} differs from the label map's shape {shape}")
    bounds: tuple[int, ...] | None = None
    if n_frames_total is not None:
        if isinstance(n_frames_total, bool) or not isinstance(n_frames_total, int | np.integer):
            raise ValueError(f"n_frames_total must be an integer or None, got {n_frames_total!r}")
        if n_frames_total < 1:
            raise ValueError(f"there are no frames to reduce (n_frames_total={n_frames_total})")
        n_frames_total = int(n_frames_total)
        bounds = segment_bounds(n_frames_total, n_segments)
    elif n_segments > 1:
        raise ValueError(
            f"n_segments={n_segments} needs the number of frames up front to place the segment "
            "boundaries; pass n_frames_total (for an iterator of chunks) or n_segments=1"
        )

    b = xpcs_device.get_backend()
    flat = np.ascontiguousarray(lab.reshape(-1), dtype=np.int32)
    valid = (flat > 0).astype(np.float64)
    num_pts = np.bincount(flat, minlength=n_bins + 1)[1:].astype(np.int64)
    nan_ignore = nan == "ignore"

    def zeros(shape: tuple[int, ...]) -> Array:
        return xpcs_device.place_on_device(np.zeros(shape, dtype=np.float64))

    return ReductionState(
        backend=b.name,
        n_bins=n_bins,
        frame_shape=shape,
        n_segments=n_segments,
        n_frames_total=n_frames_total,
        bounds=bounds,
        nan=nan,
        n_valid_pixels=int(valid.sum()),
        first_frame=int(first_frame),
        labels=xpcs_device.place_on_device(flat),
        valid=xpcs_device.place_on_device(valid),
        num_pts=xpcs_device.place_on_device(num_pts),
        sum_image=zeros((flat.size,)),
        count_image=zeros((flat.size,)) if nan_ignore else None,
        segment_sums=zeros((n_segments, n_bins)),
        segment_counts=zeros((n_segments, n_bins)) if nan_ignore else None,
        frame_sums=None,
        frame_counts=None,
        n_frames=0,
    )


def _check_chunk(chunk: Any, state: ReductionState) -> Any:
    if not hasattr(chunk, "dtype") or not hasattr(chunk, "shape"):
        chunk = np.asarray(chunk)
    shape = tuple(int(s) for s in chunk.shape)
    if len(shape) != 3:
        raise ValueError(
            f"a chunk of frames must be 3-D (n, H, W), got shape {shape}; a single frame is frame[None]"
        )
    _check_dtype(chunk.dtype, f"the chunk at frame {state.n_frames}")
    if shape[1:] != state.frame_shape:
        raise ValueError(
            f"frames of shape {shape[1:]} (chunk at frame {state.n_frames}) do not match the label "
            f"map's shape {state.frame_shape}; the partition must be made for this detector"
        )
    return chunk


def _frame_value_error(chunk: Any, offset: int, nan_ignore: bool) -> FrameValueError | None:
    """The error for the bad values of a chunk (host-side, only once something was seen)."""
    data = np.asarray(chunk).reshape(chunk.shape[0], -1)
    problems = []
    if data.dtype.kind == "f":
        nan = np.isnan(data)
        inf = np.isinf(data)
        if inf.any():
            problems.append(("infinite values", inf, "photon counts are finite"))
        if nan.any() and not nan_ignore:
            problems.append(("NaN values", nan, 'pass nan="ignore" to treat NaN as missing data'))
        negative = np.less(data, 0, where=~nan, out=np.zeros(data.shape, dtype=bool))
    else:
        negative = data < 0
    if negative.any():
        problems.append(
            ("negative values", negative, "counts cannot be negative; subtract no background here")
        )
    if not problems:
        return None
    parts = []
    for what, mask, hint in problems:
        per_frame = mask.any(axis=1)
        first = offset + int(np.argmax(per_frame))
        parts.append(
            f"{int(mask.sum())} {what} in {int(per_frame.sum())} frame(s), first in frame {first}: {hint}"
        )
    last = offset + data.shape[0] - 1
    return FrameValueError(
        f"bad frame values in the chunk of frames {offset}..{last} (frame numbers of the source): "
        + "; ".join(parts)
    )


def update_reductions(state: ReductionState, chunk: Any, *, jit: bool = True) -> ReductionState:
    """A new state with the frames of ``chunk`` ``(n, H, W)`` (any numeric dtype, NumPy or
    backend array) added; ``state`` is unchanged. The array work runs under
    ``get_backend().jit`` unless ``jit=False``. Raises before changing anything for bad
    frames (see the module docstring)."""
    b = _active_backend(state)
    chunk = _check_chunk(chunk, state)
    n = int(chunk.shape[0])
    if n == 0:
        return state
    offset = state.n_frames
    if state.n_frames_total is not None and offset + n > state.n_frames_total:
        raise ValueError(
            f"frames {offset}..{offset + n - 1} go beyond n_frames_total={state.n_frames_total}; "
            "the source has more frames than announced"
        )
    kind = np.dtype(chunk.dtype).kind
    nan_ignore = state.nan == "ignore"
    # Backends are hashable (by identity); the protocol does not say so to the type checker.
    kernel = _chunk_kernel(cast(Any, b), state.n_bins, nan_ignore, kind in "if", jit)

    # The chunk's frames split at segment boundaries (almost always one piece): each piece
    # is a 0/1 mask over the chunk's frames, so that the compiled shapes depend on the
    # number of pieces only, not on where the boundaries fall.
    bounds = state.bounds if state.bounds is not None else (0, offset + n)
    masks, segments = [], []
    for s in range(state.n_segments):
        lo, hi = max(bounds[s], offset), min(bounds[s + 1], offset + n)
        if lo < hi:
            mask = np.zeros(n, dtype=np.float64)
            mask[lo - offset : hi - offset] = 1.0
            masks.append(mask)
            segments.append(s)
    out = kernel(
        state.labels,
        state.valid,
        state.sum_image,
        state.segment_sums,
        state.count_image,
        state.segment_counts,
        xpcs_device.place_on_device(chunk),
        xpcs_device.place_on_device(np.stack(masks)),
        xpcs_device.place_on_device(np.asarray(segments, dtype=np.int32)),
    )
    sum_image, segment_sums, count_image, segment_counts, frame_sums, frame_counts, total, lowest = out
    if not math.isfinite(float(b.to_numpy(total))) or float(b.to_numpy(lowest)) < 0:
        error = _frame_value_error(chunk, state.first_frame + offset, nan_ignore)
        if error is not None:
            raise error

    return replace(
        state,
        sum_image=sum_image,
        segment_sums=segment_sums,
        count_image=count_image,
        segment_counts=segment_counts,
        frame_sums=(state.frame_sums, frame_sums),
        frame_counts=(state.frame_counts, frame_counts) if nan_ignore else None,
        n_frames=offset + n,
    )


def finalize_reductions(state: ReductionState, *, frame_time: float | None = None) -> Reductions:
    """The reductions of every frame added to ``state`` (see the module docstring).
    ``frame_time`` (seconds, > 0) scales row 0 of ``intensity_vs_time``."""
    b = _active_backend(state)
    n = state.n_frames
    if n == 0:
        raise ValueError("no frames were reduced; a reduction needs at least one frame")
    if state.n_frames_total is not None and n != state.n_frames_total:
        raise ValueError(
            f"{n} frames were reduced but n_frames_total={state.n_frames_total} were announced; "
            "the source ended early"
        )
    if frame_time is not None and not (math.isfinite(frame_time) and frame_time > 0):
        raise ValueError(f"frame_time must be a positive number of seconds or None, got {frame_time!r}")
    bounds = state.bounds if state.bounds is not None else (0, n)
    k = state.n_bins
    labels, num_pts = state.labels, b.astype(state.num_pts, np.float64)
    nan = float("nan")

    def per_bin(values: Array) -> Array:
        return b.bincount(labels, values, length=k + 1)[1:]

    def ratio(num: Array, den: Array) -> Array:
        return b.where(den > 0, num / b.maximum(den, 1.0), nan)

    if state.count_image is not None:
        mean_image = ratio(state.sum_image, state.count_image)
        iq = ratio(per_bin(state.sum_image), per_bin(state.count_image))
        defined = b.astype(state.count_image > 0, np.float64)
    else:
        mean_image = state.sum_image / n
        iq = ratio(per_bin(state.sum_image), num_pts * n)
        defined = b.ones_like(state.sum_image)

    # Standard error: spread over the bin's pixels of the time-averaged image (two passes).
    m0 = b.where(defined > 0, mean_image, 0.0)
    n_pix = per_bin(defined)
    pixel_mean = ratio(per_bin(m0), n_pix)
    centre = b.take(b.concatenate([b.zeros(1), b.where(n_pix > 0, pixel_mean, 0.0)]), labels)
    squares = per_bin(defined * b.square(m0 - centre))
    iq_err = b.where(n_pix >= 2, b.sqrt(squares / b.maximum(n_pix - 1, 1.0) / b.maximum(n_pix, 1.0)), nan)

    if state.segment_counts is not None:
        iq_segments = ratio(state.segment_sums, state.segment_counts)
    else:
        lengths = b.asarray(np.diff(np.asarray(bounds)).astype(np.float64))
        iq_segments = ratio(state.segment_sums, lengths[:, None] * num_pts[None, :])

    frame_sums = b.concatenate(_chain_to_list(state.frame_sums))
    if state.nan == "ignore":
        intensity = ratio(frame_sums, b.concatenate(_chain_to_list(state.frame_counts)))
    else:
        intensity = frame_sums / state.n_valid_pixels
    numbers = b.arange(state.first_frame, state.first_frame + n, dtype=np.float64)
    times = numbers * (1.0 if frame_time is None else float(frame_time))

    return Reductions(
        mean_image=b.reshape(mean_image, state.frame_shape),
        iq=iq,
        iq_err=iq_err,
        iq_counts=state.num_pts,
        iq_segments=iq_segments,
        segment_bounds=bounds,
        intensity_vs_time=b.stack([times, intensity]),
        n_frames=n,
        n_valid_pixels=state.n_valid_pixels,
    )


def reduce_frames(
    source: Any,
    labels: Any,
    n_bins: int,
    *,
    n_segments: int = 1,
    chunk_frames: int | None = None,
    start: int = 0,
    stop: int | None = None,
    n_frames_total: int | None = None,
    nan: NanPolicy = "raise",
    frame_time: float | None = None,
    jit: bool = True,
) -> Reductions:
    """All reductions of frames ``[start, stop)`` of ``source`` in one streaming pass.

    ``source`` is anything :func:`~xpcs_kernels.frames.iter_frame_chunks` reads (an
    ``(N, H, W)`` array, an ``h5py.Dataset``, an iterable of chunks or frames), read
    ``chunk_frames`` frames at a time. The number of frames comes from the source's
    shape; a plain iterable has none, so ``n_segments > 1`` then needs ``n_frames_total``
    (checked against what the iterable yields). Row 0 of ``intensity_vs_time`` and error
    messages use frame numbers of the source (``start`` for the first reduced frame).
    """
    known = frame_count(source, start=start, stop=stop)
    if known is not None and n_frames_total is not None and known != n_frames_total:
        raise ValueError(f"n_frames_total={n_frames_total} but the source has {known} frames in the range")
    total = known if known is not None else n_frames_total
    if total == 0:
        raise ValueError(f"there are no frames to reduce (frames {start} to {stop} of the source)")
    state = init_reductions(
        labels, n_bins, n_frames_total=total, n_segments=n_segments, nan=nan, first_frame=start
    )
    shape = getattr(source, "shape", None)
    if shape is not None and len(shape) == 3 and tuple(shape[1:]) != state.frame_shape:
        raise ValueError(
            f"frames of shape {tuple(shape[1:])} do not match the label map's shape {state.frame_shape}; "
            "the partition must be made for this detector"
        )
    for chunk in iter_frame_chunks(source, chunk_frames, start=start, stop=stop):
        state = update_reductions(state, chunk, jit=jit)
    return finalize_reductions(state, frame_time=frame_time)
