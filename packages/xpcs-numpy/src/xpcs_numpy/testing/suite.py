"""The conformance suite as a pytest class, for this project's backends and third-party ones.

Use it from a test module of the backend package::

    import pytest
    from xpcs_numpy.testing import BackendConformance

    class TestMyBackend(BackendConformance):
        @pytest.fixture(scope="class")
        @classmethod
        def backend(cls):
            return MyBackend()

Every case runs on the backend and on the NumPy reference with the same inputs and is
compared leaf by leaf (values, shapes, dtypes, and that results are arrays of the backend
under test); cases with an independent oracle are checked against it too; with a
compiling backend each case runs again under ``backend.jit``.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from xpcs_numpy.backend import NumPyBackend
from xpcs_numpy.pytree import tree_flatten
from xpcs_numpy.testing.cases import CASES, ERROR_CASES, Case, ErrorCase
from xpcs_protocol import BACKEND_MEMBERS, BackendProtocol

__all__ = ["BackendConformance", "assert_trees_close", "run_case"]

REFERENCE = NumPyBackend()
SEED = 20261125

# Members exercised by dedicated tests of the class rather than by CASES.
_DEDICATED = frozenset(
    {
        "name",
        "supports_jit",
        "supports_grad",
        "supports_gpu",
        "jit",
        "grad",
        "value_and_grad",
        "random_key",
        "random_split",
        "random_uniform",
        "random_normal",
        "random_poisson",
    }
)


def assert_trees_close(
    actual: Any,
    expected: Any,
    *,
    rtol: float = 1e-12,
    atol: float = 0.0,
    check_dtype: bool = True,
    backend: BackendProtocol | None = None,
) -> None:
    """Pytrees equal in structure, shapes, dtypes (if asked) and values (NaN equals NaN).

    With ``backend``, every array leaf of ``actual`` must be an array of that backend,
    which catches results that silently came back as NumPy arrays.
    """
    a_leaves, a_def = tree_flatten(actual)
    e_leaves, e_def = tree_flatten(expected)
    assert len(a_leaves) == len(e_leaves), f"structure differs: {a_def} vs {e_def}"
    for i, (a, e) in enumerate(zip(a_leaves, e_leaves, strict=True)):
        if backend is not None and backend.name != "numpy" and not isinstance(a, bool | int | float):
            assert backend.is_array(a), f"leaf {i} is {type(a).__name__}, not a {backend.name} array"
        a_arr, e_arr = np.asarray(a), np.asarray(e)
        assert a_arr.shape == e_arr.shape, f"leaf {i}: shape {a_arr.shape} != {e_arr.shape}"
        if check_dtype:
            assert a_arr.dtype == e_arr.dtype, f"leaf {i}: dtype {a_arr.dtype} != {e_arr.dtype}"
        if a_arr.dtype.kind in "fc" or e_arr.dtype.kind in "fc":
            np.testing.assert_allclose(
                a_arr, e_arr, rtol=rtol, atol=atol, equal_nan=True, err_msg=f"leaf {i}"
            )
        else:
            np.testing.assert_array_equal(a_arr, e_arr, err_msg=f"leaf {i}")


def run_case(backend: BackendProtocol, case: Case, *, jit: bool = False) -> Any:
    """Result of ``case`` on ``backend`` (inputs from the fixed seed), optionally jitted."""
    inputs = case.inputs(np.random.default_rng(SEED))
    args = [backend.from_numpy(x) if isinstance(x, np.ndarray) else x for x in inputs]
    if jit:
        return backend.jit(lambda *xs: case.call(backend, *xs))(*args)
    return case.call(backend, *args)


def _ids(cases: tuple[Any, ...]) -> list[str]:
    return [c.id for c in cases]


class BackendConformance:
    """Pytest mix-in: override the class-scoped ``backend`` fixture to test a backend."""

    @pytest.fixture(scope="class")
    @classmethod
    def backend(cls) -> BackendProtocol:
        raise NotImplementedError("override the `backend` fixture with the backend under test")

    # ------------------------------------------------------------------- structure
    def test_is_a_backend(self, backend: BackendProtocol) -> None:
        assert isinstance(backend, BackendProtocol)
        missing = sorted(m for m in BACKEND_MEMBERS if not hasattr(backend, m))
        assert not missing, f"missing members: {missing}"

    def test_static_conformance_under_strict_mypy(self, backend: BackendProtocol, tmp_path: Any) -> None:
        """Strict mypy accepts the backend's class where a BackendProtocol is expected, which
        checks every member's signature (isinstance only checks the names)."""
        api = pytest.importorskip("mypy.api")
        cls = type(backend)
        probe = tmp_path / "probe.py"
        probe.write_text(
            f"from {cls.__module__} import {cls.__qualname__} as Candidate\n"
            "from xpcs_protocol import BackendProtocol\n\n"
            "def check(candidate: Candidate) -> BackendProtocol:\n"
            "    return candidate\n"
        )
        stdout, stderr, status = api.run(["--strict", "--cache-dir", str(tmp_path / "cache"), str(probe)])
        assert status == 0, stdout + stderr

    def test_capabilities_are_booleans(self, backend: BackendProtocol) -> None:
        assert isinstance(backend.name, str)
        assert backend.name
        for flag in (backend.supports_jit, backend.supports_grad, backend.supports_gpu):
            assert isinstance(flag, bool)

    def test_every_member_is_exercised(self) -> None:
        covered = {m for c in CASES + ERROR_CASES for m in c.members} | _DEDICATED
        assert sorted(BACKEND_MEMBERS - covered) == []

    # ------------------------------------------------------------------------ cases
    @pytest.mark.parametrize("case", CASES, ids=_ids(CASES))
    def test_case_matches_reference(self, backend: BackendProtocol, case: Case) -> None:
        expected = run_case(REFERENCE, case)
        if case.oracle is not None:
            oracle = case.oracle(*case.inputs(np.random.default_rng(SEED)))
            assert_trees_close(
                expected, oracle, rtol=max(case.rtol, 1e-13), atol=case.atol, check_dtype=False
            )
        actual = run_case(backend, case)
        assert_trees_close(
            actual,
            expected,
            rtol=case.rtol,
            atol=case.atol,
            check_dtype=case.check_dtype,
            backend=backend if case.backend_arrays else None,
        )
        if not case.backend_arrays:
            assert all(isinstance(leaf, np.ndarray) for leaf in tree_flatten(actual)[0])

    @pytest.mark.parametrize("case", [c for c in CASES if c.jit], ids=_ids(tuple(c for c in CASES if c.jit)))
    def test_case_under_jit(self, backend: BackendProtocol, case: Case) -> None:
        expected = run_case(REFERENCE, case)
        actual = run_case(backend, case, jit=True)
        assert_trees_close(
            actual, expected, rtol=case.rtol, atol=case.atol, check_dtype=case.check_dtype, backend=backend
        )

    @pytest.mark.parametrize("case", ERROR_CASES, ids=_ids(ERROR_CASES))
    def test_error_case(self, backend: BackendProtocol, case: ErrorCase) -> None:
        with pytest.raises(case.error):
            case.call(REFERENCE)
        with pytest.raises(case.error):
            case.call(backend)

    @settings(
        max_examples=25,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.differing_executors],
    )
    @given(
        x=hnp.arrays(
            np.float64,
            hnp.array_shapes(min_dims=1, max_dims=3, max_side=6),
            elements=st.floats(-50, 50, allow_subnormal=False),
        ),
        name=st.sampled_from(["sin", "cos", "arctan", "tanh", "exp", "abs", "floor", "square", "sign"]),
        reduction=st.sampled_from(["sum", "mean", "max", "min", "cumsum"]),
    )
    def test_elementwise_and_reductions_on_any_shape(
        self, backend: BackendProtocol, x: Any, name: str, reduction: str
    ) -> None:
        expected = getattr(REFERENCE, reduction)(getattr(REFERENCE, name)(x), axis=0)
        actual = getattr(backend, reduction)(getattr(backend, name)(backend.from_numpy(x)), axis=0)
        assert_trees_close(actual, expected, rtol=1e-12, atol=1e-12, backend=backend)

    # ------------------------------------------------------------- padding is safe
    def test_padded_nonzero_never_reads_or_writes_real_data(self, backend: BackendProtocol) -> None:
        data = backend.asarray([0.0, 3.0, 0.0, 5.0, 0.0])
        (idx,) = backend.nonzero(data, size=5)
        real = int(backend.count_nonzero(data))
        taken = np.asarray(backend.take(data, idx))
        np.testing.assert_array_equal(taken[:real], [3.0, 5.0])
        assert np.isnan(taken[real:]).all(), "padded indices read real data"
        hits = np.asarray(backend.index_add(backend.zeros(5), idx, 1.0))
        np.testing.assert_array_equal(hits, [0.0, 1.0, 0.0, 1.0, 0.0])

    # --------------------------------------------------------------- gradients, jit
    def test_jit_static_argnums(self, backend: BackendProtocol) -> None:
        def scaled_sum(x: Any, n: int) -> Any:
            return backend.sum(backend.reshape(x, (n, -1)), axis=0)

        f = backend.jit(scaled_sum, static_argnums=1)
        out = f(backend.arange(6.0), 2)
        assert_trees_close(out, np.array([3.0, 5.0, 7.0]), backend=backend)

    def test_grad_matches_derivative(self, backend: BackendProtocol) -> None:
        x = np.linspace(-2.0, 2.0, 7)
        if not backend.supports_grad:
            for transform in (backend.grad, backend.value_and_grad):
                with pytest.raises(NotImplementedError, match="JAX"):
                    transform(lambda v: backend.sum(backend.sin(v)))
            return
        grad = backend.grad(lambda v: backend.sum(backend.sin(v) * v))(backend.asarray(x))
        assert_trees_close(grad, np.sin(x) + x * np.cos(x), rtol=1e-13, atol=1e-15, backend=backend)
        value, g2 = backend.value_and_grad(lambda a, b: backend.sum(a * b**2), argnums=(0, 1))(
            backend.asarray(x), backend.asarray(2 * x)
        )
        assert math.isclose(float(value), float(np.sum(x * 4 * x**2)), rel_tol=1e-13)
        assert_trees_close(g2, (4 * x**2, 4 * x * x), rtol=1e-13, backend=backend)

    # ----------------------------------------------------------------------- random
    def test_random_is_reproducible_and_keys_independent(self, backend: BackendProtocol) -> None:
        key = backend.random_key(42)
        a = np.asarray(backend.random_normal(key, (1000,)))
        b = np.asarray(backend.random_normal(backend.random_key(42), (1000,)))
        np.testing.assert_array_equal(a, b)
        k1, k2 = backend.random_split(key, 2)
        s1 = np.asarray(backend.random_normal(k1, (1000,)))
        s2 = np.asarray(backend.random_normal(k2, (1000,)))
        assert not np.allclose(s1, s2)
        assert not np.allclose(s1, a)
        assert abs(np.corrcoef(s1, s2)[0, 1]) < 0.15
        assert np.asarray(backend.random_split(key, 5)).shape[0] == 5

    def test_random_distributions(self, backend: BackendProtocol) -> None:
        keys = backend.random_split(backend.random_key(7), 3)
        n = 200_000
        u = np.asarray(backend.random_uniform(keys[0], (n,), minval=-1.0, maxval=3.0))
        assert u.dtype == np.float64
        assert u.min() >= -1.0
        assert u.max() < 3.0
        assert abs(u.mean() - 1.0) < 5 * (4 / math.sqrt(12)) / math.sqrt(n)
        z = np.asarray(backend.random_normal(keys[1], (n,), dtype="float32"))
        assert z.dtype == np.float32
        assert abs(z.mean()) < 5 / math.sqrt(n)
        assert abs(z.std() - 1.0) < 0.01
        lam = np.array([0.05, 2.0, 30.0])
        p = np.asarray(backend.random_poisson(keys[2], lam, (n // 10, 3)))
        assert p.dtype == np.int64
        assert p.min() >= 0
        np.testing.assert_allclose(p.mean(axis=0), lam, rtol=5 / math.sqrt(n // 10 * 0.05))

    def test_random_under_jit(self, backend: BackendProtocol) -> None:
        def draw(key: Any) -> Any:
            k1, k2, k3 = backend.random_split(key, 3)
            return (
                backend.random_uniform(k1, (4,)),
                backend.random_normal(k2, (4,)),
                backend.random_poisson(k3, backend.asarray([0.5, 3.0]), (2, 2)),
            )

        eager = draw(backend.random_key(3))
        jitted = backend.jit(draw)(backend.random_key(3))
        assert_trees_close(jitted, eager, rtol=1e-15)
