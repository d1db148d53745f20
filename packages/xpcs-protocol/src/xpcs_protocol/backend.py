"""The interface every computational backend implements.

Semantics are those of NumPy unless a member says otherwise. Where JAX needs a size
at trace time (``bincount``, ``nonzero``, ``unique``) the size is an explicit keyword,
and padding never points at real data: padded indices are out of bounds (one past
the end of their axis), and out-of-bounds indices are dropped by ``index_add`` /
``index_set`` and read as ``fill_value`` by ``take`` on every backend.

Adding a member is a breaking change for every implementer: release it as a new
minor version of ``xpcs-protocol`` (0.x) and raise the lower bounds downstream.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Literal, Protocol, runtime_checkable

from xpcs_protocol.types import Array, ArrayLike, Axis, DTypeLike, Key, PyTree, Shape

__all__ = ["BackendProtocol"]


@runtime_checkable
class BackendProtocol(Protocol):
    """Array operations and functional transformations, implemented once per backend.

    ``isinstance(obj, BackendProtocol)`` only checks that the names exist; each backend
    package also carries a static assignment to this type that strict mypy verifies.
    """

    # ----------------------------------------------------------------- capabilities
    @property
    def name(self) -> str:
        """Registered name of the backend (``"numpy"``, ``"jax"``, ...)."""
        ...

    @property
    def supports_jit(self) -> bool:
        """True when ``jit`` compiles (False: it returns the function unchanged)."""
        ...

    @property
    def supports_grad(self) -> bool:
        """True when ``grad`` / ``value_and_grad`` work (False: they raise)."""
        ...

    @property
    def supports_gpu(self) -> bool:
        """True when the backend can place arrays on a GPU (hardware may still be absent)."""
        ...

    # --------------------------------------------------------------- array creation
    def array(self, obj: ArrayLike, dtype: DTypeLike = None) -> Array:
        """A new array holding a copy of ``obj``."""
        ...

    def asarray(self, obj: ArrayLike, dtype: DTypeLike = None) -> Array:
        """``obj`` as an array of this backend, without a copy where possible."""
        ...

    def zeros(self, shape: Shape, dtype: DTypeLike = None) -> Array:
        """Zeros; float64 unless ``dtype`` says otherwise."""
        ...

    def ones(self, shape: Shape, dtype: DTypeLike = None) -> Array:
        """Ones; float64 unless ``dtype`` says otherwise."""
        ...

    def full(self, shape: Shape, fill_value: ArrayLike, dtype: DTypeLike = None) -> Array:
        """An array of ``fill_value``."""
        ...

    def zeros_like(self, x: ArrayLike, dtype: DTypeLike = None) -> Array:
        """Zeros with the shape (and dtype, unless given) of ``x``."""
        ...

    def ones_like(self, x: ArrayLike, dtype: DTypeLike = None) -> Array:
        """Ones with the shape (and dtype, unless given) of ``x``."""
        ...

    def full_like(self, x: ArrayLike, fill_value: ArrayLike, dtype: DTypeLike = None) -> Array:
        """``fill_value`` with the shape (and dtype, unless given) of ``x``."""
        ...

    def arange(
        self,
        start: float,
        stop: float | None = None,
        step: float | None = None,
        dtype: DTypeLike = None,
    ) -> Array:
        """Evenly spaced values in ``[start, stop)`` (``arange(n)`` is ``0 .. n-1``)."""
        ...

    def linspace(
        self,
        start: float,
        stop: float,
        num: int = 50,
        endpoint: bool = True,
        dtype: DTypeLike = None,
    ) -> Array:
        """``num`` evenly spaced values from ``start`` to ``stop``."""
        ...

    def logspace(
        self,
        start: float,
        stop: float,
        num: int = 50,
        endpoint: bool = True,
        base: float = 10.0,
        dtype: DTypeLike = None,
    ) -> Array:
        """``base ** linspace(start, stop, num)``."""
        ...

    def eye(self, n: int, m: int | None = None, dtype: DTypeLike = None) -> Array:
        """The ``n`` x ``m`` identity matrix."""
        ...

    def meshgrid(self, *xi: ArrayLike, indexing: Literal["xy", "ij"] = "xy") -> tuple[Array, ...]:
        """Coordinate matrices from coordinate vectors."""
        ...

    def copy(self, x: ArrayLike) -> Array:
        """A copy of ``x``."""
        ...

    # ----------------------------------------------------------------- trigonometry
    def sin(self, x: ArrayLike) -> Array:
        """Sine, element-wise (radians)."""
        ...

    def cos(self, x: ArrayLike) -> Array:
        """Cosine, element-wise (radians)."""
        ...

    def tan(self, x: ArrayLike) -> Array:
        """Tangent, element-wise (radians)."""
        ...

    def arcsin(self, x: ArrayLike) -> Array:
        """Inverse sine, element-wise, in radians."""
        ...

    def arccos(self, x: ArrayLike) -> Array:
        """Inverse cosine, element-wise, in radians."""
        ...

    def arctan(self, x: ArrayLike) -> Array:
        """Inverse tangent, element-wise, in radians."""
        ...

    def arctan2(self, y: ArrayLike, x: ArrayLike) -> Array:
        """Angle of the point (x, y) in radians, in (-pi, pi]."""
        ...

    def sinh(self, x: ArrayLike) -> Array:
        """Hyperbolic sine, element-wise."""
        ...

    def cosh(self, x: ArrayLike) -> Array:
        """Hyperbolic cosine, element-wise."""
        ...

    def tanh(self, x: ArrayLike) -> Array:
        """Hyperbolic tangent, element-wise."""
        ...

    def hypot(self, x: ArrayLike, y: ArrayLike) -> Array:
        """``sqrt(x**2 + y**2)`` without intermediate overflow."""
        ...

    def deg2rad(self, x: ArrayLike) -> Array:
        """Degrees to radians."""
        ...

    def rad2deg(self, x: ArrayLike) -> Array:
        """Radians to degrees."""
        ...

    # ------------------------------------------------------------------------- math
    def exp(self, x: ArrayLike) -> Array:
        """Exponential, element-wise."""
        ...

    def expm1(self, x: ArrayLike) -> Array:
        """``exp(x) - 1``, accurate near zero."""
        ...

    def log(self, x: ArrayLike) -> Array:
        """Natural logarithm, element-wise."""
        ...

    def log1p(self, x: ArrayLike) -> Array:
        """``log(1 + x)``, accurate near zero."""
        ...

    def log10(self, x: ArrayLike) -> Array:
        """Base-10 logarithm, element-wise."""
        ...

    def sqrt(self, x: ArrayLike) -> Array:
        """Non-negative square root, element-wise."""
        ...

    def square(self, x: ArrayLike) -> Array:
        """``x * x``, element-wise."""
        ...

    def abs(self, x: ArrayLike) -> Array:
        """Absolute value, element-wise."""
        ...

    def sign(self, x: ArrayLike) -> Array:
        """-1, 0 or +1 by the sign of each element."""
        ...

    def power(self, x: ArrayLike, y: ArrayLike) -> Array:
        """``x ** y``, element-wise."""
        ...

    def floor(self, x: ArrayLike) -> Array:
        """Largest integer not above ``x``, element-wise."""
        ...

    def ceil(self, x: ArrayLike) -> Array:
        """Smallest integer not below ``x``, element-wise."""
        ...

    def round(self, x: ArrayLike, decimals: int = 0) -> Array:
        """Round half to even to ``decimals`` places."""
        ...

    def clip(self, x: ArrayLike, a_min: ArrayLike | None, a_max: ArrayLike | None) -> Array:
        """``x`` limited to ``[a_min, a_max]`` (either bound may be None)."""
        ...

    def maximum(self, x: ArrayLike, y: ArrayLike) -> Array:
        """Element-wise maximum (NaN propagates)."""
        ...

    def minimum(self, x: ArrayLike, y: ArrayLike) -> Array:
        """Element-wise minimum (NaN propagates)."""
        ...

    def mod(self, x: ArrayLike, y: ArrayLike) -> Array:
        """Remainder with the sign of the divisor (Python ``%``)."""
        ...

    def diff(self, x: ArrayLike, n: int = 1, axis: int = -1) -> Array:
        """n-th discrete difference along ``axis``."""
        ...

    # ------------------------------------------------------------------- statistics
    def sum(self, x: ArrayLike, axis: Axis = None, keepdims: bool = False) -> Array:
        """Sum over ``axis``."""
        ...

    def prod(self, x: ArrayLike, axis: Axis = None, keepdims: bool = False) -> Array:
        """Product over ``axis``."""
        ...

    def mean(self, x: ArrayLike, axis: Axis = None, keepdims: bool = False) -> Array:
        """Arithmetic mean over ``axis``."""
        ...

    def std(self, x: ArrayLike, axis: Axis = None, ddof: int = 0, keepdims: bool = False) -> Array:
        """Standard deviation over ``axis`` with ``ddof`` delta degrees of freedom."""
        ...

    def var(self, x: ArrayLike, axis: Axis = None, ddof: int = 0, keepdims: bool = False) -> Array:
        """Variance over ``axis`` with ``ddof`` delta degrees of freedom."""
        ...

    def min(self, x: ArrayLike, axis: Axis = None, keepdims: bool = False) -> Array:
        """Minimum over ``axis`` (NaN propagates)."""
        ...

    def max(self, x: ArrayLike, axis: Axis = None, keepdims: bool = False) -> Array:
        """Maximum over ``axis`` (NaN propagates)."""
        ...

    def median(self, x: ArrayLike, axis: Axis = None, keepdims: bool = False) -> Array:
        """Median over ``axis``."""
        ...

    def percentile(self, x: ArrayLike, q: ArrayLike, axis: Axis = None) -> Array:
        """``q``-th percentiles (0..100, linear interpolation) over ``axis``."""
        ...

    def nansum(self, x: ArrayLike, axis: Axis = None, keepdims: bool = False) -> Array:
        """Sum over ``axis`` treating NaN as zero."""
        ...

    def nanmean(self, x: ArrayLike, axis: Axis = None, keepdims: bool = False) -> Array:
        """Mean over ``axis`` ignoring NaN (NaN where all are NaN)."""
        ...

    def argmin(self, x: ArrayLike, axis: int | None = None) -> Array:
        """Index of the minimum (first occurrence), over the flattened array if axis is None."""
        ...

    def argmax(self, x: ArrayLike, axis: int | None = None) -> Array:
        """Index of the maximum (first occurrence), over the flattened array if axis is None."""
        ...

    def cumsum(self, x: ArrayLike, axis: int | None = None) -> Array:
        """Cumulative sum along ``axis`` (flattened if None)."""
        ...

    # --------------------------------------------------------------- linear algebra
    def dot(self, x: ArrayLike, y: ArrayLike) -> Array:
        """Dot product with NumPy's rules."""
        ...

    def matmul(self, x: ArrayLike, y: ArrayLike) -> Array:
        """Matrix product, broadcasting over leading axes."""
        ...

    def einsum(self, subscripts: str, *operands: ArrayLike) -> Array:
        """Einstein summation."""
        ...

    def outer(self, x: ArrayLike, y: ArrayLike) -> Array:
        """Outer product of two vectors."""
        ...

    def solve(self, a: ArrayLike, b: ArrayLike) -> Array:
        """Solution of ``a @ x = b``, batched over leading axes."""
        ...

    def inv(self, a: ArrayLike) -> Array:
        """Matrix inverse, batched over leading axes."""
        ...

    def norm(self, x: ArrayLike, axis: Axis = None, keepdims: bool = False) -> Array:
        """Euclidean (Frobenius) norm over ``axis``."""
        ...

    # ---------------------------------------------------------------------- binning
    def digitize(self, x: ArrayLike, bins: ArrayLike, right: bool = False) -> Array:
        """Index of the bin of each element, with ``numpy.digitize`` semantics."""
        ...

    def bincount(self, x: ArrayLike, weights: ArrayLike | None = None, *, length: int) -> Array:
        """Counts (or summed weights) of each integer in ``[0, length)``.

        ``length`` is required so the result has a static size. Values outside
        ``[0, length)`` are not counted. Without weights the result is int64 (int32
        where the backend runs in 32-bit mode); with floating weights it has their dtype,
        and integer or bool weights (photon counts) sum in float64, exactly up to 2**53.
        """
        ...

    def histogram(
        self,
        x: ArrayLike,
        bins: int | ArrayLike = 10,
        range: tuple[float, float] | None = None,
        weights: ArrayLike | None = None,
    ) -> tuple[Array, Array]:
        """``(counts, edges)`` with ``numpy.histogram`` semantics.

        Counts are integers without weights and have the weights' dtype with them.
        """
        ...

    def unique(self, x: ArrayLike, *, size: int | None = None, fill_value: ArrayLike | None = None) -> Array:
        """Sorted unique values of the flattened ``x``.

        With ``size`` the result has exactly that length: truncated, or padded with
        ``fill_value``, which is then required (padding with a real value would be
        indistinguishable from data).
        """
        ...

    def searchsorted(self, a: ArrayLike, v: ArrayLike, side: Literal["left", "right"] = "left") -> Array:
        """Indices where ``v`` would be inserted into the sorted ``a``."""
        ...

    # -------------------------------------------------------------- boolean/masking
    def where(self, condition: ArrayLike, x: ArrayLike, y: ArrayLike) -> Array:
        """``x`` where ``condition`` holds, else ``y`` (use ``nonzero`` for indices)."""
        ...

    def nonzero(self, x: ArrayLike, *, size: int | None = None) -> tuple[Array, ...]:
        """Indices of the non-zero elements, one array per axis.

        With ``size`` each array has exactly that length: truncated, or padded with
        the length of its axis, an out-of-bounds index that ``take`` reads as its fill
        value and ``index_add`` / ``index_set`` drop. Use ``count_nonzero`` to know how
        many entries are real.
        """
        ...

    def count_nonzero(self, x: ArrayLike, axis: Axis = None) -> Array:
        """Number of non-zero elements over ``axis``."""
        ...

    def isnan(self, x: ArrayLike) -> Array:
        """True where ``x`` is NaN."""
        ...

    def isinf(self, x: ArrayLike) -> Array:
        """True where ``x`` is +/- infinity."""
        ...

    def isfinite(self, x: ArrayLike) -> Array:
        """True where ``x`` is neither NaN nor infinite."""
        ...

    def logical_and(self, x: ArrayLike, y: ArrayLike) -> Array:
        """Element-wise logical AND."""
        ...

    def logical_or(self, x: ArrayLike, y: ArrayLike) -> Array:
        """Element-wise logical OR."""
        ...

    def logical_not(self, x: ArrayLike) -> Array:
        """Element-wise logical NOT."""
        ...

    def any(self, x: ArrayLike, axis: Axis = None, keepdims: bool = False) -> Array:
        """True where any element over ``axis`` is non-zero."""
        ...

    def all(self, x: ArrayLike, axis: Axis = None, keepdims: bool = False) -> Array:
        """True where every element over ``axis`` is non-zero."""
        ...

    # ----------------------------------------------------------------- manipulation
    def reshape(self, x: ArrayLike, shape: Shape) -> Array:
        """``x`` with a new shape (one entry may be -1)."""
        ...

    def transpose(self, x: ArrayLike, axes: Sequence[int] | None = None) -> Array:
        """Axes permuted (reversed when ``axes`` is None)."""
        ...

    def moveaxis(self, x: ArrayLike, source: int | Sequence[int], destination: int | Sequence[int]) -> Array:
        """Axes moved to new positions."""
        ...

    def concatenate(self, arrays: Sequence[ArrayLike], axis: int = 0) -> Array:
        """Arrays joined along an existing axis."""
        ...

    def stack(self, arrays: Sequence[ArrayLike], axis: int = 0) -> Array:
        """Arrays joined along a new axis."""
        ...

    def squeeze(self, x: ArrayLike, axis: Axis = None) -> Array:
        """Length-one axes removed."""
        ...

    def expand_dims(self, x: ArrayLike, axis: int | tuple[int, ...]) -> Array:
        """Length-one axes inserted."""
        ...

    def ravel(self, x: ArrayLike) -> Array:
        """Flattened in C order."""
        ...

    def flip(self, x: ArrayLike, axis: Axis = None) -> Array:
        """Order of elements reversed along ``axis``."""
        ...

    def roll(self, x: ArrayLike, shift: int | Sequence[int], axis: Axis = None) -> Array:
        """Elements shifted cyclically."""
        ...

    def broadcast_to(self, x: ArrayLike, shape: Shape) -> Array:
        """``x`` broadcast to ``shape``."""
        ...

    def repeat(self, x: ArrayLike, repeats: int, axis: int | None = None) -> Array:
        """Each element repeated ``repeats`` times (a static int)."""
        ...

    def tile(self, x: ArrayLike, reps: int | Sequence[int]) -> Array:
        """``x`` repeated ``reps`` times along each axis."""
        ...

    def pad(self, x: ArrayLike, pad_width: int | Sequence[Any], constant_values: float = 0) -> Array:
        """``x`` padded with a constant, ``numpy.pad`` width semantics."""
        ...

    def sort(self, x: ArrayLike, axis: int = -1) -> Array:
        """Sorted copy along ``axis`` (NaN last)."""
        ...

    def argsort(self, x: ArrayLike, axis: int = -1) -> Array:
        """Indices that sort ``x`` along ``axis`` (stable)."""
        ...

    def take(
        self,
        x: ArrayLike,
        indices: ArrayLike,
        axis: int | None = None,
        *,
        fill_value: ArrayLike | None = None,
    ) -> Array:
        """Elements at ``indices`` along ``axis`` (flattened if None).

        Negative indices in ``[-n, 0)`` count from the end; indices outside
        ``[-n, n)`` give ``fill_value`` (default: NaN for inexact dtypes, the most
        negative value for signed integers, the largest for unsigned, True for bool).
        """
        ...

    def index_add(self, x: ArrayLike, indices: ArrayLike | tuple[ArrayLike, ...], values: ArrayLike) -> Array:
        """A copy of ``x`` with ``values`` added at ``indices`` (repeats accumulate).

        ``indices`` index the leading axes (a tuple for several). Indices outside
        ``[-n, n)`` are dropped. ``x`` itself is never modified.
        """
        ...

    def index_set(self, x: ArrayLike, indices: ArrayLike | tuple[ArrayLike, ...], values: ArrayLike) -> Array:
        """A copy of ``x`` with ``values`` stored at ``indices``; out-of-range ones dropped."""
        ...

    # -------------------------------------------------------------- type conversion
    def to_numpy(self, x: ArrayLike) -> Any:
        """``x`` as a ``numpy.ndarray`` (a view where the memory allows it)."""
        ...

    def from_numpy(self, x: Any) -> Array:
        """A NumPy array as an array of this backend, on its default device."""
        ...

    def astype(self, x: ArrayLike, dtype: DTypeLike) -> Array:
        """``x`` converted to ``dtype``."""
        ...

    def is_array(self, x: object) -> bool:
        """True when ``x`` is an array of this backend (tracers included)."""
        ...

    def block_until_ready(self, x: PyTree) -> PyTree:
        """``x`` once every asynchronous computation producing it has finished."""
        ...

    # ------------------------------------------------------------------------ random
    def random_key(self, seed: int) -> Key:
        """A key from an integer seed; the same seed gives the same stream."""
        ...

    def random_split(self, key: Key, num: int = 2) -> Key:
        """``num`` independent keys derived from ``key``, stacked along axis 0."""
        ...

    def random_uniform(
        self,
        key: Key,
        shape: Shape = (),
        dtype: DTypeLike = None,
        minval: float = 0.0,
        maxval: float = 1.0,
    ) -> Array:
        """Uniform samples in ``[minval, maxval)``."""
        ...

    def random_normal(self, key: Key, shape: Shape = (), dtype: DTypeLike = None) -> Array:
        """Standard normal samples."""
        ...

    def random_poisson(self, key: Key, lam: ArrayLike, shape: Shape | None = None) -> Array:
        """Poisson samples with mean ``lam`` (broadcast to ``shape``), as int64."""
        ...

    # ------------------------------------------------------ functional transformations
    def jit(
        self, fun: Callable[..., Any], *, static_argnums: int | Sequence[int] | None = None
    ) -> Callable[..., Any]:
        """``fun`` compiled; arguments at ``static_argnums`` must be hashable and are
        compiled into the function."""
        ...

    def grad(self, fun: Callable[..., Any], argnums: int | Sequence[int] = 0) -> Callable[..., Any]:
        """Gradient of a scalar function with respect to the arguments at ``argnums``."""
        ...

    def value_and_grad(
        self, fun: Callable[..., Any], argnums: int | Sequence[int] = 0
    ) -> Callable[..., tuple[Any, Any]]:
        """A function returning ``(fun(*args), grad(fun)(*args))`` in one pass."""
        ...

    def vmap(
        self, fun: Callable[..., Any], in_axes: int | Sequence[Any] | None = 0, out_axes: Any = 0
    ) -> Callable[..., Any]:
        """``fun`` mapped over an axis of its inputs (``jax.vmap`` semantics, pytrees included)."""
        ...

    def scan(
        self,
        f: Callable[[PyTree, PyTree], tuple[PyTree, PyTree]],
        init: PyTree,
        xs: PyTree = None,
        length: int | None = None,
        reverse: bool = False,
    ) -> tuple[PyTree, PyTree]:
        """Loop carrying state, stacking outputs (``jax.lax.scan`` semantics)."""
        ...

    def fori_loop(
        self, lower: int, upper: int, body_fun: Callable[[Any, PyTree], PyTree], init_val: PyTree
    ) -> PyTree:
        """``val = body_fun(i, val)`` for ``i`` in ``[lower, upper)``."""
        ...

    def cond(
        self, pred: ArrayLike, true_fun: Callable[..., Any], false_fun: Callable[..., Any], *operands: Any
    ) -> Any:
        """``true_fun(*operands)`` if the scalar ``pred`` holds, else ``false_fun(*operands)``."""
        ...

    def while_loop(
        self, cond_fun: Callable[[PyTree], Any], body_fun: Callable[[PyTree], PyTree], init_val: PyTree
    ) -> PyTree:
        """``val = body_fun(val)`` while ``cond_fun(val)`` holds."""
        ...
