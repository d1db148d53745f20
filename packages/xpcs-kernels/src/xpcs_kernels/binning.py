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

Out-of-range labels (negative or above ``n_bins``) are dropped, like label 0. A NumPy
label map is checked and refused with a clear error; a device array (already placed, or
traced under ``jit``) is trusted. Inputs are never modified; the functions run eagerly
or under the backend's ``jit`` (one compiled function per configuration, cached).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from typing import Any, Literal, cast

import numpy as np

from xpcs_device import get_backend
from xpcs_protocol import Array, BackendProtocol

__all__ = ["Accumulate", "bin_means", "bin_sums", "int32_sum_exact"]

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


def bin_sums(labels: Any, values: Any, n_bins: int, *, accumulate: Accumulate = "auto") -> Array:
    """Sums of ``values`` over each bin ``1..n_bins`` of ``labels``, float64 ``(..., n_bins)``.

    ``values`` has shape ``labels.shape`` (one frame) or ``(..., *labels.shape)`` (frames);
    any real dtype. ``accumulate``: ``"auto"``, ``"int32"`` (integer values only) or
    ``"float64"`` (see the module docstring; every choice is exact for integer values).
    """
    n_bins = _positive_int(n_bins, "n_bins")
    if accumulate not in ("auto", "int32", "float64"):
        raise ValueError(f"accumulate must be 'auto', 'int32' or 'float64', got {accumulate!r}")
    labels, values = _as_array(labels), _as_array(values)
    label_dtype, value_dtype = np.dtype(labels.dtype), np.dtype(values.dtype)
    if label_dtype.kind not in "iu":
        raise TypeError(
            f"labels must be an integer label map (1..n_bins, 0 = excluded), got dtype {label_dtype}"
        )
    if value_dtype.kind not in "biuf":
        raise TypeError(f"values must be real numbers (bool, integer or float), got dtype {value_dtype}")
    shape = tuple(int(s) for s in labels.shape)
    n_pixels = math.prod(shape)
    if n_pixels == 0:
        raise ValueError(f"labels has no pixel (shape {shape})")
    lead = tuple(int(s) for s in values.shape[: values.ndim - len(shape)])
    if values.ndim < len(shape) or tuple(int(s) for s in values.shape[len(lead) :]) != shape:
        raise ValueError(
            f"values of shape {tuple(values.shape)} do not end with the label map's shape {shape}; "
            "pass one frame of that shape or a stack (..., *labels.shape)"
        )
    if isinstance(labels, np.ndarray):
        low, high = int(labels.min()), int(labels.max())
        if low < 0 or high > n_bins:
            raise ValueError(
                f"labels must lie in 0..n_bins = 0..{n_bins} (0 = excluded), found values from {low} to "
                f"{high}; pass the partition's number of bins as n_bins"
            )
    return _bin_sums(get_backend(), labels, values, n_bins, accumulate)


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
    counts = b.astype(num_pts, np.float64)
    return b.where(counts > 0, sums / b.maximum(counts, 1.0), float("nan"))
