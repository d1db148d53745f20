"""Frame sources: a stack of detector frames read as consecutive chunks.

:func:`iter_frame_chunks` turns any of the usual frame sources into NumPy chunks of shape
``(n, H, W)``, so that a streaming kernel (:mod:`xpcs_kernels.reductions`) never holds
more than one chunk:

- an in-memory array ``(N, H, W)`` — NumPy, JAX, or anything with ``shape``, ``dtype``
  and slicing (``numpy.memmap`` included): sliced along axis 0;
- an ``h5py.Dataset`` ``(N, H, W)``: read chunk by chunk, each read covering whole HDF5
  chunks along axis 0 when the dataset is chunked (so no HDF5 chunk is decompressed
  twice), within a memory budget otherwise;
- any other iterable of ``(n, H, W)`` chunks or ``(H, W)`` frames (a generator reading
  files one by one, a list of frames): re-batched to ``chunk_frames`` frames.

Opening files is not done here: h5py objects come in already open. Chunks are yielded
read-only (views of the source where it is a NumPy array): they are inputs, never to be
modified.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Iterable, Iterator
from typing import Any

import numpy as np

__all__ = [
    "DEFAULT_CHUNK_BYTES",
    "FrameSourceError",
    "auto_chunk_frames",
    "frame_count",
    "iter_frame_chunks",
]

DEFAULT_CHUNK_BYTES = 256 * 1024**2
"""Memory budget of one automatic chunk, counted in float64 (8 bytes a pixel), the type
the reductions convert each chunk to: 256 MiB is 32 frames of 1024 x 1024 pixels."""

_NUMERIC_KINDS = "iuf"


class FrameSourceError(ValueError):
    """A frame source that cannot be read as a stack of ``(H, W)`` frames of numbers."""


def _is_h5py_dataset(source: object) -> bool:
    # An h5py Dataset can only exist once h5py is imported: no import here.
    h5py = sys.modules.get("h5py")
    return h5py is not None and isinstance(source, h5py.Dataset)


def _is_sliceable_array(source: object) -> bool:
    return all(hasattr(source, attr) for attr in ("shape", "dtype", "__getitem__")) and not isinstance(
        source, str | bytes
    )


def _check_dtype(dtype: Any, what: str) -> np.dtype[Any]:
    try:
        dt: np.dtype[Any] = np.dtype(dtype)
    except TypeError as exc:
        raise TypeError(
            f"{what} has dtype {dtype!r}, which is not a NumPy dtype; frames must hold numbers"
        ) from exc
    if dt.kind not in _NUMERIC_KINDS:
        raise TypeError(
            f"{what} has dtype {dt}, not a real number type; frames must hold integer or "
            "floating-point counts (convert booleans with .astype(numpy.uint8), take the "
            "magnitude of complex data first)"
        )
    return dt


def auto_chunk_frames(frame_shape: tuple[int, ...], *, budget_bytes: int | None = None) -> int:
    """Frames per automatic chunk: as many as fit in ``budget_bytes`` (default
    :data:`DEFAULT_CHUNK_BYTES`) as float64, at least 1."""
    if budget_bytes is None:
        budget_bytes = DEFAULT_CHUNK_BYTES
    pixels = math.prod(frame_shape)
    return max(1, budget_bytes // max(1, 8 * pixels))


def _check_chunk_frames(chunk_frames: int | None) -> int | None:
    if chunk_frames is None:
        return None
    if isinstance(chunk_frames, bool) or not isinstance(chunk_frames, int | np.integer) or chunk_frames < 1:
        raise ValueError(f"chunk_frames must be a positive integer or None (automatic), got {chunk_frames!r}")
    return int(chunk_frames)


def _check_range(start: int, stop: int | None, n_frames: int | None) -> tuple[int, int | None]:
    for name, value in (("start", start), ("stop", stop)):
        if value is None and name == "stop":
            continue
        if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 0:
            raise ValueError(f"{name} must be a non-negative frame index, got {value!r}")
    start = int(start)
    stop = None if stop is None else int(stop)
    if stop is not None and stop < start:
        raise ValueError(f"stop={stop} is before start={start}; the frame range is [start, stop)")
    if n_frames is not None:
        if stop is None:
            stop = n_frames
        if stop > n_frames:
            raise ValueError(f"stop={stop} is beyond the end of the source, which has {n_frames} frames")
        if start > n_frames:
            raise ValueError(f"start={start} is beyond the end of the source, which has {n_frames} frames")
    return start, stop


def _array_shape(source: Any) -> tuple[int, int, int]:
    shape = tuple(int(s) for s in source.shape)
    if len(shape) != 3:
        raise FrameSourceError(
            f"a frame stack must be 3-D (frames, rows, columns), got shape {shape}; a single "
            "frame of shape (H, W) is source[None], a list of frames can be passed as is"
        )
    return shape[0], shape[1], shape[2]


def frame_count(source: object, *, start: int = 0, stop: int | None = None) -> int | None:
    """Number of frames :func:`iter_frame_chunks` will yield for ``source`` and the range,
    or None for a plain iterable (its length is unknown until it has been read)."""
    if _is_sliceable_array(source):
        n = _array_shape(source)[0]
        start, stop_ = _check_range(start, stop, n)
        assert stop_ is not None
        return stop_ - start
    _check_range(start, stop, None)
    return None


def _h5_chunk_frames(dataset: Any, frame_shape: tuple[int, int]) -> int:
    per_budget = auto_chunk_frames(frame_shape)
    chunks = dataset.chunks
    if not chunks:
        return per_budget
    rows = int(chunks[0])
    # A whole number of HDF5 chunks along axis 0, as many as the budget allows (at least one).
    return rows * max(1, per_budget // rows)


def _read_only(chunk: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    view = chunk.view()
    view.flags.writeable = False
    return view


def _iter_sliceable(
    source: Any, chunk_frames: int | None, start: int, stop: int | None
) -> Iterator[np.ndarray[Any, Any]]:
    """Validates eagerly, then returns the lazy reader."""
    n, h, w = _array_shape(source)
    _check_dtype(source.dtype, f"the frame source (shape {(n, h, w)})")
    start, stop_ = _check_range(start, stop, n)
    assert stop_ is not None
    is_h5 = _is_h5py_dataset(source)
    if chunk_frames is None:
        step = _h5_chunk_frames(source, (h, w)) if is_h5 else auto_chunk_frames((h, w))
    else:
        step = chunk_frames
    return _read_blocks(source, step, start, stop_)


def _read_blocks(source: Any, step: int, start: int, stop: int) -> Iterator[np.ndarray[Any, Any]]:
    # Reads start on a multiple of the step, so that the reads of a chunked HDF5 dataset
    # stay aligned to its chunks even when `start` is not.
    first = start
    while first < stop:
        last = min(stop, (first // step + 1) * step)
        block = source[first:last]
        yield _read_only(np.asarray(block))
        first = last


def _iterator_item(item: Any, index: int, frame_shape: tuple[int, int] | None) -> np.ndarray[Any, Any]:
    """Item ``index`` of a frame iterator as a validated ``(n, H, W)`` array."""
    try:
        arr = np.asarray(item)
    except ValueError:  # NumPy refuses ragged nested sequences
        arr = np.empty(0, dtype=object)
    if arr.dtype == object:
        raise FrameSourceError(
            f"chunk {index} of the frame iterator is not a regular array (ragged or "
            f"non-numeric: {type(item).__name__}); each item must be an (n, H, W) or (H, W) array"
        )
    if arr.ndim == 2:
        arr = arr[None]
    elif arr.ndim != 3:
        raise FrameSourceError(
            f"chunk {index} of the frame iterator has shape {arr.shape}; each item must be "
            "an (n, H, W) chunk or a single (H, W) frame"
        )
    _check_dtype(arr.dtype, f"chunk {index} of the frame iterator")
    shape = (int(arr.shape[1]), int(arr.shape[2]))
    if frame_shape is not None and shape != frame_shape:
        raise FrameSourceError(
            f"chunk {index} of the frame iterator has frames of shape {shape}, but the earlier "
            f"chunks have {frame_shape}; every frame of a stack must have the same shape"
        )
    return arr


def _iterator_range(source: Iterable[Any], start: int, stop: int | None) -> Iterator[np.ndarray[Any, Any]]:
    """The validated items of a frame iterator, cut to frames ``[start, stop)``."""
    frame_shape: tuple[int, int] | None = None
    position = 0  # frames of the source seen so far (before the range is applied)
    for index, item in enumerate(source):
        arr = _iterator_item(item, index, frame_shape)
        frame_shape = (int(arr.shape[1]), int(arr.shape[2]))
        lo = max(0, start - position)
        hi = arr.shape[0] if stop is None else min(arr.shape[0], stop - position)
        position += arr.shape[0]
        if lo < hi:
            yield arr[lo:hi]
        if stop is not None and position >= stop:
            return
    if stop is not None:
        raise FrameSourceError(
            f"the frame iterator ended after {position} frames, before stop={stop}; lower stop "
            "or pass stop=None to read to the end"
        )


def _iter_iterable(
    source: Iterable[Any], chunk_frames: int | None, start: int, stop: int | None
) -> Iterator[np.ndarray[Any, Any]]:
    """Re-batches the items to ``chunk_frames`` frames (a change of dtype starts a new
    chunk: concatenating would promote silently)."""
    pending: list[np.ndarray[Any, Any]] = []
    pending_frames = 0
    target = chunk_frames

    def flush() -> np.ndarray[Any, Any]:
        out = pending[0] if len(pending) == 1 else np.concatenate(pending, axis=0)
        pending.clear()
        return _read_only(out)

    for item in _iterator_range(source, start, stop):
        arr = item
        if target is None:
            target = auto_chunk_frames(arr.shape[1:])
        if pending and arr.dtype != pending[0].dtype:
            yield flush()
            pending_frames = 0
        while arr.shape[0]:
            take = min(target - pending_frames, arr.shape[0])
            pending.append(arr[:take])
            pending_frames += take
            arr = arr[take:]
            if pending_frames == target:
                yield flush()
                pending_frames = 0
    if pending:
        yield flush()


def iter_frame_chunks(
    source: object, chunk_frames: int | None = None, *, start: int = 0, stop: int | None = None
) -> Iterator[np.ndarray[Any, Any]]:
    """Frames ``[start, stop)`` of ``source`` as consecutive read-only NumPy chunks ``(n, H, W)``.

    ``source`` is an array ``(N, H, W)`` (NumPy, JAX, any object with ``shape``, ``dtype``
    and slicing), an ``h5py.Dataset`` ``(N, H, W)``, or an iterable of ``(n, H, W)``
    chunks or ``(H, W)`` frames. ``chunk_frames`` is the number of frames of each chunk
    (the last one may have fewer); None chooses it: whole HDF5 chunks along axis 0 for a
    chunked dataset, otherwise as many frames as fit in :data:`DEFAULT_CHUNK_BYTES`
    counted as float64. Chunks of an iterable are re-batched to that size (split or
    concatenated; a change of dtype starts a new chunk).

    Chunks of arrays and datasets are read lazily, one at a time, and chunk boundaries
    fall on multiples of ``chunk_frames`` counted from frame 0, so the first chunk may be
    shorter when ``start`` is not a multiple. Nothing is checked for NaN or sign here
    (the reductions do).

    Raises :class:`FrameSourceError` (a ``ValueError``) for a stack that is not 3-D, an
    iterator item that is not 2-D or 3-D or whose frame shape differs from the earlier
    ones (naming the item's index), a range outside the source; ``TypeError`` for
    non-numeric data or a source that is neither an array nor an iterable.
    """
    chunk_frames = _check_chunk_frames(chunk_frames)
    if _is_sliceable_array(source):
        return _iter_sliceable(source, chunk_frames, start, stop)
    if isinstance(source, str | bytes | dict) or not isinstance(source, Iterable):
        raise TypeError(
            "a frame source must be an (N, H, W) array, an h5py.Dataset or an iterable of frame "
            f"chunks, got {type(source).__name__}; open files first (h5py.File(path)['entry/data/data'])"
        )
    start, stop = _check_range(start, stop, None)
    return _iter_iterable(source, chunk_frames, start, stop)
