"""The conformance cases: every :class:`~xpcs_protocol.BackendProtocol` member called on
fixed inputs, with an independent expected value (``oracle``) where one exists.

A case's ``call(backend, *inputs)`` receives NumPy inputs converted to the backend under
test; everything else it needs (shapes, sizes, axes) is closed over, so the same call
can be wrapped in ``backend.jit``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["CASES", "ERROR_CASES", "Case", "ErrorCase"]


@dataclass(frozen=True)
class Case:
    """One call of one or more protocol members, compared across backends."""

    id: str
    members: tuple[str, ...]
    call: Callable[..., Any]
    inputs: Callable[[np.random.Generator], tuple[Any, ...]] = lambda rng: ()
    oracle: Callable[..., Any] | None = None
    jit: bool = True
    rtol: float = 1e-12
    atol: float = 0.0
    check_dtype: bool = True
    backend_arrays: bool = True
    """Whether results must be arrays of the backend under test (not for ``to_numpy``)."""


@dataclass(frozen=True)
class ErrorCase:
    """A call every backend must refuse with ``error`` (outside ``jit``)."""

    id: str
    members: tuple[str, ...]
    call: Callable[..., Any]
    error: type[BaseException]
    inputs: Callable[[np.random.Generator], tuple[Any, ...]] = lambda rng: ()


# ---------------------------------------------------------------------------- inputs
def _normal(*shape: int) -> Callable[[np.random.Generator], tuple[Any, ...]]:
    return lambda rng: (rng.normal(size=shape),)


def _unit(*shape: int) -> Callable[[np.random.Generator], tuple[Any, ...]]:
    return lambda rng: (rng.uniform(-0.99, 0.99, size=shape),)


def _positive(*shape: int) -> Callable[[np.random.Generator], tuple[Any, ...]]:
    return lambda rng: (rng.uniform(0.01, 5.0, size=shape),)


def _pair(*shape: int) -> Callable[[np.random.Generator], tuple[Any, ...]]:
    return lambda rng: (rng.normal(size=shape), rng.normal(size=shape))


def _with_nan(rng: np.random.Generator) -> tuple[Any, ...]:
    x = rng.normal(size=(4, 6))
    x[1, 2] = np.nan
    x[3, :] = np.nan
    return (x,)


def _special(rng: np.random.Generator) -> tuple[Any, ...]:
    return (np.array([0.0, -1.5, np.nan, np.inf, -np.inf, 2.0, -0.0]),)


def _elementwise(fn: Callable[[float], Any]) -> Callable[..., Any]:
    """Oracle from the Python math module, element by element (independent of NumPy)."""

    def oracle(x: Any) -> Any:
        arr = np.asarray(x, dtype=np.float64)
        return np.array([fn(float(v)) for v in arr.ravel()]).reshape(arr.shape)

    return oracle


def _loop_bincount(x: Any, w: Any, length: int) -> Any:
    out = [0.0] * length
    for v, wt in zip(np.ravel(x).tolist(), np.ravel(w).tolist(), strict=True):
        if 0 <= v < length:
            out[v] += wt
    return np.array(out)


# ----------------------------------------------------------------------------- cases
_UNARY_MATH: list[tuple[str, Callable[[float], Any], Callable[..., Any]]] = [
    ("sin", math.sin, _normal(5, 7)),
    ("cos", math.cos, _normal(5, 7)),
    ("tan", math.tan, _unit(5, 7)),
    ("arcsin", math.asin, _unit(5, 7)),
    ("arccos", math.acos, _unit(5, 7)),
    ("arctan", math.atan, _normal(5, 7)),
    ("sinh", math.sinh, _normal(5, 7)),
    ("cosh", math.cosh, _normal(5, 7)),
    ("tanh", math.tanh, _normal(5, 7)),
    ("deg2rad", math.radians, _normal(5, 7)),
    ("rad2deg", math.degrees, _normal(5, 7)),
    ("exp", math.exp, _normal(5, 7)),
    ("expm1", math.expm1, _unit(5, 7)),
    ("log", math.log, _positive(5, 7)),
    ("log1p", math.log1p, _unit(5, 7)),
    ("log10", math.log10, _positive(5, 7)),
    ("sqrt", math.sqrt, _positive(5, 7)),
    ("square", lambda v: v * v, _normal(5, 7)),
    ("abs", math.fabs, _normal(5, 7)),
    ("sign", lambda v: math.copysign(1.0, v) if v else 0.0, _normal(5, 7)),
    ("floor", math.floor, lambda rng: (rng.normal(scale=5, size=(5, 7)),)),
    ("ceil", math.ceil, lambda rng: (rng.normal(scale=5, size=(5, 7)),)),
]


def _method(name: str, **kwargs: Any) -> Callable[..., Any]:
    return lambda b, *xs: getattr(b, name)(*xs, **kwargs)


def _unary_cases() -> list[Case]:
    return [
        Case(name, (name,), _method(name), inputs, oracle=_elementwise(fn), atol=1e-15)
        for name, fn, inputs in _UNARY_MATH
    ]


def _predicate_cases() -> list[Case]:
    return [
        Case("isnan", ("isnan",), _method("isnan"), _special, oracle=_elementwise(math.isnan)),
        Case("isinf", ("isinf",), _method("isinf"), _special, oracle=_elementwise(math.isinf)),
        Case("isfinite", ("isfinite",), _method("isfinite"), _special, oracle=_elementwise(math.isfinite)),
    ]


def _binary_cases() -> list[Case]:
    def nan_pair(rng: np.random.Generator) -> tuple[Any, ...]:
        x, y = rng.normal(size=(2, 9))
        x[3] = np.nan
        return x, y

    def bools(rng: np.random.Generator) -> tuple[Any, ...]:
        return rng.random(12) < 0.5, rng.random(12) < 0.5

    return [
        Case(
            "arctan2",
            ("arctan2",),
            _method("arctan2"),
            _pair(4, 6),
            oracle=np.vectorize(math.atan2),
            atol=1e-15,
        ),
        Case(
            "hypot",
            ("hypot",),
            _method("hypot"),
            _pair(4, 6),
            oracle=np.vectorize(math.hypot),
        ),
        Case(
            "power",
            ("power",),
            _method("power"),
            lambda rng: (rng.uniform(0.1, 3, 8), rng.normal(size=8)),
            oracle=np.vectorize(math.pow),
        ),
        Case("maximum_nan", ("maximum",), _method("maximum"), nan_pair),
        Case("minimum_nan", ("minimum",), _method("minimum"), nan_pair),
        Case(
            "mod",
            ("mod",),
            _method("mod"),
            lambda rng: (rng.normal(scale=5, size=10), rng.choice([-2.5, 1.5, 3.0], 10)),
            oracle=lambda x, y: np.array([a % b for a, b in zip(x.tolist(), y.tolist(), strict=True)]),
        ),
        Case("logical_and", ("logical_and",), _method("logical_and"), bools),
        Case("logical_or", ("logical_or",), _method("logical_or"), bools),
        Case("logical_not", ("logical_not",), _method("logical_not"), lambda rng: (rng.random(12) < 0.5,)),
        Case(
            "round",
            ("round",),
            lambda b, x: b.round(x, 2),
            lambda rng: (np.array([0.125, 0.135, 2.5, -1.005, 3.14159]),),
        ),
        Case(
            "round_half_even",
            ("round",),
            _method("round"),
            lambda rng: (np.array([0.5, 1.5, 2.5, -0.5, -2.5]),),
            oracle=lambda x: np.array([0.0, 2, 2, -0.0, -2]),
        ),
        Case(
            "clip",
            ("clip",),
            lambda b, x: b.clip(x, -0.5, 0.7),
            _normal(20),
            oracle=lambda x: np.array([min(max(v, -0.5), 0.7) for v in x.tolist()]),
        ),
        Case("clip_one_sided", ("clip",), lambda b, x: b.clip(x, None, 0.1), _normal(20)),
        Case("diff", ("diff",), lambda b, x: b.diff(x, 2, axis=0), _normal(6, 3)),
    ]


def _stat_cases() -> list[Case]:
    m = _normal(4, 5, 3)
    cases = [
        Case("sum_all", ("sum",), _method("sum"), m, oracle=lambda x: math.fsum(x.ravel().tolist())),
        Case("sum_axis_keepdims", ("sum",), lambda b, x: b.sum(x, axis=(0, 2), keepdims=True), m),
        Case("prod_axis", ("prod",), lambda b, x: b.prod(x, axis=1), m),
        Case(
            "mean_axis",
            ("mean",),
            lambda b, x: b.mean(x, axis=1),
            m,
            oracle=lambda x: np.array(
                [[math.fsum(x[i, :, k].tolist()) / 5 for k in range(3)] for i in range(4)]
            ),
        ),
        Case("std_ddof", ("std",), lambda b, x: b.std(x, axis=0, ddof=1), m),
        Case("var_keepdims", ("var",), lambda b, x: b.var(x, axis=-1, keepdims=True), m),
        Case("min_axis", ("min",), lambda b, x: b.min(x, axis=2), m),
        Case("max_all", ("max",), _method("max"), m, oracle=lambda x: max(x.ravel().tolist())),
        Case("median_axis", ("median",), lambda b, x: b.median(x, axis=1), m),
        Case(
            "median_all", ("median",), _method("median"), _normal(7), oracle=lambda x: sorted(x.tolist())[3]
        ),
        Case("percentile", ("percentile",), lambda b, x: b.percentile(x, 25.0, axis=0), m),
        Case("nansum", ("nansum",), lambda b, x: b.nansum(x, axis=1), _with_nan),
        Case("nanmean", ("nanmean",), lambda b, x: b.nanmean(x, axis=1), _with_nan),
        Case("argmin", ("argmin",), lambda b, x: b.argmin(x, axis=0), m),
        Case("argmax_flat", ("argmax",), _method("argmax"), m),
        Case("cumsum_axis", ("cumsum",), lambda b, x: b.cumsum(x, axis=1), m),
        Case("cumsum_flat", ("cumsum",), _method("cumsum"), m),
    ]
    return cases


def _linalg_cases() -> list[Case]:
    def spd(rng: np.random.Generator) -> tuple[Any, ...]:
        a = rng.normal(size=(3, 4, 4))
        return a @ a.transpose(0, 2, 1) + 4 * np.eye(4), rng.normal(size=(3, 4, 2))

    return [
        Case("dot", ("dot",), _method("dot"), lambda rng: (rng.normal(size=(3, 4)), rng.normal(size=4))),
        Case(
            "matmul_batched",
            ("matmul",),
            _method("matmul"),
            lambda rng: (rng.normal(size=(2, 3, 4)), rng.normal(size=(4, 5))),
            rtol=1e-11,
        ),
        Case(
            "einsum",
            ("einsum",),
            lambda b, x, y: b.einsum("ij,kj->ik", x, y),
            lambda rng: (rng.normal(size=(3, 4)), rng.normal(size=(5, 4))),
            rtol=1e-11,
        ),
        Case("outer", ("outer",), _method("outer"), _pair(4)),
        Case(
            "solve_batched",
            ("solve",),
            _method("solve"),
            spd,
            rtol=1e-10,
            oracle=lambda a, rhs: np.stack([np.linalg.lstsq(a[i], rhs[i], rcond=None)[0] for i in range(3)]),
        ),
        Case("inv_batched", ("inv",), _method("inv"), lambda rng: spd(rng)[:1], rtol=1e-10),
        Case(
            "norm_axis",
            ("norm",),
            lambda b, x: b.norm(x, axis=1),
            _normal(4, 6),
            oracle=lambda x: np.array([math.sqrt(math.fsum(v * v for v in row)) for row in x.tolist()]),
        ),
        Case("norm_keepdims", ("norm",), lambda b, x: b.norm(x, axis=(0, 1), keepdims=True), _normal(4, 6)),
    ]


def _binning_cases() -> list[Case]:
    def labels(rng: np.random.Generator) -> tuple[Any, ...]:
        x = rng.integers(-3, 12, size=(6, 7))
        return x, rng.uniform(0, 2, size=(6, 7))

    def edges(rng: np.random.Generator) -> tuple[Any, ...]:
        return rng.uniform(-1, 11, 40), np.array([0.0, 1, 2.5, 2.5, 7, 10])

    return [
        Case(
            "bincount_counts",
            ("bincount",),
            lambda b, x, w: b.bincount(x, length=10),
            labels,
            oracle=lambda x, w: _loop_bincount(x, np.ones_like(x), 10).astype(np.int64),
        ),
        Case(
            "bincount_weights",
            ("bincount",),
            lambda b, x, w: b.bincount(x, w, length=10),
            labels,
            oracle=lambda x, w: _loop_bincount(x, w, 10),
        ),
        Case(
            "bincount_counts_exact",
            ("bincount",),
            lambda b, x, w: b.bincount(x, w, length=3),
            lambda rng: (rng.integers(0, 3, 6000), rng.integers(60000, 65536, 6000).astype(np.uint16)),
            # sums near 1.3e8 > 2**24: exact only if integer weights are summed in float64
            oracle=lambda x, w: np.array([float(sum(int(v) for v in w[x == k])) for k in range(3)]),
            rtol=0.0,
        ),
        Case("digitize", ("digitize",), _method("digitize"), edges),
        Case("digitize_right", ("digitize",), lambda b, x, e: b.digitize(x, e, right=True), edges),
        Case("histogram_bins", ("histogram",), lambda b, x, e: b.histogram(x, 7, range=(0.0, 10.0)), edges),
        Case(
            "histogram_edges_weights",
            ("histogram",),
            lambda b, x, e: b.histogram(x, b.unique(e), weights=x * 0.5),
            edges,
            jit=False,
        ),
        Case(
            "histogram_edges",
            ("histogram",),
            lambda b, x, e: b.histogram(x, e),
            lambda rng: (rng.uniform(-1, 11, 40), np.array([0.0, 1, 2.5, 7, 10])),
        ),
        Case(
            "unique_padded",
            ("unique",),
            lambda b, x: b.unique(x, size=12, fill_value=-1),
            lambda rng: (rng.integers(0, 6, size=(3, 5)),),
            oracle=lambda x: np.array(
                sorted(set(x.ravel().tolist())) + [-1] * (12 - len(set(x.ravel().tolist())))
            ),
        ),
        Case(
            "unique_truncated",
            ("unique",),
            lambda b, x: b.unique(x, size=3, fill_value=-1),
            lambda rng: (np.array([5, 1, 4, 1, 2]),),
            oracle=lambda x: np.array([1, 2, 4]),
        ),
        Case(
            "unique_eager", ("unique",), _method("unique"), lambda rng: (rng.integers(0, 6, 20),), jit=False
        ),
        Case(
            "searchsorted",
            ("searchsorted",),
            lambda b, a, v: b.searchsorted(a, v, side="right"),
            lambda rng: (np.array([0.0, 1, 1, 2, 5]), np.array([-1.0, 1, 1.5, 5, 9])),
        ),
    ]


def _padded_nonzero_oracle(x: Any, size: int) -> Any:
    found = [tuple(i) for i in np.argwhere(x).tolist()][:size]
    cols = list(zip(*found, strict=True)) if found else [()] * x.ndim
    return tuple(np.array(list(c) + [n] * (size - len(found))) for c, n in zip(cols, x.shape, strict=True))


def _masking_cases() -> list[Case]:
    def sparse(rng: np.random.Generator) -> tuple[Any, ...]:
        return ((rng.random((4, 5)) < 0.3).astype(np.float64) * rng.normal(size=(4, 5)),)

    return [
        Case(
            "where",
            ("where",),
            _method("where"),
            lambda rng: (rng.random(10) < 0.5, rng.normal(size=10), np.zeros(10)),
        ),
        Case(
            "nonzero_padded",
            ("nonzero",),
            lambda b, x: b.nonzero(x, size=15),
            sparse,
            oracle=lambda x: _padded_nonzero_oracle(x, 15),
        ),
        Case(
            "nonzero_truncated",
            ("nonzero",),
            lambda b, x: b.nonzero(x, size=2),
            sparse,
            oracle=lambda x: _padded_nonzero_oracle(x, 2),
        ),
        Case("nonzero_eager", ("nonzero",), _method("nonzero"), sparse, jit=False),
        Case(
            "count_nonzero",
            ("count_nonzero",),
            lambda b, x: b.count_nonzero(x, axis=0),
            sparse,
            oracle=lambda x: np.array([sum(1 for v in col if v) for col in x.T.tolist()]),
        ),
        Case("any", ("any",), lambda b, x: b.any(x > 1.0, axis=1), _normal(5, 4)),
        Case("all_keepdims", ("all",), lambda b, x: b.all(x > -1.5, axis=0, keepdims=True), _normal(5, 4)),
    ]


def _take_inputs(rng: np.random.Generator) -> tuple[Any, ...]:
    return rng.normal(size=(4, 5)), np.array([0, 3, -1, -5, 5, 7, -9])


def _scatter_inputs(rng: np.random.Generator) -> tuple[Any, ...]:
    return rng.normal(size=6), np.array([0, 2, 2, -1, 6, -7, 9, 5]), rng.normal(size=8)


def _loop_scatter(x: Any, idx: Any, vals: Any, add: bool) -> Any:
    out = x.tolist()
    n = len(out)
    for i, v in zip(idx.tolist(), vals.tolist(), strict=True):
        if -n <= i < n:
            out[i] = out[i] + v if add else v
    return np.array(out)


def _manipulation_cases() -> list[Case]:
    m = _normal(3, 4)
    return [
        Case("reshape", ("reshape",), lambda b, x: b.reshape(x, (2, -1)), m),
        Case("transpose", ("transpose",), _method("transpose"), _normal(2, 3, 4)),
        Case("transpose_axes", ("transpose",), lambda b, x: b.transpose(x, (1, 2, 0)), _normal(2, 3, 4)),
        Case("moveaxis", ("moveaxis",), lambda b, x: b.moveaxis(x, 0, -1), _normal(2, 3, 4)),
        Case("concatenate", ("concatenate",), lambda b, x, y: b.concatenate([x, y], axis=1), _pair(3, 4)),
        Case("stack", ("stack",), lambda b, x, y: b.stack([x, y], axis=-1), _pair(3, 4)),
        Case("squeeze", ("squeeze",), lambda b, x: b.squeeze(x, axis=1), _normal(3, 1, 4)),
        Case("expand_dims", ("expand_dims",), lambda b, x: b.expand_dims(x, (0, 2)), m),
        Case("ravel", ("ravel",), _method("ravel"), m),
        Case("flip", ("flip",), lambda b, x: b.flip(x, axis=1), m),
        Case("roll", ("roll",), lambda b, x: b.roll(x, 2, axis=1), m),
        Case("roll_flat", ("roll",), lambda b, x: b.roll(x, -3), m),
        Case("broadcast_to", ("broadcast_to",), lambda b, x: b.broadcast_to(x, (2, 3, 4)), m),
        Case("repeat", ("repeat",), lambda b, x: b.repeat(x, 3, axis=0), m),
        Case("tile", ("tile",), lambda b, x: b.tile(x, (2, 1)), m),
        Case("pad", ("pad",), lambda b, x: b.pad(x, ((1, 0), (2, 3)), constant_values=-1.0), m),
        Case("sort_nan_last", ("sort",), _method("sort"), _with_nan),
        Case(
            "argsort_stable",
            ("argsort",),
            _method("argsort"),
            lambda rng: (np.array([3, 1, 2, 1, 3, 0, 1]),),
            oracle=lambda x: np.array([5, 1, 3, 6, 2, 0, 4]),
        ),
        Case(
            "take_out_of_bounds_fill",
            ("take",),
            lambda b, x, i: b.take(x, i),
            _take_inputs,
            oracle=lambda x, i: np.array([x.ravel()[v] if -20 <= v < 20 else np.nan for v in i.tolist()]),
        ),
        Case("take_axis", ("take",), lambda b, x, i: b.take(x, i, axis=1, fill_value=0.0), _take_inputs),
        Case(
            "take_int_default_fill",
            ("take",),
            lambda b, x, i: b.take(x, i),
            lambda rng: (np.arange(4), np.array([1, 4, -5])),
            oracle=lambda x, i: np.array([1, np.iinfo(np.int64).min, np.iinfo(np.int64).min]),
        ),
        Case(
            "index_add",
            ("index_add",),
            _method("index_add"),
            _scatter_inputs,
            oracle=lambda x, i, v: _loop_scatter(x, i, v, add=True),
        ),
        Case(
            "index_set_unique",
            ("index_set",),
            _method("index_set"),
            lambda rng: (rng.normal(size=6), np.array([0, 3, -1, 8, -7]), rng.normal(size=5)),
            oracle=lambda x, i, v: _loop_scatter(x, i, v, add=False),
        ),
        Case(
            "index_add_2d",
            ("index_add",),
            lambda b, x, i, j: b.index_add(x, (i, j), 1.0),
            lambda rng: (np.zeros((3, 4)), np.array([0, 2, 2, 3, 1]), np.array([1, 3, 3, 0, -1])),
            oracle=lambda x, i, j: np.array([[0, 1, 0, 0], [0, 0, 0, 1], [0, 0, 0, 2.0]]),
        ),
        Case(
            "index_add_rows",
            ("index_add",),
            lambda b, x, i: b.index_add(x, i, b.ones(3)),
            lambda rng: (np.zeros((4, 3)), np.array([1, 1, 3])),
        ),
    ]


def _creation_cases() -> list[Case]:
    return [
        Case("array", ("array",), lambda b, x: b.array(x, dtype="float32"), _normal(3)),
        Case("asarray", ("asarray",), lambda b: b.asarray([[1, 2], [3, 4]])),
        Case(
            "asarray_dtype",
            ("asarray",),
            lambda b, x: b.asarray(x, dtype="int64"),
            lambda rng: (np.arange(4.0),),
        ),
        Case("zeros", ("zeros",), lambda b: b.zeros((2, 3))),
        Case("ones_int", ("ones",), lambda b: b.ones(4, dtype="int32")),
        Case("zeros_dtype_object", ("zeros",), lambda b: b.zeros(3, dtype=np.dtype(np.float32))),
        Case("eye_dtype_class", ("eye",), lambda b: b.eye(2, dtype=np.int64)),
        Case("full", ("full",), lambda b: b.full((2, 2), 7.5)),
        Case("zeros_like", ("zeros_like",), _method("zeros_like"), _normal(2, 3)),
        Case("ones_like_dtype", ("ones_like",), lambda b, x: b.ones_like(x, dtype="int64"), _normal(2, 3)),
        Case("full_like", ("full_like",), lambda b, x: b.full_like(x, -2.0), _normal(2, 3)),
        Case("arange_stop", ("arange",), lambda b: b.arange(5), oracle=lambda: np.array(list(range(5)))),
        Case(
            "arange_step",
            ("arange",),
            lambda b: b.arange(1.0, 2.0, 0.25),
            oracle=lambda: np.array([1.0, 1.25, 1.5, 1.75]),
        ),
        Case(
            "linspace",
            ("linspace",),
            lambda b: b.linspace(0.0, 1.0, 5, endpoint=False),
            oracle=lambda: np.array([0.0, 0.2, 0.4, 0.6, 0.8]),
        ),
        Case(
            "logspace",
            ("logspace",),
            lambda b: b.logspace(0.0, 3.0, 4),
            oracle=lambda: np.array([1.0, 10, 100, 1000]),
        ),
        Case("eye", ("eye",), lambda b: b.eye(3, 4)),
        Case(
            "meshgrid_xy",
            ("meshgrid",),
            lambda b, x, y: b.meshgrid(x, y),
            lambda rng: (np.arange(3.0), np.arange(2.0)),
        ),
        Case(
            "meshgrid_ij",
            ("meshgrid",),
            lambda b, x, y: b.meshgrid(x, y, indexing="ij"),
            lambda rng: (np.arange(3.0), np.arange(2.0)),
        ),
        Case("copy", ("copy",), _method("copy"), _normal(3)),
        Case("astype", ("astype",), lambda b, x: b.astype(x * 10, "int32"), _normal(6)),
    ]


def _control_flow_cases() -> list[Case]:
    def cumulative(b: Any, xs: Any) -> Any:
        return b.scan(lambda c, x: (c + x, c * x), 0.0, xs)

    def scan_tree(b: Any, xs: Any, ws: Any) -> Any:
        def body(carry: Any, inp: Any) -> Any:
            total, count = carry
            return (total + inp["x"] * inp["w"], count + 1), {
                "sq": inp["x"] ** 2,
                "pair": (inp["w"], inp["x"]),
            }

        return b.scan(body, (b.zeros(3), 0), {"x": xs, "w": ws})

    def scan_reverse(b: Any, xs: Any) -> Any:
        return b.scan(lambda c, x: (c * 2 + x, c), 1.0, xs, reverse=True)

    def scan_length(b: Any) -> Any:
        return b.scan(lambda c, _: (c + 1.0, c * c), 0.0, None, length=5)

    def fori(b: Any, x: Any) -> Any:
        return b.fori_loop(0, 6, lambda i, v: (v[0] + i * v[1], v[1] * 0.5), (0.0, x))

    def while_(b: Any, x: Any) -> Any:
        return b.while_loop(lambda v: v[0] < 100.0, lambda v: (v[0] * 3.0 + x, v[1] + 1), (1.0, 0))

    def cond_pair(b: Any, x: Any) -> Any:
        up = b.cond(b.sum(x) > -100.0, lambda a, c: a + c, lambda a, c: a - c, x, 2.0)
        down = b.cond(b.sum(x) > 100.0, lambda a: a * 10.0, lambda a: -a, x)
        return up, down

    def vmap_basic(b: Any, x: Any, y: Any) -> Any:
        return b.vmap(lambda r, c: b.sum(r * c))(x, y)

    def vmap_axes(b: Any, x: Any, y: Any) -> Any:
        return b.vmap(lambda col, v: col * v[0], in_axes=(1, None), out_axes=1)(x, y[0])

    def vmap_tree(b: Any, x: Any, y: Any) -> Any:
        def f(d: Any, scale: Any) -> Any:
            return {"s": b.sum(d["a"]) * scale, "t": (d["b"], d["a"][0])}

        return b.vmap(f, in_axes=({"a": 0, "b": 1}, None))({"a": x, "b": y.T}, 3.0)

    def vmap_kwargs(b: Any, x: Any, y: Any) -> Any:
        return b.vmap(lambda r, *, w: b.dot(r, w))(x, w=y)

    loops = _pair(4, 3)
    return [
        Case(
            "scan_cumulative",
            ("scan",),
            cumulative,
            _normal(6),
            oracle=lambda xs: (np.sum(xs), np.concatenate([[0.0], np.cumsum(xs)[:-1]]) * xs),
        ),
        Case(
            "scan_pytree",
            ("scan",),
            scan_tree,
            lambda rng: (rng.normal(size=(5, 3)), rng.normal(size=(5, 3))),
        ),
        Case("scan_reverse", ("scan",), scan_reverse, _normal(5)),
        Case(
            "scan_length_only",
            ("scan",),
            scan_length,
            oracle=lambda: (5.0, np.array([0.0, 1.0, 4.0, 9.0, 16.0])),
        ),
        Case("fori_loop", ("fori_loop",), fori, lambda rng: (np.float64(rng.normal()),)),
        Case(
            "while_loop", ("while_loop",), while_, lambda rng: (np.float64(0.5),), oracle=lambda x: (101.0, 4)
        ),
        Case("cond", ("cond",), cond_pair, _normal(4)),
        Case("vmap_rows", ("vmap",), vmap_basic, loops, oracle=lambda x, y: np.sum(x * y, axis=1)),
        Case("vmap_in_out_axes", ("vmap",), vmap_axes, loops, oracle=lambda x, y: x * y[0][0]),
        Case("vmap_pytree", ("vmap",), vmap_tree, loops),
        Case("vmap_kwargs", ("vmap",), vmap_kwargs, loops, oracle=lambda x, y: np.sum(x * y, axis=1)),
    ]


def _conversion_cases() -> list[Case]:
    return [
        Case("to_numpy", ("to_numpy",), _method("to_numpy"), _normal(3, 2), jit=False, backend_arrays=False),
        Case("from_numpy", ("from_numpy",), lambda b: b.from_numpy(np.arange(5, dtype=np.int32)), jit=False),
        Case(
            "is_array",
            ("is_array",),
            lambda b, x: (b.is_array(x), b.is_array([1.0]), b.is_array(2.0)),
            _normal(2),
            jit=False,
            oracle=lambda x: (True, False, False),
        ),
        Case(
            "block_until_ready",
            ("block_until_ready",),
            lambda b, x: b.block_until_ready({"y": x * 2}),
            _normal(3),
        ),
    ]


CASES: tuple[Case, ...] = tuple(
    _unary_cases()
    + _predicate_cases()
    + _binary_cases()
    + _stat_cases()
    + _linalg_cases()
    + _binning_cases()
    + _masking_cases()
    + _manipulation_cases()
    + _creation_cases()
    + _control_flow_cases()
    + _conversion_cases()
)
"""Every conformance case, in protocol order."""


def _carry_changes_shape(b: Any) -> Any:
    return b.scan(lambda c, x: (b.stack([c, c]), x), b.zeros(2), b.zeros(3))


ERROR_CASES: tuple[ErrorCase, ...] = (
    ErrorCase("unique_size_without_fill", ("unique",), lambda b: b.unique(b.arange(4), size=6), ValueError),
    ErrorCase("bincount_float", ("bincount",), lambda b: b.bincount(b.ones(3), length=2), TypeError),
    ErrorCase("bincount_without_length", ("bincount",), lambda b: b.bincount(b.arange(3)), TypeError),
    ErrorCase("take_float_indices", ("take",), lambda b: b.take(b.ones(3), b.ones(2)), TypeError),
    ErrorCase(
        "index_add_float_indices", ("index_add",), lambda b: b.index_add(b.ones(3), b.ones(2), 1.0), TypeError
    ),
    ErrorCase("nonzero_scalar", ("nonzero",), lambda b: b.nonzero(b.asarray(1.0)), ValueError),
    ErrorCase(
        "vmap_inconsistent_sizes",
        ("vmap",),
        lambda b: b.vmap(lambda x, y: x + y)(b.ones(3), b.ones(4)),
        ValueError,
    ),
    ErrorCase(
        "vmap_nothing_mapped", ("vmap",), lambda b: b.vmap(lambda x: x, in_axes=None)(b.ones(3)), ValueError
    ),
    ErrorCase(
        "vmap_in_axes_length",
        ("vmap",),
        lambda b: b.vmap(lambda x, y: x, in_axes=(0,))(b.ones(3), b.ones(3)),
        ValueError,
    ),
    ErrorCase("scan_carry_shape_change", ("scan",), _carry_changes_shape, TypeError),
    ErrorCase("scan_no_length", ("scan",), lambda b: b.scan(lambda c, x: (c, x), 0.0, None), ValueError),
    ErrorCase(
        "scan_inconsistent_lengths",
        ("scan",),
        lambda b: b.scan(lambda c, x: (c, x), 0.0, (b.ones(3), b.ones(4))),
        ValueError,
    ),
    ErrorCase(
        "fori_carry_type_change",
        ("fori_loop",),
        lambda b: b.fori_loop(0, 3, lambda i, v: b.ones(2), b.zeros(3)),
        TypeError,
    ),
    ErrorCase(
        "while_non_scalar_predicate",
        ("while_loop",),
        lambda b: b.while_loop(lambda v: v < 3.0, lambda v: v + 1.0, b.zeros(2)),
        TypeError,
    ),
    ErrorCase(
        "cond_non_scalar_predicate",
        ("cond",),
        lambda b: b.cond(b.ones(2) > 0, lambda: 1.0, lambda: 2.0),
        TypeError,
    ),
    ErrorCase("random_key_float_seed", ("random_key",), lambda b: b.random_key(1.5), TypeError),
    ErrorCase(
        "poisson_negative_rate",
        ("random_poisson",),
        lambda b: b.random_poisson(b.random_key(0), b.asarray([-1.0, 2.0])),
        ValueError,
    ),
)
"""Calls every backend must refuse, with the exception type they must raise."""
