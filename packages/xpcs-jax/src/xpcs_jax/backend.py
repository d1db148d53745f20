"""The JAX backend: jax.numpy and jax.lax, compiled with ``jit``, differentiable.

JAX is imported when a :class:`JAXBackend` is constructed, never when this module is
imported; construction first applies :func:`~xpcs_jax.config.configure_jax`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from xpcs_jax.config import configure_jax
from xpcs_protocol import Array, ArrayLike, Axis, DTypeLike, Key, PyTree, Shape

__all__ = ["JAXBackend"]


def _float_default(dtype: DTypeLike) -> Any:
    return np.float64 if dtype is None else dtype


def _weights_dtype(dtype: Any) -> Any:
    # Same rule as the NumPy backend: integer or bool weights (photon counts) sum in float64,
    # exact up to 2**53, where float32 would round above 2**24.
    dt = np.dtype(dtype)
    return np.dtype(np.float64) if dt.kind in "iub" else dt


class JAXBackend:
    """:class:`~xpcs_protocol.BackendProtocol` on JAX (float64 enabled).

    ``memory_fraction`` (0 < f <= 1) is the share of GPU memory JAX may preallocate and
    ``cpu_only`` keeps JAX off GPUs; both only take effect if given before JAX creates its
    client (see ``configure_jax``).
    """

    __slots__ = ("_jax", "_jnp", "_lax")

    def __init__(self, *, memory_fraction: float | None = None, cpu_only: bool = False) -> None:
        configure_jax(memory_fraction, cpu_only)
        import jax
        import jax.numpy as jnp

        self._jax: Any = jax
        self._jnp: Any = jnp
        self._lax: Any = jax.lax

    def __repr__(self) -> str:
        return f"JAXBackend(jax {self._jax.__version__})"

    # ----------------------------------------------------------------- capabilities
    @property
    def name(self) -> str:
        return "jax"

    @property
    def supports_jit(self) -> bool:
        return True

    @property
    def supports_grad(self) -> bool:
        return True

    @property
    def supports_gpu(self) -> bool:
        return True

    # --------------------------------------------------------------- array creation
    def array(self, obj: ArrayLike, dtype: DTypeLike = None) -> Array:
        return self._jnp.array(obj, dtype=dtype, copy=True)

    def asarray(self, obj: ArrayLike, dtype: DTypeLike = None) -> Array:
        return self._jnp.asarray(obj, dtype=dtype)

    def zeros(self, shape: Shape, dtype: DTypeLike = None) -> Array:
        return self._jnp.zeros(shape, dtype=_float_default(dtype))

    def ones(self, shape: Shape, dtype: DTypeLike = None) -> Array:
        return self._jnp.ones(shape, dtype=_float_default(dtype))

    def full(self, shape: Shape, fill_value: ArrayLike, dtype: DTypeLike = None) -> Array:
        return self._jnp.full(shape, fill_value, dtype=dtype)

    def zeros_like(self, x: ArrayLike, dtype: DTypeLike = None) -> Array:
        return self._jnp.zeros_like(x, dtype=dtype)

    def ones_like(self, x: ArrayLike, dtype: DTypeLike = None) -> Array:
        return self._jnp.ones_like(x, dtype=dtype)

    def full_like(self, x: ArrayLike, fill_value: ArrayLike, dtype: DTypeLike = None) -> Array:
        return self._jnp.full_like(x, fill_value, dtype=dtype)

    def arange(
        self,
        start: float,
        stop: float | None = None,
        step: float | None = None,
        dtype: DTypeLike = None,
    ) -> Array:
        if stop is None:
            start, stop = 0, start
        return self._jnp.arange(start, stop, 1 if step is None else step, dtype=dtype)

    def linspace(
        self, start: float, stop: float, num: int = 50, endpoint: bool = True, dtype: DTypeLike = None
    ) -> Array:
        return self._jnp.linspace(start, stop, num, endpoint=endpoint, dtype=dtype)

    def logspace(
        self,
        start: float,
        stop: float,
        num: int = 50,
        endpoint: bool = True,
        base: float = 10.0,
        dtype: DTypeLike = None,
    ) -> Array:
        return self._jnp.logspace(start, stop, num, endpoint=endpoint, base=base, dtype=dtype)

    def eye(self, n: int, m: int | None = None, dtype: DTypeLike = None) -> Array:
        return self._jnp.eye(n, m, dtype=_float_default(dtype))

    def meshgrid(self, *xi: ArrayLike, indexing: Literal["xy", "ij"] = "xy") -> tuple[Array, ...]:
        return tuple(self._jnp.meshgrid(*xi, indexing=indexing))

    def copy(self, x: ArrayLike) -> Array:
        return self._jnp.array(x, copy=True)

    # ----------------------------------------------------------------- trigonometry
    def sin(self, x: ArrayLike) -> Array:
        return self._jnp.sin(x)

    def cos(self, x: ArrayLike) -> Array:
        return self._jnp.cos(x)

    def tan(self, x: ArrayLike) -> Array:
        return self._jnp.tan(x)

    def arcsin(self, x: ArrayLike) -> Array:
        return self._jnp.arcsin(x)

    def arccos(self, x: ArrayLike) -> Array:
        return self._jnp.arccos(x)

    def arctan(self, x: ArrayLike) -> Array:
        return self._jnp.arctan(x)

    def arctan2(self, y: ArrayLike, x: ArrayLike) -> Array:
        return self._jnp.arctan2(y, x)

    def sinh(self, x: ArrayLike) -> Array:
        return self._jnp.sinh(x)

    def cosh(self, x: ArrayLike) -> Array:
        return self._jnp.cosh(x)

    def tanh(self, x: ArrayLike) -> Array:
        return self._jnp.tanh(x)

    def hypot(self, x: ArrayLike, y: ArrayLike) -> Array:
        return self._jnp.hypot(x, y)

    def deg2rad(self, x: ArrayLike) -> Array:
        return self._jnp.deg2rad(x)

    def rad2deg(self, x: ArrayLike) -> Array:
        return self._jnp.rad2deg(x)

    # ------------------------------------------------------------------------- math
    def exp(self, x: ArrayLike) -> Array:
        return self._jnp.exp(x)

    def expm1(self, x: ArrayLike) -> Array:
        return self._jnp.expm1(x)

    def log(self, x: ArrayLike) -> Array:
        return self._jnp.log(x)

    def log1p(self, x: ArrayLike) -> Array:
        return self._jnp.log1p(x)

    def log10(self, x: ArrayLike) -> Array:
        return self._jnp.log10(x)

    def sqrt(self, x: ArrayLike) -> Array:
        return self._jnp.sqrt(x)

    def square(self, x: ArrayLike) -> Array:
        return self._jnp.square(x)

    def abs(self, x: ArrayLike) -> Array:
        return self._jnp.abs(x)

    def sign(self, x: ArrayLike) -> Array:
        return self._jnp.sign(x)

    def power(self, x: ArrayLike, y: ArrayLike) -> Array:
        return self._jnp.power(x, y)

    def floor(self, x: ArrayLike) -> Array:
        return self._jnp.floor(x)

    def ceil(self, x: ArrayLike) -> Array:
        return self._jnp.ceil(x)

    def round(self, x: ArrayLike, decimals: int = 0) -> Array:
        return self._jnp.round(x, decimals)

    def clip(self, x: ArrayLike, a_min: ArrayLike | None, a_max: ArrayLike | None) -> Array:
        return self._jnp.clip(x, a_min, a_max)

    def maximum(self, x: ArrayLike, y: ArrayLike) -> Array:
        return self._jnp.maximum(x, y)

    def minimum(self, x: ArrayLike, y: ArrayLike) -> Array:
        return self._jnp.minimum(x, y)

    def mod(self, x: ArrayLike, y: ArrayLike) -> Array:
        return self._jnp.mod(x, y)

    def diff(self, x: ArrayLike, n: int = 1, axis: int = -1) -> Array:
        return self._jnp.diff(x, n=n, axis=axis)

    # ------------------------------------------------------------------- statistics
    def sum(self, x: ArrayLike, axis: Axis = None, keepdims: bool = False) -> Array:
        return self._jnp.sum(x, axis=axis, keepdims=keepdims)

    def prod(self, x: ArrayLike, axis: Axis = None, keepdims: bool = False) -> Array:
        return self._jnp.prod(x, axis=axis, keepdims=keepdims)

    def mean(self, x: ArrayLike, axis: Axis = None, keepdims: bool = False) -> Array:
        return self._jnp.mean(x, axis=axis, keepdims=keepdims)

    def std(self, x: ArrayLike, axis: Axis = None, ddof: int = 0, keepdims: bool = False) -> Array:
        return self._jnp.std(x, axis=axis, ddof=ddof, keepdims=keepdims)

    def var(self, x: ArrayLike, axis: Axis = None, ddof: int = 0, keepdims: bool = False) -> Array:
        return self._jnp.var(x, axis=axis, ddof=ddof, keepdims=keepdims)

    def min(self, x: ArrayLike, axis: Axis = None, keepdims: bool = False) -> Array:
        return self._jnp.min(x, axis=axis, keepdims=keepdims)

    def max(self, x: ArrayLike, axis: Axis = None, keepdims: bool = False) -> Array:
        return self._jnp.max(x, axis=axis, keepdims=keepdims)

    def median(self, x: ArrayLike, axis: Axis = None, keepdims: bool = False) -> Array:
        return self._jnp.median(x, axis=axis, keepdims=keepdims)

    def percentile(self, x: ArrayLike, q: ArrayLike, axis: Axis = None) -> Array:
        return self._jnp.percentile(x, q, axis=axis)

    def nansum(self, x: ArrayLike, axis: Axis = None, keepdims: bool = False) -> Array:
        return self._jnp.nansum(x, axis=axis, keepdims=keepdims)

    def nanmean(self, x: ArrayLike, axis: Axis = None, keepdims: bool = False) -> Array:
        return self._jnp.nanmean(x, axis=axis, keepdims=keepdims)

    def argmin(self, x: ArrayLike, axis: int | None = None) -> Array:
        return self._jnp.argmin(x, axis=axis)

    def argmax(self, x: ArrayLike, axis: int | None = None) -> Array:
        return self._jnp.argmax(x, axis=axis)

    def cumsum(self, x: ArrayLike, axis: int | None = None) -> Array:
        return self._jnp.cumsum(x, axis=axis)

    # --------------------------------------------------------------- linear algebra
    def dot(self, x: ArrayLike, y: ArrayLike) -> Array:
        return self._jnp.dot(x, y)

    def matmul(self, x: ArrayLike, y: ArrayLike) -> Array:
        return self._jnp.matmul(x, y)

    def einsum(self, subscripts: str, *operands: ArrayLike) -> Array:
        return self._jnp.einsum(subscripts, *operands)

    def outer(self, x: ArrayLike, y: ArrayLike) -> Array:
        return self._jnp.outer(x, y)

    def solve(self, a: ArrayLike, b: ArrayLike) -> Array:
        return self._jnp.linalg.solve(a, b)

    def inv(self, a: ArrayLike) -> Array:
        return self._jnp.linalg.inv(a)

    def norm(self, x: ArrayLike, axis: Axis = None, keepdims: bool = False) -> Array:
        return self._jnp.linalg.norm(x, axis=axis, keepdims=keepdims)

    # ---------------------------------------------------------------------- binning
    def digitize(self, x: ArrayLike, bins: ArrayLike, right: bool = False) -> Array:
        return self._jnp.digitize(x, bins, right=right).astype(self._jnp.int64)

    def bincount(self, x: ArrayLike, weights: ArrayLike | None = None, *, length: int) -> Array:
        jnp = self._jnp
        idx = jnp.asarray(x)
        if idx.dtype.kind not in "iub":
            raise TypeError(f"bincount needs integer input, got dtype {idx.dtype}")
        flat = idx.ravel()
        # jnp.bincount clips negative values into bin 0; send them out of range instead.
        safe = jnp.where((flat >= 0) & (flat < length), flat, length)
        if weights is None:
            return jnp.zeros(length, dtype=jnp.int64).at[safe].add(1, mode="drop")
        w = jnp.asarray(weights)
        dtype = _weights_dtype(w.dtype)
        w_flat = jnp.broadcast_to(w, idx.shape).ravel().astype(dtype)
        return jnp.zeros(length, dtype=dtype).at[safe].add(w_flat, mode="drop")

    def histogram(
        self,
        x: ArrayLike,
        bins: int | ArrayLike = 10,
        range: tuple[float, float] | None = None,
        weights: ArrayLike | None = None,
    ) -> tuple[Array, Array]:
        jnp = self._jnp
        counts, edges = jnp.histogram(x, bins=bins, range=range, weights=weights)
        dtype = jnp.int64 if weights is None else jnp.asarray(weights).dtype
        return counts.astype(dtype), edges

    def unique(self, x: ArrayLike, *, size: int | None = None, fill_value: ArrayLike | None = None) -> Array:
        if size is not None and fill_value is None:
            raise ValueError(
                "unique(size=...) needs an explicit fill_value for the padding, one that "
                "cannot be mistaken for data"
            )
        return self._jnp.unique(self._jnp.ravel(x), size=size, fill_value=fill_value)

    def searchsorted(self, a: ArrayLike, v: ArrayLike, side: Literal["left", "right"] = "left") -> Array:
        return self._jnp.searchsorted(a, v, side=side).astype(self._jnp.int64)

    # -------------------------------------------------------------- boolean/masking
    def where(self, condition: ArrayLike, x: ArrayLike, y: ArrayLike) -> Array:
        return self._jnp.where(condition, x, y)

    def nonzero(self, x: ArrayLike, *, size: int | None = None) -> tuple[Array, ...]:
        arr = self._jnp.asarray(x)
        if arr.ndim == 0:
            raise ValueError("nonzero needs an array of at least one dimension; use x.reshape(1)")
        if size is None:
            return tuple(self._jnp.nonzero(arr))
        return tuple(self._jnp.nonzero(arr, size=size, fill_value=tuple(arr.shape)))

    def count_nonzero(self, x: ArrayLike, axis: Axis = None) -> Array:
        return self._jnp.count_nonzero(x, axis=axis)

    def isnan(self, x: ArrayLike) -> Array:
        return self._jnp.isnan(x)

    def isinf(self, x: ArrayLike) -> Array:
        return self._jnp.isinf(x)

    def isfinite(self, x: ArrayLike) -> Array:
        return self._jnp.isfinite(x)

    def logical_and(self, x: ArrayLike, y: ArrayLike) -> Array:
        return self._jnp.logical_and(x, y)

    def logical_or(self, x: ArrayLike, y: ArrayLike) -> Array:
        return self._jnp.logical_or(x, y)

    def logical_not(self, x: ArrayLike) -> Array:
        return self._jnp.logical_not(x)

    def any(self, x: ArrayLike, axis: Axis = None, keepdims: bool = False) -> Array:
        return self._jnp.any(x, axis=axis, keepdims=keepdims)

    def all(self, x: ArrayLike, axis: Axis = None, keepdims: bool = False) -> Array:
        return self._jnp.all(x, axis=axis, keepdims=keepdims)

    # ----------------------------------------------------------------- manipulation
    def reshape(self, x: ArrayLike, shape: Shape) -> Array:
        return self._jnp.reshape(x, shape)

    def transpose(self, x: ArrayLike, axes: Sequence[int] | None = None) -> Array:
        return self._jnp.transpose(x, axes)

    def moveaxis(self, x: ArrayLike, source: int | Sequence[int], destination: int | Sequence[int]) -> Array:
        return self._jnp.moveaxis(x, source, destination)

    def concatenate(self, arrays: Sequence[ArrayLike], axis: int = 0) -> Array:
        return self._jnp.concatenate(list(arrays), axis=axis)

    def stack(self, arrays: Sequence[ArrayLike], axis: int = 0) -> Array:
        return self._jnp.stack(list(arrays), axis=axis)

    def squeeze(self, x: ArrayLike, axis: Axis = None) -> Array:
        return self._jnp.squeeze(x, axis=axis)

    def expand_dims(self, x: ArrayLike, axis: int | tuple[int, ...]) -> Array:
        return self._jnp.expand_dims(x, axis)

    def ravel(self, x: ArrayLike) -> Array:
        return self._jnp.ravel(x)

    def flip(self, x: ArrayLike, axis: Axis = None) -> Array:
        return self._jnp.flip(x, axis=axis)

    def roll(self, x: ArrayLike, shift: int | Sequence[int], axis: Axis = None) -> Array:
        return self._jnp.roll(x, shift, axis=axis)

    def broadcast_to(self, x: ArrayLike, shape: Shape) -> Array:
        return self._jnp.broadcast_to(x, shape)

    def repeat(self, x: ArrayLike, repeats: int, axis: int | None = None) -> Array:
        return self._jnp.repeat(x, repeats, axis=axis)

    def tile(self, x: ArrayLike, reps: int | Sequence[int]) -> Array:
        return self._jnp.tile(x, reps)

    def pad(self, x: ArrayLike, pad_width: int | Sequence[Any], constant_values: float = 0) -> Array:
        return self._jnp.pad(x, pad_width, mode="constant", constant_values=constant_values)

    def sort(self, x: ArrayLike, axis: int = -1) -> Array:
        return self._jnp.sort(x, axis=axis)

    def argsort(self, x: ArrayLike, axis: int = -1) -> Array:
        return self._jnp.argsort(x, axis=axis, stable=True)

    def take(
        self,
        x: ArrayLike,
        indices: ArrayLike,
        axis: int | None = None,
        *,
        fill_value: ArrayLike | None = None,
    ) -> Array:
        idx = self._jnp.asarray(indices)
        if idx.dtype.kind not in "iu":
            raise TypeError(f"take needs integer indices, got dtype {idx.dtype}")
        return self._jnp.take(x, idx, axis=axis, mode="fill", fill_value=fill_value)

    def _at(self, x: ArrayLike, indices: Any) -> Any:
        index = tuple(indices) if isinstance(indices, tuple) else indices
        for i in index if isinstance(index, tuple) else (index,):
            if self._jnp.asarray(i).dtype.kind not in "iu":
                raise TypeError(f"indices must be integers, got dtype {self._jnp.asarray(i).dtype}")
        return self._jnp.asarray(x).at[index]

    def index_add(self, x: ArrayLike, indices: ArrayLike | tuple[ArrayLike, ...], values: ArrayLike) -> Array:
        return self._at(x, indices).add(values, mode="drop")

    def index_set(self, x: ArrayLike, indices: ArrayLike | tuple[ArrayLike, ...], values: ArrayLike) -> Array:
        return self._at(x, indices).set(values, mode="drop")

    # -------------------------------------------------------------- type conversion
    def to_numpy(self, x: ArrayLike) -> Any:
        return np.asarray(x)

    def from_numpy(self, x: Any) -> Array:
        return self._jnp.asarray(x)

    def astype(self, x: ArrayLike, dtype: DTypeLike) -> Array:
        return self._jnp.asarray(x).astype(dtype)

    def is_array(self, x: object) -> bool:
        return isinstance(x, self._jax.Array)

    def block_until_ready(self, x: PyTree) -> PyTree:
        return self._jax.block_until_ready(x)

    # ------------------------------------------------------------------------ random
    def random_key(self, seed: int) -> Key:
        if isinstance(seed, bool) or not isinstance(seed, int | np.integer):
            raise TypeError(f"random_key needs an integer seed, got {type(seed).__name__}")
        wrapped = int(seed) % (1 << 64)  # any Python int, folded into int64 like NumPy's entropy
        return self._jax.random.PRNGKey(wrapped - (1 << 64) if wrapped >= 1 << 63 else wrapped)

    def random_split(self, key: Key, num: int = 2) -> Key:
        return self._jax.random.split(key, num)

    def random_uniform(
        self, key: Key, shape: Shape = (), dtype: DTypeLike = None, minval: float = 0.0, maxval: float = 1.0
    ) -> Array:
        shape_t = (shape,) if isinstance(shape, int) else tuple(shape)
        return self._jax.random.uniform(key, shape_t, _float_default(dtype), minval, maxval)

    def random_normal(self, key: Key, shape: Shape = (), dtype: DTypeLike = None) -> Array:
        shape_t = (shape,) if isinstance(shape, int) else tuple(shape)
        return self._jax.random.normal(key, shape_t, _float_default(dtype))

    def random_poisson(self, key: Key, lam: ArrayLike, shape: Shape | None = None) -> Array:
        lam_arr = self._jnp.asarray(lam, dtype=np.float64)
        if not isinstance(lam_arr, self._jax.core.Tracer) and bool(
            self._jnp.any((lam_arr < 0) | self._jnp.isnan(lam_arr))
        ):
            raise ValueError("random_poisson needs non-negative, non-NaN rates")
        shape_t = None if shape is None else ((shape,) if isinstance(shape, int) else tuple(shape))
        return self._jax.random.poisson(key, lam_arr, shape_t, dtype=self._jnp.int64)

    # ------------------------------------------------------ functional transformations
    def jit(
        self, fun: Callable[..., Any], *, static_argnums: int | Sequence[int] | None = None
    ) -> Callable[..., Any]:
        jitted: Callable[..., Any] = self._jax.jit(fun, static_argnums=static_argnums)
        return jitted

    def grad(self, fun: Callable[..., Any], argnums: int | Sequence[int] = 0) -> Callable[..., Any]:
        out: Callable[..., Any] = self._jax.grad(fun, argnums=argnums)
        return out

    def value_and_grad(
        self, fun: Callable[..., Any], argnums: int | Sequence[int] = 0
    ) -> Callable[..., tuple[Any, Any]]:
        out: Callable[..., tuple[Any, Any]] = self._jax.value_and_grad(fun, argnums=argnums)
        return out

    def vmap(
        self, fun: Callable[..., Any], in_axes: int | Sequence[Any] | None = 0, out_axes: Any = 0
    ) -> Callable[..., Any]:
        if isinstance(in_axes, list):
            in_axes = tuple(in_axes)
        out: Callable[..., Any] = self._jax.vmap(fun, in_axes=in_axes, out_axes=out_axes)
        return out

    def scan(
        self,
        f: Callable[[PyTree, PyTree], tuple[PyTree, PyTree]],
        init: PyTree,
        xs: PyTree = None,
        length: int | None = None,
        reverse: bool = False,
    ) -> tuple[PyTree, PyTree]:
        out: tuple[PyTree, PyTree] = self._lax.scan(f, init, xs, length=length, reverse=reverse)
        return out

    def fori_loop(
        self, lower: int, upper: int, body_fun: Callable[[Any, PyTree], PyTree], init_val: PyTree
    ) -> PyTree:
        return self._lax.fori_loop(lower, upper, body_fun, init_val)

    def cond(
        self, pred: ArrayLike, true_fun: Callable[..., Any], false_fun: Callable[..., Any], *operands: Any
    ) -> Any:
        return self._lax.cond(pred, true_fun, false_fun, *operands)

    def while_loop(
        self, cond_fun: Callable[[PyTree], Any], body_fun: Callable[[PyTree], PyTree], init_val: PyTree
    ) -> PyTree:
        return self._lax.while_loop(cond_fun, body_fun, init_val)


if TYPE_CHECKING:
    from xpcs_protocol import BackendProtocol

    # Static conformance: strict mypy checks every member's signature against the protocol.
    _conforms: BackendProtocol = JAXBackend()
