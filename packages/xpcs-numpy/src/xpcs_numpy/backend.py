"""The NumPy backend: eager, deterministic, no compilation and no gradients."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Literal, NoReturn

import numpy as np

from xpcs_numpy import control_flow
from xpcs_protocol import Array, ArrayLike, Axis, DTypeLike, Key, PyTree, Shape

__all__ = ["NumPyBackend", "default_fill_value"]

_GRAD_MESSAGE = (
    "Gradients need the JAX backend, and the NumPy backend is active. Install JAX "
    "(pip install 'xpcs-device[jax]') and select it with xpcs_device.set_backend('jax') "
    "or the environment variable XPCS_USE_JAX=1. Check backend.supports_grad first."
)


def default_fill_value(dtype: Any) -> Any:
    """Fill value ``take`` uses for out-of-bounds indices: NaN for inexact dtypes, the most
    negative value for signed integers, the largest for unsigned, True for bool."""
    dt = np.dtype(dtype)
    if dt.kind in "fc":
        return np.nan
    if dt.kind == "i":
        return np.iinfo(dt).min
    if dt.kind == "u":
        return np.iinfo(dt).max
    if dt.kind == "b":
        return True
    raise TypeError(f"take has no default fill value for dtype {dt}; pass fill_value")


def _float_default(dtype: DTypeLike) -> Any:
    return np.float64 if dtype is None else dtype


def _index_tuple(indices: Any) -> tuple[np.ndarray[Any, Any], ...]:
    if not isinstance(indices, tuple):
        indices = (indices,)
    return tuple(np.broadcast_arrays(*(np.asarray(i) for i in indices)))


def _in_bounds(idx: np.ndarray[Any, Any], n: int) -> np.ndarray[Any, Any]:
    return np.asarray((idx >= -n) & (idx < n))


class NumPyBackend:
    """:class:`~xpcs_protocol.BackendProtocol` on NumPy.

    ``jit`` returns the function unchanged; ``vmap`` and the ``jax.lax``-style loops run
    as Python loops with JAX's semantics; ``grad`` raises ``NotImplementedError``.
    """

    __slots__ = ()

    def __repr__(self) -> str:
        return f"NumPyBackend(numpy {np.__version__})"

    # ----------------------------------------------------------------- capabilities
    @property
    def name(self) -> str:
        return "numpy"

    @property
    def supports_jit(self) -> bool:
        return False

    @property
    def supports_grad(self) -> bool:
        return False

    @property
    def supports_gpu(self) -> bool:
        return False

    # --------------------------------------------------------------- array creation
    def array(self, obj: ArrayLike, dtype: DTypeLike = None) -> Array:
        return np.array(obj, dtype=dtype, copy=True)

    def asarray(self, obj: ArrayLike, dtype: DTypeLike = None) -> Array:
        return np.asarray(obj, dtype=dtype)

    def zeros(self, shape: Shape, dtype: DTypeLike = None) -> Array:
        return np.zeros(shape, dtype=_float_default(dtype))

    def ones(self, shape: Shape, dtype: DTypeLike = None) -> Array:
        return np.ones(shape, dtype=_float_default(dtype))

    def full(self, shape: Shape, fill_value: ArrayLike, dtype: DTypeLike = None) -> Array:
        return np.full(shape, fill_value, dtype=dtype)

    def zeros_like(self, x: ArrayLike, dtype: DTypeLike = None) -> Array:
        return np.zeros_like(x, dtype=dtype)

    def ones_like(self, x: ArrayLike, dtype: DTypeLike = None) -> Array:
        return np.ones_like(x, dtype=dtype)

    def full_like(self, x: ArrayLike, fill_value: ArrayLike, dtype: DTypeLike = None) -> Array:
        return np.full_like(x, fill_value, dtype=dtype)

    def arange(
        self,
        start: float,
        stop: float | None = None,
        step: float | None = None,
        dtype: DTypeLike = None,
    ) -> Array:
        if stop is None:
            start, stop = 0, start
        return np.arange(start, stop, 1 if step is None else step, dtype=dtype)

    def linspace(
        self, start: float, stop: float, num: int = 50, endpoint: bool = True, dtype: DTypeLike = None
    ) -> Array:
        return np.linspace(start, stop, num, endpoint=endpoint, dtype=dtype)

    def logspace(
        self,
        start: float,
        stop: float,
        num: int = 50,
        endpoint: bool = True,
        base: float = 10.0,
        dtype: DTypeLike = None,
    ) -> Array:
        return np.logspace(start, stop, num, endpoint=endpoint, base=base, dtype=dtype)

    def eye(self, n: int, m: int | None = None, dtype: DTypeLike = None) -> Array:
        return np.eye(n, m, dtype=_float_default(dtype))

    def meshgrid(self, *xi: ArrayLike, indexing: Literal["xy", "ij"] = "xy") -> tuple[Array, ...]:
        return tuple(np.meshgrid(*(np.asarray(x) for x in xi), indexing=indexing))

    def copy(self, x: ArrayLike) -> Array:
        return np.array(x, copy=True)

    # ----------------------------------------------------------------- trigonometry
    def sin(self, x: ArrayLike) -> Array:
        return np.sin(x)

    def cos(self, x: ArrayLike) -> Array:
        return np.cos(x)

    def tan(self, x: ArrayLike) -> Array:
        return np.tan(x)

    def arcsin(self, x: ArrayLike) -> Array:
        return np.arcsin(x)

    def arccos(self, x: ArrayLike) -> Array:
        return np.arccos(x)

    def arctan(self, x: ArrayLike) -> Array:
        return np.arctan(x)

    def arctan2(self, y: ArrayLike, x: ArrayLike) -> Array:
        return np.arctan2(y, x)

    def sinh(self, x: ArrayLike) -> Array:
        return np.sinh(x)

    def cosh(self, x: ArrayLike) -> Array:
        return np.cosh(x)

    def tanh(self, x: ArrayLike) -> Array:
        return np.tanh(x)

    def hypot(self, x: ArrayLike, y: ArrayLike) -> Array:
        return np.hypot(x, y)

    def deg2rad(self, x: ArrayLike) -> Array:
        return np.deg2rad(x)

    def rad2deg(self, x: ArrayLike) -> Array:
        return np.rad2deg(x)

    # ------------------------------------------------------------------------- math
    def exp(self, x: ArrayLike) -> Array:
        return np.exp(x)

    def expm1(self, x: ArrayLike) -> Array:
        return np.expm1(x)

    def log(self, x: ArrayLike) -> Array:
        return np.log(x)

    def log1p(self, x: ArrayLike) -> Array:
        return np.log1p(x)

    def log10(self, x: ArrayLike) -> Array:
        return np.log10(x)

    def sqrt(self, x: ArrayLike) -> Array:
        return np.sqrt(x)

    def square(self, x: ArrayLike) -> Array:
        return np.square(x)

    def abs(self, x: ArrayLike) -> Array:
        return np.abs(x)

    def sign(self, x: ArrayLike) -> Array:
        return np.sign(x)

    def power(self, x: ArrayLike, y: ArrayLike) -> Array:
        return np.power(x, y)

    def floor(self, x: ArrayLike) -> Array:
        return np.floor(x)

    def ceil(self, x: ArrayLike) -> Array:
        return np.ceil(x)

    def round(self, x: ArrayLike, decimals: int = 0) -> Array:
        return np.round(x, decimals)

    def clip(self, x: ArrayLike, a_min: ArrayLike | None, a_max: ArrayLike | None) -> Array:
        return np.clip(x, a_min, a_max)

    def maximum(self, x: ArrayLike, y: ArrayLike) -> Array:
        return np.maximum(x, y)

    def minimum(self, x: ArrayLike, y: ArrayLike) -> Array:
        return np.minimum(x, y)

    def mod(self, x: ArrayLike, y: ArrayLike) -> Array:
        return np.mod(x, y)

    def diff(self, x: ArrayLike, n: int = 1, axis: int = -1) -> Array:
        return np.diff(x, n=n, axis=axis)

    # ------------------------------------------------------------------- statistics
    def sum(self, x: ArrayLike, axis: Axis = None, keepdims: bool = False) -> Array:
        return np.sum(x, axis=axis, keepdims=keepdims)

    def prod(self, x: ArrayLike, axis: Axis = None, keepdims: bool = False) -> Array:
        return np.prod(x, axis=axis, keepdims=keepdims)

    def mean(self, x: ArrayLike, axis: Axis = None, keepdims: bool = False) -> Array:
        return np.mean(x, axis=axis, keepdims=keepdims)

    def std(self, x: ArrayLike, axis: Axis = None, ddof: int = 0, keepdims: bool = False) -> Array:
        return np.std(x, axis=axis, ddof=ddof, keepdims=keepdims)

    def var(self, x: ArrayLike, axis: Axis = None, ddof: int = 0, keepdims: bool = False) -> Array:
        return np.var(x, axis=axis, ddof=ddof, keepdims=keepdims)

    def min(self, x: ArrayLike, axis: Axis = None, keepdims: bool = False) -> Array:
        return np.min(x, axis=axis, keepdims=keepdims)

    def max(self, x: ArrayLike, axis: Axis = None, keepdims: bool = False) -> Array:
        return np.max(x, axis=axis, keepdims=keepdims)

    def median(self, x: ArrayLike, axis: Axis = None, keepdims: bool = False) -> Array:
        return np.median(x, axis=axis, keepdims=keepdims)

    def percentile(self, x: ArrayLike, q: ArrayLike, axis: Axis = None) -> Array:
        return np.percentile(x, q, axis=axis)

    def nansum(self, x: ArrayLike, axis: Axis = None, keepdims: bool = False) -> Array:
        return np.nansum(x, axis=axis, keepdims=keepdims)

    def nanmean(self, x: ArrayLike, axis: Axis = None, keepdims: bool = False) -> Array:
        # An all-NaN slice is NaN by definition here, not a RuntimeWarning.
        with np.errstate(invalid="ignore", divide="ignore"):
            arr = np.asarray(x)
            valid = ~np.isnan(arr)
            total = np.sum(np.where(valid, arr, 0), axis=axis, keepdims=keepdims)
            count = np.sum(valid, axis=axis, keepdims=keepdims)
            return np.asarray(total / count)

    def argmin(self, x: ArrayLike, axis: int | None = None) -> Array:
        return np.argmin(x, axis=axis)

    def argmax(self, x: ArrayLike, axis: int | None = None) -> Array:
        return np.argmax(x, axis=axis)

    def cumsum(self, x: ArrayLike, axis: int | None = None) -> Array:
        return np.cumsum(x, axis=axis)

    # --------------------------------------------------------------- linear algebra
    def dot(self, x: ArrayLike, y: ArrayLike) -> Array:
        return np.dot(x, y)

    def matmul(self, x: ArrayLike, y: ArrayLike) -> Array:
        return np.matmul(x, y)

    def einsum(self, subscripts: str, *operands: ArrayLike) -> Array:
        return np.einsum(subscripts, *operands)

    def outer(self, x: ArrayLike, y: ArrayLike) -> Array:
        return np.outer(x, y)

    def solve(self, a: ArrayLike, b: ArrayLike) -> Array:
        return np.linalg.solve(a, b)

    def inv(self, a: ArrayLike) -> Array:
        return np.linalg.inv(a)

    def norm(self, x: ArrayLike, axis: Axis = None, keepdims: bool = False) -> Array:
        return np.linalg.norm(x, axis=axis, keepdims=keepdims)

    # ---------------------------------------------------------------------- binning
    def digitize(self, x: ArrayLike, bins: ArrayLike, right: bool = False) -> Array:
        return np.digitize(x, bins, right=right)

    def bincount(self, x: ArrayLike, weights: ArrayLike | None = None, *, length: int) -> Array:
        idx = np.asarray(x)
        if idx.dtype.kind not in "iub":
            raise TypeError(f"bincount needs integer input, got dtype {idx.dtype}")
        idx = idx.ravel()
        w = None if weights is None else np.asarray(weights)
        if w is None:
            w_flat = None
        elif w.shape == np.shape(x):  # np.bincount reads a broadcast view slower than the array
            w_flat = w.ravel()
        else:
            w_flat = np.broadcast_to(w, np.shape(x)).ravel()
        out_dtype = None if w is None else (np.dtype(np.float64) if w.dtype.kind in "iub" else w.dtype)
        # Fast path for the usual case, every label in [0, length): no mask and no copies.
        # np.bincount itself refuses negative labels; only the upper bound needs a pass.
        if idx.size == 0 or int(idx.max()) < length:
            try:
                return self._bincount(idx, w_flat, length, out_dtype)
            except ValueError:  # negative labels: drop them below
                pass
        keep = (idx >= 0) & (idx < length)
        return self._bincount(idx[keep], None if w_flat is None else w_flat[keep], length, out_dtype)

    @staticmethod
    def _bincount(idx: Any, w_flat: Any, length: int, out_dtype: Any) -> Array:
        if w_flat is None:
            return np.bincount(idx, minlength=length).astype(np.int64, copy=False)
        if np.dtype(out_dtype).kind == "c":
            real = np.bincount(idx, w_flat.real, minlength=length)
            imag = np.bincount(idx, w_flat.imag, minlength=length)
            return (real + 1j * imag).astype(out_dtype)
        return np.bincount(idx, w_flat, minlength=length).astype(out_dtype, copy=False)

    def histogram(
        self,
        x: ArrayLike,
        bins: int | ArrayLike = 10,
        range: tuple[float, float] | None = None,
        weights: ArrayLike | None = None,
    ) -> tuple[Array, Array]:
        counts, edges = np.histogram(x, bins=bins, range=range, weights=weights)
        if weights is None:
            counts = counts.astype(np.int64)
        return counts, edges

    def unique(self, x: ArrayLike, *, size: int | None = None, fill_value: ArrayLike | None = None) -> Array:
        values = np.unique(np.asarray(x).ravel())
        if size is None:
            return values
        if fill_value is None:
            raise ValueError(
                "unique(size=...) needs an explicit fill_value for the padding, one that "
                "cannot be mistaken for data"
            )
        if values.size >= size:
            return values[:size]
        return np.concatenate([values, np.full(size - values.size, fill_value, dtype=values.dtype)])

    def searchsorted(self, a: ArrayLike, v: ArrayLike, side: Literal["left", "right"] = "left") -> Array:
        return np.searchsorted(a, v, side=side)

    # -------------------------------------------------------------- boolean/masking
    def where(self, condition: ArrayLike, x: ArrayLike, y: ArrayLike) -> Array:
        return np.where(condition, x, y)

    def nonzero(self, x: ArrayLike, *, size: int | None = None) -> tuple[Array, ...]:
        arr = np.asarray(x)
        if arr.ndim == 0:
            raise ValueError("nonzero needs an array of at least one dimension; use x.reshape(1)")
        found = np.nonzero(arr)
        if size is None:
            return tuple(found)
        out = []
        for axis_len, idx in zip(arr.shape, found, strict=True):
            if idx.size >= size:
                out.append(idx[:size])
            else:
                out.append(np.concatenate([idx, np.full(size - idx.size, axis_len, dtype=idx.dtype)]))
        return tuple(out)

    def count_nonzero(self, x: ArrayLike, axis: Axis = None) -> Array:
        return np.asarray(np.count_nonzero(x, axis=axis))

    def isnan(self, x: ArrayLike) -> Array:
        return np.isnan(x)

    def isinf(self, x: ArrayLike) -> Array:
        return np.isinf(x)

    def isfinite(self, x: ArrayLike) -> Array:
        return np.isfinite(x)

    def logical_and(self, x: ArrayLike, y: ArrayLike) -> Array:
        return np.logical_and(x, y)

    def logical_or(self, x: ArrayLike, y: ArrayLike) -> Array:
        return np.logical_or(x, y)

    def logical_not(self, x: ArrayLike) -> Array:
        return np.logical_not(x)

    def any(self, x: ArrayLike, axis: Axis = None, keepdims: bool = False) -> Array:
        return np.any(x, axis=axis, keepdims=keepdims)

    def all(self, x: ArrayLike, axis: Axis = None, keepdims: bool = False) -> Array:
        return np.all(x, axis=axis, keepdims=keepdims)

    # ----------------------------------------------------------------- manipulation
    def reshape(self, x: ArrayLike, shape: Shape) -> Array:
        return np.reshape(x, shape)

    def transpose(self, x: ArrayLike, axes: Sequence[int] | None = None) -> Array:
        return np.transpose(x, axes)

    def moveaxis(self, x: ArrayLike, source: int | Sequence[int], destination: int | Sequence[int]) -> Array:
        return np.moveaxis(np.asarray(x), source, destination)

    def concatenate(self, arrays: Sequence[ArrayLike], axis: int = 0) -> Array:
        return np.concatenate([np.asarray(a) for a in arrays], axis=axis)

    def stack(self, arrays: Sequence[ArrayLike], axis: int = 0) -> Array:
        return np.stack([np.asarray(a) for a in arrays], axis=axis)

    def squeeze(self, x: ArrayLike, axis: Axis = None) -> Array:
        return np.squeeze(x, axis=axis)

    def expand_dims(self, x: ArrayLike, axis: int | tuple[int, ...]) -> Array:
        return np.expand_dims(x, axis)

    def ravel(self, x: ArrayLike) -> Array:
        return np.ravel(x)

    def flip(self, x: ArrayLike, axis: Axis = None) -> Array:
        return np.flip(x, axis=axis)

    def roll(self, x: ArrayLike, shift: int | Sequence[int], axis: Axis = None) -> Array:
        return np.roll(x, shift, axis=axis)

    def broadcast_to(self, x: ArrayLike, shape: Shape) -> Array:
        return np.broadcast_to(x, shape)

    def repeat(self, x: ArrayLike, repeats: int, axis: int | None = None) -> Array:
        return np.repeat(x, repeats, axis=axis)

    def tile(self, x: ArrayLike, reps: int | Sequence[int]) -> Array:
        return np.tile(x, reps)

    def pad(self, x: ArrayLike, pad_width: int | Sequence[Any], constant_values: float = 0) -> Array:
        return np.pad(x, pad_width, mode="constant", constant_values=constant_values)

    def sort(self, x: ArrayLike, axis: int = -1) -> Array:
        return np.sort(x, axis=axis)

    def argsort(self, x: ArrayLike, axis: int = -1) -> Array:
        return np.argsort(x, axis=axis, kind="stable")

    def take(
        self,
        x: ArrayLike,
        indices: ArrayLike,
        axis: int | None = None,
        *,
        fill_value: ArrayLike | None = None,
    ) -> Array:
        arr = np.asarray(x)
        if axis is None:
            arr, axis = arr.ravel(), 0
        axis %= max(arr.ndim, 1)
        idx = np.asarray(indices)
        if idx.dtype.kind not in "iu":
            raise TypeError(f"take needs integer indices, got dtype {idx.dtype}")
        valid = _in_bounds(idx, arr.shape[axis])
        out = np.take(arr, np.where(valid, idx, 0), axis=axis)
        fill = default_fill_value(arr.dtype) if fill_value is None else fill_value
        mask = valid.reshape((1,) * axis + idx.shape + (1,) * (arr.ndim - axis - 1))
        return np.where(mask, out, np.asarray(fill).astype(arr.dtype))

    def _scatter(self, x: ArrayLike, indices: Any, values: ArrayLike, add: bool) -> Array:
        out = np.array(x, copy=True)
        idx = _index_tuple(indices)
        if len(idx) > out.ndim:
            raise IndexError(f"{len(idx)} index arrays for an array of rank {out.ndim}")
        valid = np.ones(idx[0].shape, dtype=bool)
        for axis_len, i in zip(out.shape, idx, strict=False):
            if i.dtype.kind not in "iu":
                raise TypeError(f"indices must be integers, got dtype {i.dtype}")
            valid &= _in_bounds(i, axis_len)
        vals = np.broadcast_to(np.asarray(values), idx[0].shape + out.shape[len(idx) :]).astype(out.dtype)
        kept = tuple(i[valid] for i in idx)
        if add:
            np.add.at(out, kept, vals[valid])
        else:
            out[kept] = vals[valid]
        return out

    def index_add(self, x: ArrayLike, indices: ArrayLike | tuple[ArrayLike, ...], values: ArrayLike) -> Array:
        return self._scatter(x, indices, values, add=True)

    def index_set(self, x: ArrayLike, indices: ArrayLike | tuple[ArrayLike, ...], values: ArrayLike) -> Array:
        return self._scatter(x, indices, values, add=False)

    # -------------------------------------------------------------- type conversion
    def to_numpy(self, x: ArrayLike) -> Any:
        return np.asarray(x)

    def from_numpy(self, x: Any) -> Array:
        return np.asarray(x)

    def astype(self, x: ArrayLike, dtype: DTypeLike) -> Array:
        return np.asarray(x).astype(dtype)

    def is_array(self, x: object) -> bool:
        return isinstance(x, np.ndarray | np.generic)

    def block_until_ready(self, x: PyTree) -> PyTree:
        return x

    # ------------------------------------------------------------------------ random
    # A key is two uint32 words, like a raw JAX key. Sampling and splitting draw from
    # distinct SeedSequence branches so a key's samples never reappear as its children.
    @staticmethod
    def _seed_sequence(key: Key, branch: int) -> np.random.SeedSequence:
        words = np.asarray(key)
        if words.shape != (2,) or words.dtype != np.uint32:
            raise ValueError(
                f"expected one random key (uint32, shape (2,)), got dtype {words.dtype} shape "
                f"{words.shape}; make keys with random_key and index split keys one at a time"
            )
        return np.random.SeedSequence(words.tolist(), spawn_key=(branch,))

    def _generator(self, key: Key) -> np.random.Generator:
        return np.random.Generator(np.random.PCG64(self._seed_sequence(key, 0)))

    def random_key(self, seed: int) -> Key:
        if isinstance(seed, bool) or not isinstance(seed, int | np.integer):
            raise TypeError(f"random_key needs an integer seed, got {type(seed).__name__}")
        entropy = int(seed) % (1 << 64)
        return np.random.SeedSequence(entropy).generate_state(2, dtype=np.uint32)

    def random_split(self, key: Key, num: int = 2) -> Key:
        state = self._seed_sequence(key, 1).generate_state(2 * num, dtype=np.uint32)
        return state.reshape(num, 2)

    def random_uniform(
        self, key: Key, shape: Shape = (), dtype: DTypeLike = None, minval: float = 0.0, maxval: float = 1.0
    ) -> Array:
        dt = np.dtype(_float_default(dtype))
        u = self._generator(key).random(shape, dtype=np.float64)
        return np.asarray(minval + (maxval - minval) * u).astype(dt)

    def random_normal(self, key: Key, shape: Shape = (), dtype: DTypeLike = None) -> Array:
        dt = np.dtype(_float_default(dtype))
        return np.asarray(self._generator(key).standard_normal(shape)).astype(dt)

    def random_poisson(self, key: Key, lam: ArrayLike, shape: Shape | None = None) -> Array:
        lam_arr = np.asarray(lam, dtype=np.float64)
        if np.any(lam_arr < 0) or np.any(np.isnan(lam_arr)):
            raise ValueError("random_poisson needs non-negative, non-NaN rates")
        return np.asarray(self._generator(key).poisson(lam_arr, size=shape)).astype(np.int64)

    # ------------------------------------------------------ functional transformations
    def jit(
        self, fun: Callable[..., Any], *, static_argnums: int | Sequence[int] | None = None
    ) -> Callable[..., Any]:
        return fun

    def grad(self, fun: Callable[..., Any], argnums: int | Sequence[int] = 0) -> NoReturn:
        raise NotImplementedError(_GRAD_MESSAGE)

    def value_and_grad(self, fun: Callable[..., Any], argnums: int | Sequence[int] = 0) -> NoReturn:
        raise NotImplementedError(_GRAD_MESSAGE)

    def vmap(
        self, fun: Callable[..., Any], in_axes: int | Sequence[Any] | None = 0, out_axes: Any = 0
    ) -> Callable[..., Any]:
        return control_flow.vmap(fun, in_axes, out_axes)

    def scan(
        self,
        f: Callable[[PyTree, PyTree], tuple[PyTree, PyTree]],
        init: PyTree,
        xs: PyTree = None,
        length: int | None = None,
        reverse: bool = False,
    ) -> tuple[PyTree, PyTree]:
        return control_flow.scan(f, init, xs, length, reverse)

    def fori_loop(
        self, lower: int, upper: int, body_fun: Callable[[Any, PyTree], PyTree], init_val: PyTree
    ) -> PyTree:
        return control_flow.fori_loop(lower, upper, body_fun, init_val)

    def cond(
        self, pred: ArrayLike, true_fun: Callable[..., Any], false_fun: Callable[..., Any], *operands: Any
    ) -> Any:
        return control_flow.cond(pred, true_fun, false_fun, *operands)

    def while_loop(
        self, cond_fun: Callable[[PyTree], Any], body_fun: Callable[[PyTree], PyTree], init_val: PyTree
    ) -> PyTree:
        return control_flow.while_loop(cond_fun, body_fun, init_val)


if TYPE_CHECKING:
    from xpcs_protocol import BackendProtocol

    # Static conformance: strict mypy checks every member's signature against the protocol.
    _conforms: BackendProtocol = NumPyBackend()
