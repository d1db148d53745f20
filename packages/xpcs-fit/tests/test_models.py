"""g2 models: analytic values and identities, derivatives against autodiff and finite
differences, NumPy vs JAX, jit."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from xpcs_device import use_backend
from xpcs_device.testing import HAS_JAX
from xpcs_fit.models import (
    DEFAULT_BOUNDS,
    PARAM_NAMES,
    double_exp_func,
    g2_jacobian,
    g2_model,
    g2_value_and_jacobian,
    power_law,
    single_exp_func,
    stretched_exp_func,
)

pytestmark = pytest.mark.usefixtures("fresh_backend")


DELAY = np.logspace(-5, 1, 40)
PARAMS = {
    "single": np.array([0.3, 0.01, 1.001]),
    "stretched": np.array([0.25, 0.02, 0.7, 0.999]),
    "double": np.array([0.3, 1e-3, 1.2, 0.2, 0.8, 0.35, 1.0]),
}


def test_names_and_bounds_agree() -> None:
    assert set(PARAM_NAMES) == set(DEFAULT_BOUNDS) == {"single", "stretched", "double"}
    for model, names in PARAM_NAMES.items():
        assert tuple(DEFAULT_BOUNDS[model]) == names
        assert all(lo < hi for lo, hi in DEFAULT_BOUNDS[model].values())
    assert DEFAULT_BOUNDS["stretched"]["tau"] == (1e-5, 100.0)


def test_analytic_values(backend: Any) -> None:
    # exp(-2 t / tau) = 1/2 at t = tau ln2 / 2: half the contrast is left.
    a, tau, d = 0.4, 0.02, 1.01
    t_half = tau * math.log(2) / 2
    out = np.asarray(single_exp_func(np.array([t_half, 1e6 * tau]), a, tau, d))
    np.testing.assert_allclose(out, [d + a / 2, d], rtol=1e-14)
    # KWW at t = tau: d + a e^-2 for any beta.
    for beta in (0.5, 1.0, 1.7):
        assert float(stretched_exp_func(tau, a, tau, beta, d)) == pytest.approx(
            d + a * math.exp(-2), rel=1e-14
        )
    # double at t = 0+: d + a (fraction + 1 - fraction)^2 = d + a.
    assert float(double_exp_func(1e-300, a, 1e-3, 1.0, 1.0, 1.0, 0.3, d)) == pytest.approx(d + a, rel=1e-14)
    np.testing.assert_allclose(
        np.asarray(power_law(np.array([0.5, 2.0]), 3.0, 2.0)), [12.0, 0.75], rtol=1e-14
    )


def test_model_identities(backend: Any) -> None:
    t = DELAY
    single = np.asarray(single_exp_func(t, 0.3, 0.01, 1.0))
    np.testing.assert_allclose(np.asarray(stretched_exp_func(t, 0.3, 0.01, 1.0, 1.0)), single, rtol=1e-13)
    kww = np.asarray(stretched_exp_func(t, 0.3, 0.01, 0.8, 1.0))
    # One component (fraction 1), or two equal components: the double is the KWW.
    for f, tau2 in ((1.0, 5.0), (0.3, 0.01)):
        dbl = np.asarray(double_exp_func(t, 0.3, 0.01, 0.8, tau2, 0.8, f, 1.0))
        np.testing.assert_allclose(dbl, kww, rtol=1e-13)
    # The Siegert cross term: two well separated components give a plateau at d + a f^2.
    plateau = np.asarray(double_exp_func(np.array([1e-2]), 0.3, 1e-5, 1.0, 1e3, 1.0, 0.4, 1.0))
    np.testing.assert_allclose(plateau, 1.0 + 0.3 * 0.6**2, rtol=1e-4)


@pytest.mark.parametrize("model", list(PARAM_NAMES))
def test_batched_model_equals_public_functions(backend: Any, model: str) -> None:
    funcs: dict[str, Callable[..., Any]] = {
        "single": single_exp_func,
        "stretched": stretched_exp_func,
        "double": double_exp_func,
    }
    params = np.stack([PARAMS[model], PARAMS[model] * 1.01])  # (2, n_params)
    batched = np.asarray(g2_model(backend, model, DELAY, params[None]))  # (1, 2, n_delay)
    assert batched.shape == (1, 2, DELAY.size)
    for k in range(2):
        expected = np.asarray(funcs[model](DELAY, *params[k]))
        np.testing.assert_allclose(batched[0, k], expected, rtol=1e-14)


@pytest.mark.parametrize("model", list(PARAM_NAMES))
def test_jacobian_matches_finite_differences(backend: Any, model: str) -> None:
    p = PARAMS[model]
    jac = np.asarray(g2_jacobian(backend, model, DELAY, p[None]))[0]
    assert jac.shape == (DELAY.size, p.size)
    for k in range(p.size):
        h = 1e-6 * abs(p[k])
        up, down = p.copy(), p.copy()
        up[k] += h
        down[k] -= h
        fd = (
            np.asarray(g2_model(backend, model, DELAY, up))
            - np.asarray(g2_model(backend, model, DELAY, down))
        ) / (2 * h)
        np.testing.assert_allclose(jac[:, k], fd, rtol=1e-6, atol=1e-8 * np.max(np.abs(fd)))


@pytest.mark.parametrize("model", list(PARAM_NAMES))
def test_value_and_jacobian_in_both_layouts(backend: Any, model: str) -> None:
    """The fits' combined evaluation (powers as exp-log) gives g2_model's values (power), and the
    same Jacobian with the parameter axis last or before the delays (the Jacobian itself is
    checked against finite differences and autodiff below)."""
    params = np.stack([PARAMS[model], PARAMS[model] * 1.01])
    value, jac = (np.asarray(v) for v in g2_value_and_jacobian(backend, model, DELAY, params))
    _, jac_t = g2_value_and_jacobian(backend, model, DELAY, params, params_last=False)
    np.testing.assert_allclose(value, np.asarray(g2_model(backend, model, DELAY, params)), rtol=1e-13)
    np.testing.assert_array_equal(np.asarray(jac_t), np.swapaxes(jac, -1, -2))


@pytest.mark.jax
@pytest.mark.skipif(not HAS_JAX, reason="JAX (xpcs-jax) not installed")
@pytest.mark.parametrize("model", list(PARAM_NAMES))
def test_jacobian_matches_autodiff_and_jit(model: str) -> None:
    import jax

    with use_backend("jax") as b:
        p = PARAMS[model]
        auto = jax.jacfwd(lambda q: g2_model(b, model, DELAY, q))(p)
        analytic = jax.jit(lambda q: g2_jacobian(b, model, DELAY, q))(p)
        np.testing.assert_allclose(np.asarray(analytic), np.asarray(auto), rtol=1e-12, atol=1e-14)
        jitted = jax.jit(lambda q: g2_model(b, model, DELAY, q))(p)
        eager = np.asarray(g2_model(b, model, DELAY, p))
        np.testing.assert_allclose(np.asarray(jitted), eager, rtol=1e-14)
    with use_backend("numpy") as nb:
        np.testing.assert_allclose(np.asarray(g2_model(nb, model, DELAY, p)), eager, rtol=1e-14)
        np.testing.assert_allclose(
            np.asarray(g2_jacobian(nb, model, DELAY, p)), np.asarray(analytic), rtol=1e-12
        )


def test_bad_model_and_shapes(backend: Any) -> None:
    with pytest.raises(ValueError, match="unknown g2 model 'kww'"):
        g2_model(backend, "kww", DELAY, PARAMS["single"])
    with pytest.raises(ValueError, match="last axis of 4"):
        g2_model(backend, "stretched", DELAY, PARAMS["single"])
