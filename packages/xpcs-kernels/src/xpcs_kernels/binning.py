"""Per-bin sums and means of detector frames over a label map, exact for photon counts.

``labels`` is a partition's label map (any shape, integers, bins ``1..n_bins``, 0 =
excluded); ``values`` is one frame of that shape or a stack ``(..., *labels.shape)``.
:func:`bin_sums` returns float64 ``(..., n_bins)`` sums, :func:`bin_means` divides them
by the pixels per bin (NaN for an empty bin).

**Exactness.** Integer frames (photon counts) are summed exactly. The pixels are summed
block by block (a block is a fixed run of consecutive pixels); a block's sum goes into
float64, exact up to 2**53. Two accumulators exist for a block:

- ``"int32"``: a 32-bit integer scatter-add, the fastest on a compiled backend (XLA on CPU
  adds int32 about twice as fast as float64 and needs no float64 copy of a uint16 frame).
  It is exact when no block sum can reach 2**31: ``block_pixels * max|value of dtype| <
  2**31`` (:func:`int32_sum_exact`), a static condition on the dtype and the block, so the
  block is chosen to satisfy it (at most 32768 pixels for uint16; uint8 blocks are limited
  by memory only, below). A dtype whose single value can reach 2**31 (uint32, int64)
  never takes it.
- ``"float64"``: float64 sums, exact for integers below 2**53, rounded as float64 for
  floating-point frames.

``accumulate="auto"`` takes int32 for integer and bool frames on a compiled backend
(``supports_jit``) and float64 otherwise: NumPy's ``bincount`` only sums in float64 and
that is its fastest path. Both give identical results for integer frames.

**Speed.** Blocks also keep every temporary small (at most 2**18 pixels): a full-frame
temporary of 32 MiB or more is served by fresh ``mmap`` pages on glibc, and their page
faults would cost more than the scatter itself (measured in ``tools/bench/bench_reductions.py``).
The block is the largest divisor of the number of pixels within those limits, so blocks
are plain reshapes, never copies. On NumPy a float64 frame with ``intp`` labels is one
block (``bincount`` converts nothing then).

**Many frames over one partition.** :func:`prepare_bins` checks a label map once and
counts its bins; the :class:`BinMap` it returns sums and averages frames
(:meth:`BinMap.sums`, :meth:`BinMap.means`) with what is known about the partition: when
the largest bin's pixel count times ``max|value of dtype|`` stays below 2**31 (uint16
frames: bins of up to 32768 pixels), no bin sum can overflow int32 anywhere, so a
compiled backend accumulates a whole frame in int32 with no per-block conversion, reads
indices precomputed once (uint16 where they fit: less memory traffic per pixel), adds
into a few interleaved copies of the histogram (consecutive pixels usually share a bin;
separate copies break that chain of dependent adds) and divides by the counts in the
same compiled call. Other cases take the :func:`bin_sums` path; the results are
identical.

Out-of-range labels (negative or above ``n_bins``) are dropped, like label 0. A NumPy
label map is checked and refused with a clear error; a device array (already placed, or
traced under ``jit``) is trusted. Inputs are never modified; the functions run eagerly
or under the backend's ``jit`` (one compiled function per configuration, cached).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal, cast

import numpy as np

from xpcs_device import get_backend, place_on_device
from xpcs_protocol import Array, BackendProtocol

__all__ = ["Accumulate", "BinMap", "bin_means", "bin_sums", "int32_sum_exact", "prepare_bins"]

Accumulate = Literal["auto", "int32", "float64"]

_INT32_LIMIT = 2**31
_BLOCK_PIXELS = 1 << 18  # temporaries of 1-2 MiB per block: heap memory reused, no fresh pages
_MIN_INT_BLOCK = 1 << 11  # smaller int32 blocks cost more per-block overhead than they save


def _max_abs(dtype: np.dtype[Any]) -> int | None:
    """The largest ``|value|`` of an integer or bool dtype, None for other kinds."""
    if dtype.kind == "b":
        return 1
    if dtype.kind in "iu":
        info = np.iinfo(dtype)
        return max(int(info.max), -int(info.min))
    return None


def int32_sum_exact(n_values: int, dtype: Any) -> bool:
    """True when any ``n_values`` values of the integer (or bool) ``dtype`` sum exactly in
    int32: ``n_values * max|value| < 2**31``. False for floating dtypes."""
    largest = _max_abs(np.dtype(dtype))
    return largest is not None and int(n_values) * largest < _INT32_LIMIT


@functools.lru_cache(maxsize=256)
def _largest_divisor(n: int, limit: int) -> int:
    best, i = 1, 1
    while i * i <= n:
        if n % i == 0:
            for d in (i, n // i):
                if best < d <= limit:
                    best = d
        i += 1
    return best


def _plan(
    n_pixels: int,
    dtype: np.dtype[Any],
    accumulate: Accumulate,
    compiled: bool,
    label_dtype: np.dtype[Any] | None = None,
) -> tuple[str, int]:
    """(accumulator, pixels per block) for frames of ``n_pixels`` values of ``dtype``."""
    float_block = _largest_divisor(n_pixels, _BLOCK_PIXELS)
    if float_block < _MIN_INT_BLOCK:  # awkward size: one block rather than thousands
        float_block = n_pixels
    if not compiled and dtype == np.float64 and label_dtype == np.intp:
        float_block = n_pixels  # NumPy's bincount converts nothing: blocks would only add calls
    largest = _max_abs(dtype)
    int_block = None
    if largest is not None and largest < _INT32_LIMIT:
        int_block = _largest_divisor(n_pixels, min(_BLOCK_PIXELS, (_INT32_LIMIT - 1) // largest))
    if accumulate == "float64" or (accumulate == "auto" and (int_block is None or not compiled)):
        return "float64", float_block
    if accumulate == "auto":
        assert int_block is not None
        if int_block >= _MIN_INT_BLOCK or int_block == n_pixels:
            return "int32", int_block
        return "float64", float_block
    if int_block is None:
        raise ValueError(
            f'accumulate="int32" needs integer or bool values whose single value stays below 2**31, '
            f"got dtype {dtype}; use accumulate='float64' (exact for integers below 2**53) or 'auto'"
        )
    return "int32", int_block


@functools.lru_cache(maxsize=64)
def _kernel(
    b: BackendProtocol, n_bins: int, n_pixels: int, accumulator: str, block: int
) -> Callable[[Array, Array], Array]:
    """``(labels, values (..., *labels.shape)) -> (..., n_bins)`` float64 sums, compiled.

    Reshapes happen inside the compiled function: outside it, a reshape of a JAX array
    is a computation of its own that writes a full copy."""
    length = n_bins + 1
    n_blocks = n_pixels // block

    def block_sums(labels: Array, values: Array) -> Array:
        if accumulator == "int32":
            # Unsigned indices: a negative label is out of range and dropped, as bincount
            # drops it (a signed one would count from the end); XLA also skips the wrap.
            zeros = b.zeros(length, dtype=np.int32)
            index = b.astype(labels, np.uint32)
            return b.astype(b.index_add(zeros, index, b.astype(values, np.int32)), np.float64)
        if np.dtype(values.dtype).kind == "f" and np.dtype(values.dtype) != np.float64:
            values = b.astype(values, np.float64)  # floating weights sum in their own dtype
        return b.bincount(labels, values, length=length)

    def frame_sums(label_blocks: Array, frame: Array) -> Array:
        if n_blocks == 1:
            return block_sums(b.reshape(label_blocks, (-1,)), frame)[1:]

        def add_block(total: Array, pair: tuple[Array, Array]) -> tuple[Array, None]:
            return total + block_sums(*pair), None

        total, _ = b.scan(add_block, b.zeros(length), (label_blocks, b.reshape(frame, (n_blocks, block))))
        return total[1:]

    def kernel(labels: Array, values: Array) -> Array:
        if np.dtype(labels.dtype) not in (np.dtype(np.int32), np.dtype(np.int64)):
            labels = b.astype(labels, np.int32)
        label_blocks = b.reshape(labels, (n_blocks, block))
        lead = tuple(values.shape[: values.ndim - labels.ndim])
        if math.prod(lead) == 1:
            return b.reshape(frame_sums(label_blocks, b.reshape(values, (-1,))), (*lead, n_bins))

        def per_frame(carry: Array, frame: Array) -> tuple[Array, Array]:
            return carry, frame_sums(label_blocks, frame)

        _, sums = b.scan(per_frame, b.zeros(()), b.reshape(values, (-1, n_pixels)))
        return b.reshape(sums, (*lead, n_bins))

    compiled: Callable[[Array, Array], Array] = b.jit(kernel)
    return compiled


def _positive_int(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def _as_array(x: Any) -> Any:
    return x if hasattr(x, "dtype") and hasattr(x, "shape") else np.asarray(x)


def _check_values(values: Any, shape: tuple[int, ...]) -> Any:
    """``values`` as an array of real numbers of shape ``(..., *shape)``, or a clear error."""
    values = _as_array(values)
    value_dtype = np.dtype(values.dtype)
    if value_dtype.kind not in "biuf":
        raise TypeError(f"values must be real numbers (bool, integer or float), got dtype {value_dtype}")
    lead = tuple(int(s) for s in values.shape[: values.ndim - len(shape)])
    if values.ndim < len(shape) or tuple(int(s) for s in values.shape[len(lead) :]) != shape:
        raise ValueError(
            f"values of shape {tuple(values.shape)} do not end with the label map's shape {shape}; "
            "pass one frame of that shape or a stack (..., *labels.shape)"
        )
    return values


def _check_accumulate(accumulate: object) -> None:
    if accumulate not in ("auto", "int32", "float64"):
        raise ValueError(f"accumulate must be 'auto', 'int32' or 'float64', got {accumulate!r}")


def bin_sums(labels: Any, values: Any, n_bins: int, *, accumulate: Accumulate = "auto") -> Array:
    """Sums of ``values`` over each bin ``1..n_bins`` of ``labels``, float64 ``(..., n_bins)``.

    ``values`` has shape ``labels.shape`` (one frame) or ``(..., *labels.shape)`` (frames);
    any real dtype. ``accumulate``: ``"auto"``, ``"int32"`` (integer values only) or
    ``"float64"`` (see the module docstring; every choice is exact for integer values).
    """
    n_bins = _positive_int(n_bins, "n_bins")
    _check_accumulate(accumulate)
    labels = _check_labels(labels)
    values = _check_values(values, tuple(int(s) for s in labels.shape))
    if isinstance(labels, np.ndarray):
        _check_label_range(int(labels.min()), int(labels.max()), n_bins)
    return _bin_sums(get_backend(), labels, values, n_bins, accumulate)


def _check_labels(labels: Any) -> Any:
    labels = _as_array(labels)
    label_dtype = np.dtype(labels.dtype)
    if label_dtype.kind not in "iu":
        raise TypeError(
            f"labels must be an integer label map (1..n_bins, 0 = excluded), got dtype {label_dtype}"
        )
    if math.prod(int(s) for s in labels.shape) == 0:
        raise ValueError(f"labels has no pixel (shape {tuple(labels.shape)})")
    return labels


def _check_label_range(low: int, high: int, n_bins: int) -> None:
    if low < 0 or high > n_bins:
        raise ValueError(
            f"labels must lie in 0..n_bins = 0..{n_bins} (0 = excluded), found values from {low} to "
            f"{high}; pass the partition's number of bins as n_bins"
        )


def _bin_sums(b: BackendProtocol, labels: Any, values: Any, n_bins: int, accumulate: Accumulate) -> Array:
    """:func:`bin_sums` without the checks (for kernels whose labels are already checked)."""
    n_pixels = math.prod(int(s) for s in labels.shape)
    lead = tuple(int(s) for s in values.shape[: values.ndim - labels.ndim])
    accumulator, block = _plan(
        n_pixels, np.dtype(values.dtype), accumulate, b.supports_jit, np.dtype(labels.dtype)
    )
    if math.prod(lead) == 0:
        return b.zeros((*lead, n_bins))
    # Backends are hashable (by identity); the protocol does not say so to the type checker.
    kernel = _kernel(cast(Any, b), n_bins, n_pixels, accumulator, block)
    return kernel(labels, values)


def bin_means(labels: Any, values: Any, num_pts: Any, *, accumulate: Accumulate = "auto") -> Array:
    """Mean of ``values`` over each bin, float64 ``(..., n_bins)``: :func:`bin_sums` divided
    by ``num_pts`` (pixels per bin, ``(n_bins,)``, e.g. a partition's ``num_pts``); NaN for
    a bin with no pixel."""
    b = get_backend()
    num_pts = _as_array(num_pts)
    if num_pts.ndim != 1:
        raise ValueError(f"num_pts must be the (n_bins,) pixels per bin, got shape {tuple(num_pts.shape)}")
    sums = bin_sums(labels, values, int(num_pts.shape[0]), accumulate=accumulate)
    return _divide(b, sums, num_pts)


def _divide(b: BackendProtocol, sums: Array, num_pts: Array) -> Array:
    """``sums / num_pts`` correctly rounded (NaN where a count is 0), eagerly. The counts
    are broadcast to the full shape first: XLA divides by a broadcast operand through its
    reciprocal, up to 1 ulp off."""
    counts = b.broadcast_to(b.astype(num_pts, np.float64), tuple(sums.shape))
    return b.where(counts > 0, sums / b.maximum(counts, 1.0), float("nan"))


# Interleaved copies of the histogram: pixel p adds into copy p % _COPIES. Only while the
# copies stay small enough for the first-level cache (here: 64 KiB of int32).
_COPIES = 4
_MAX_COPIED_BINS = 1 << 14


@functools.lru_cache(maxsize=64)
def _prepared_kernel(
    b: BackendProtocol, n_bins: int, n_pixels: int, frame_ndim: int, copies: int, block: int
) -> Callable[[Array, Array, Array], tuple[Array, Array]]:
    """``(index, values (..., *frame), num_pts) -> (sums, means)``, int32 accumulation
    over a whole frame (exact by the caller's guard), compiled."""
    length = copies * (n_bins + 1)
    n_blocks = n_pixels // block

    def frame_sums(index_blocks: Array, frame: Array, counts: Array) -> tuple[Array, Array]:
        def add_block(total: Array, pair: tuple[Array, Array]) -> tuple[Array, None]:
            index, values = pair
            return b.index_add(total, index, b.astype(values, np.int32)), None

        zeros = b.zeros(length, dtype=np.int32)
        if n_blocks == 1:
            total, _ = add_block(zeros, (b.reshape(index_blocks, (-1,)), frame))
        else:
            total, _ = b.scan(add_block, zeros, (index_blocks, b.reshape(frame, (n_blocks, block))))
        per_bin = b.sum(b.reshape(total, (copies, n_bins + 1)), axis=0)  # exact: the bin totals
        sums = b.astype(per_bin[1:], np.float64)
        # per frame, shape for shape: XLA turns a division by a broadcast into a product
        # with the reciprocal, which is not the correctly rounded quotient
        return sums, b.where(counts > 0, sums / b.maximum(counts, 1.0), float("nan"))

    def kernel(index: Array, values: Array, num_pts: Array) -> tuple[Array, Array]:
        index_blocks = b.reshape(index, (n_blocks, block))
        counts = b.astype(num_pts, np.float64)
        lead = tuple(values.shape[: values.ndim - frame_ndim])
        flat = b.reshape(values, (-1, n_pixels))
        if flat.shape[0] == 1:
            sums, means = frame_sums(index_blocks, flat[0], counts)
        else:

            def per_frame(carry: Array, frame: Array) -> tuple[Array, tuple[Array, Array]]:
                return carry, frame_sums(index_blocks, frame, counts)

            _, (sums, means) = b.scan(per_frame, b.zeros(()), flat)
        return b.reshape(sums, (*lead, n_bins)), b.reshape(means, (*lead, n_bins))

    compiled: Callable[[Array, Array, Array], tuple[Array, Array]] = b.jit(kernel)
    return compiled


@dataclass(frozen=True, eq=False)
class BinMap:
    """A label map checked and counted once, to sum or average many frames over it (see
    the module docstring). Build it with :func:`prepare_bins`; arrays of the backend that
    was active then."""

    labels: Array
    """The label map (integers, bins ``1..n_bins``, 0 = excluded), as given."""
    n_bins: int
    num_pts: Array
    """Pixels per bin, int64 ``(n_bins,)``."""
    largest_bin: int
    """Pixels in the fullest bin: the int32 guard for whole frames."""
    _index: Array | None = field(repr=False)
    """Flat unsigned (uint16 or uint32) scatter indices ``label + (n_bins + 1) * (pixel %
    copies)`` for the compiled whole-frame path, None on a backend without ``jit``."""
    _copies: int = field(repr=False)

    @property
    def shape(self) -> tuple[int, ...]:
        """Shape of one frame."""
        return tuple(int(s) for s in self.labels.shape)

    def whole_frame_int32(self, dtype: Any) -> bool:
        """True when frames of ``dtype`` are summed in int32 over the whole frame: integer
        or bool values with ``largest_bin * max|value| < 2**31``, on a compiled backend."""
        return self._index is not None and int32_sum_exact(self.largest_bin, np.dtype(dtype))

    def _fast(self, values: Any, accumulate: Accumulate) -> tuple[Array, Array] | None:
        _check_accumulate(accumulate)
        values = _check_values(values, self.shape)
        if accumulate == "float64" or not self.whole_frame_int32(values.dtype) or self._index is None:
            return None
        b = get_backend()
        n_pixels = math.prod(self.shape)
        if math.prod(int(s) for s in values.shape[: values.ndim - len(self.shape)]) == 0:
            return None
        block = _largest_divisor(n_pixels, _BLOCK_PIXELS)
        if block < _MIN_INT_BLOCK:
            block = n_pixels
        kernel = _prepared_kernel(cast(Any, b), self.n_bins, n_pixels, len(self.shape), self._copies, block)
        return kernel(self._index, values, self.num_pts)

    def sums(self, values: Any, *, accumulate: Accumulate = "auto") -> Array:
        """:func:`bin_sums` of ``values`` (one frame or ``(..., *shape)``), float64
        ``(..., n_bins)``; exact for integer values whatever the path."""
        fast = self._fast(values, accumulate)
        if fast is not None:
            return fast[0]
        return _bin_sums(get_backend(), self.labels, _as_array(values), self.n_bins, accumulate)

    def means(self, values: Any, *, accumulate: Accumulate = "auto") -> Array:
        """:func:`bin_means` of ``values``: sums over ``num_pts``, NaN for an empty bin."""
        fast = self._fast(values, accumulate)
        if fast is not None:
            return fast[1]
        b = get_backend()
        return _divide(b, _bin_sums(b, self.labels, _as_array(values), self.n_bins, accumulate), self.num_pts)


def prepare_bins(labels: Any, n_bins: int) -> BinMap:
    """Check ``labels`` (integers in ``0..n_bins``, 0 = excluded; any shape) once, count
    its bins and prepare the per-frame sums (eager; a partition's ``roi_map`` and
    ``num_labels`` are what to pass). Raises ValueError/TypeError naming what to fix."""
    n_bins = _positive_int(n_bins, "n_bins")
    b = get_backend()
    labels = _check_labels(b.asarray(place_on_device(labels)))
    _check_label_range(int(b.min(labels)), int(b.max(labels)), n_bins)
    flat = b.ravel(labels)
    if np.dtype(flat.dtype) != np.dtype(np.int64):
        flat = b.astype(flat, np.int64)
    num_pts = b.bincount(flat, length=n_bins + 1)[1:]
    num_pts = b.astype(num_pts, np.int64)
    index = None
    copies = _COPIES if _COPIES * (n_bins + 1) <= _MAX_COPIED_BINS else 1
    if b.supports_jit:
        lane = b.astype(b.arange(flat.shape[0]) % copies, np.int64) * (n_bins + 1)
        # the narrowest unsigned type that holds every index: less to read per pixel
        narrow = np.uint16 if copies * (n_bins + 1) <= 1 << 16 else np.uint32
        index = b.astype(flat + lane, narrow)
    return BinMap(labels, n_bins, num_pts, int(b.max(num_pts)), index, copies)
