"""Batched bounded least squares: scipy curve_fit as oracle, recovery and coverage on
simulated Siegert data, NumPy vs JAX, jit, failure flags and bad input."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any, cast

import numpy as np
import pytest

from xpcs_device import use_backend
from xpcs_device.testing import HAS_JAX
from xpcs_fit._solver import solver
from xpcs_fit.guess import estimate_params
from xpcs_fit.leastsq import G2Fit, fit_g2
from xpcs_fit.models import DEFAULT_BOUNDS, PARAM_NAMES

pytestmark = pytest.mark.usefixtures("fresh_backend")

MODELS = list(PARAM_NAMES)

DELAY = np.logspace(-5, 0, 48)
TRUTH = {
    "single": [0.3, 2e-3, 1.0],
    "stretched": [0.25, 3e-3, 0.75, 1.0],
    "double": [0.3, 2e-4, 1.0, 2e-2, 1.0, 0.5, 1.0],
}


@pytest.fixture(scope="module")
def curve_fit() -> Callable[..., Any]:
    scipy_optimize = pytest.importorskip("scipy.optimize", reason="scipy is in xpcs-fit's test extra")
    return scipy_optimize.curve_fit  # type: ignore[no-any-return]


def np_model(model: str, t: np.ndarray, *p: float) -> np.ndarray:
    """The APS forms in plain NumPy, to simulate data and to hand to scipy."""
    if model == "single":
        a, tau, d = p
        return d + a * np.exp(-2 * t / tau)
    if model == "stretched":
        a, tau, c, d = p
        return d + a * np.exp(-2 * (t / tau) ** c)
    a, t1, c1, t2, c2, f, d = p
    return d + a * (f * np.exp(-((t / t1) ** c1)) + (1 - f) * np.exp(-((t / t2) ** c2))) ** 2


def simulate(
    model: str, n_bins: int, seed: int, noise: float = 2e-3, truth: Any = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(truth (n_bins, n), g2 (n_delay, n_bins), err)``: tau spread over the bins, Gaussian noise
    whose size varies with the delay (as multi-tau errors do)."""
    rng = np.random.default_rng(seed)
    p = np.tile(np.asarray(TRUTH[model] if truth is None else truth, dtype=float), (n_bins, 1))
    spread = np.logspace(-0.5, 0.5, n_bins)
    for k, name in enumerate(PARAM_NAMES[model]):
        if name.startswith("tau"):
            p[:, k] *= spread
    clean = np.stack([np_model(model, DELAY, *row) for row in p], axis=1)
    err = noise * (1 + np.linspace(0, 1, DELAY.size))[:, None] * np.ones((1, n_bins))
    return p, clean + err * rng.standard_normal(clean.shape), err


def complex_step_jacobian(model: str) -> Callable[..., np.ndarray]:
    """The model's Jacobian by complex-step differentiation (exact to rounding), for scipy: its
    finite-difference default is too coarse to compare covariances of the double model."""

    def jac(t: np.ndarray, *p: float) -> np.ndarray:
        cols = []
        for k in range(len(p)):
            step = 1e-30 * max(abs(p[k]), 1e-300)
            q = np.array(p, dtype=complex)
            q[k] += 1j * step
            cols.append(np_model(model, t, *q).imag / step)
        return np.stack(cols, axis=-1)

    return jac


def bounds_arrays(model: str) -> tuple[list[float], list[float]]:
    b = DEFAULT_BOUNDS[model]
    names = PARAM_NAMES[model]
    return [b[n][0] for n in names], [b[n][1] for n in names]


# -------------------------------------------------------------------- scipy oracle
@pytest.mark.parametrize("model", MODELS)
def test_equals_scipy_curve_fit(backend: Any, model: str, curve_fit: Callable[..., Any]) -> None:
    truth, g2, err = simulate(model, 5, seed=11)
    result = fit_g2(DELAY, g2, err, model)
    assert result.success.all(), result.reasons
    lo, hi = bounds_arrays(model)
    for k in range(g2.shape[1]):
        # scipy starts from the truth nudged by 5 %, not from our answer.
        start = np.clip(truth[k] * 1.05, lo, hi)
        popt, pcov = curve_fit(
            lambda t, *p: np_model(model, t, *p),
            DELAY,
            g2[:, k],
            p0=start,
            sigma=err[:, k],
            bounds=(lo, hi),
            jac=complex_step_jacobian(model),
            ftol=1e-15,
            xtol=1e-15,
            gtol=1e-15,
            max_nfev=20000,
        )
        np.testing.assert_allclose(result.params[k], popt, rtol=1e-5)
        np.testing.assert_allclose(result.errors[k], np.sqrt(np.diag(pcov)), rtol=1e-6)
        resid = (g2[:, k] - np_model(model, DELAY, *popt)) / err[:, k]
        assert result.chi2_red[k] == pytest.approx(np.sum(resid**2) / (DELAY.size - len(popt)), rel=1e-8)


def test_equals_scipy_on_a_bound_and_with_fixed_and_absolute_sigma(
    backend: Any, curve_fit: Callable[..., Any]
) -> None:
    # Baseline 0.94 lies below its bound 0.95: the solution sits on the bound.
    _, g2, err = simulate("stretched", 3, seed=5, truth=[0.3, 3e-3, 0.8, 0.94])
    lo, hi = bounds_arrays("stretched")
    result = fit_g2(DELAY, g2, err, "stretched")
    fixed = fit_g2(DELAY, g2, err, "stretched", fixed={"beta": 0.8}, absolute_sigma=True)
    assert result.success.all()
    assert fixed.success.all()
    np.testing.assert_array_equal(result.value("baseline"), 0.95)
    assert fixed.fixed == ("beta",)
    np.testing.assert_array_equal(fixed.value("beta"), 0.8)
    np.testing.assert_array_equal(fixed.error("beta"), 0.0)
    for k in range(3):
        opts: dict[str, Any] = dict(ftol=1e-15, xtol=1e-15, gtol=1e-15, sigma=err[:, k])
        popt, pcov = curve_fit(
            lambda t, *p: np_model("stretched", t, *p),
            DELAY,
            g2[:, k],
            p0=[0.3, 3e-3, 1.0, 1.0],
            bounds=(lo, hi),
            jac=complex_step_jacobian("stretched"),
            **opts,
        )
        np.testing.assert_allclose(result.params[k], popt, rtol=1e-5)
        np.testing.assert_allclose(result.errors[k], np.sqrt(np.diag(pcov)), rtol=1e-6)
        popt, pcov = curve_fit(
            lambda t, a, tau, d: np_model("stretched", t, a, tau, 0.8, d),
            DELAY,
            g2[:, k],
            p0=[0.3, 3e-3, 1.0],
            bounds=([lo[0], lo[1], lo[3]], [hi[0], hi[1], hi[3]]),
            absolute_sigma=True,
            jac="3-point",
            **opts,
        )
        np.testing.assert_allclose(fixed.params[k, [0, 1, 3]], popt, rtol=1e-5)
        np.testing.assert_allclose(fixed.errors[k, [0, 1, 3]], np.sqrt(np.diag(pcov)), rtol=1e-5)


# ------------------------------------------------------- recovery and coverage
@pytest.mark.parametrize("model", MODELS)
def test_recovers_truth_and_one_sigma_covers_68_percent(backend: Any, model: str) -> None:
    # 300 independent noise draws of one truth, fitted in one call (each bin is one seed).
    n = 300
    truth = np.asarray(TRUTH[model], dtype=float)
    rng = np.random.default_rng(2024)
    err = 3e-3 * np.ones((DELAY.size, n))
    g2 = np_model(model, DELAY, *truth)[:, None] + err * rng.standard_normal((DELAY.size, n))
    result = fit_g2(DELAY, g2, err, model)
    assert result.success.all()
    pulls = (result.params - truth) / result.errors
    # Unbiased to a fraction of the spread, and the 1-sigma intervals hold the truth
    # 68.3 % of the time (binomial sd over 300 draws: 2.7 %).
    assert np.all(np.abs(np.median(pulls, axis=0)) < 0.25)
    covered = np.mean(np.abs(pulls) < 1, axis=0)
    assert np.all(np.abs(covered - 0.683) < 0.09), covered


# ------------------------------------------------------------ both backends, jit
@pytest.mark.jax
@pytest.mark.skipif(not HAS_JAX, reason="JAX (xpcs-jax) not installed")
@pytest.mark.parametrize("model", MODELS)
def test_numpy_and_jax_agree(model: str) -> None:
    _, g2, err = simulate(model, 12, seed=3)
    g2[5, 4] = np.nan  # one failed bin on both
    with use_backend("numpy"):
        ref = fit_g2(DELAY, g2, err, model)
    with use_backend("jax"):
        out = fit_g2(DELAY, g2, err, model)
    np.testing.assert_array_equal(out.success, ref.success)
    assert out.reasons == ref.reasons
    np.testing.assert_allclose(out.params, ref.params, rtol=1e-6)
    np.testing.assert_allclose(out.errors, ref.errors, rtol=1e-6)
    np.testing.assert_allclose(out.chi2_red, ref.chi2_red, rtol=1e-6)


@pytest.mark.jax
@pytest.mark.skipif(not HAS_JAX, reason="JAX (xpcs-jax) not installed")
def test_solver_under_jax_jit() -> None:
    import jax

    _, g2, err = simulate("stretched", 4, seed=8)
    lo, hi = (np.asarray(v) for v in bounds_arrays("stretched"))
    with use_backend("numpy") as nb:
        p0 = np.asarray(estimate_params(nb, "stretched", DELAY, g2.T, lo, hi))
        args = (DELAY, g2.T, 1 / err.T, p0, lo, hi, np.zeros(4, dtype=bool))
        ref = solver(cast(Any, nb), "stretched", (True,) * 4, 200, 1e-14, 1e-12)(*args)
    with use_backend("jax") as jb:
        iterate = solver(cast(Any, jb), "stretched", (True,) * 4, 200, 1e-14, 1e-12)
        # Traced arguments throughout (no Python branching on data), and a second outer jit.
        out = jax.jit(iterate)(*args)
    assert np.asarray(ref[3]).all()  # converged
    np.testing.assert_array_equal(np.asarray(out[3]), ref[3])
    for mine, theirs in zip(out[:3], ref[:3], strict=True):
        np.testing.assert_allclose(np.asarray(mine), theirs, rtol=1e-6)


# ------------------------------------------------------------------ failure flags
def test_failed_bins_are_flagged_with_nan(backend: Any) -> None:
    _, g2, err = simulate("single", 6, seed=4)
    g2_in, err_in = g2.copy(), err.copy()
    g2[3, 0] = np.nan
    g2[7, 1] = np.inf
    err[2, 2] = 0.0
    err[9, 3] = -1e-3
    err[1, 4] = np.nan
    result = fit_g2(DELAY, g2, err, "single")
    assert result.success.tolist() == [False] * 5 + [True]
    assert result.reasons[0] == "g2 has 1 non-finite value(s)"
    assert result.reasons[1] == "g2 has 1 non-finite value(s)"
    for k in (2, 3, 4):
        assert result.reasons[k] == "g2_err has 1 value(s) that are not positive and finite"
    assert result.reasons[5] is None
    assert np.isnan(result.params[:5]).all()
    assert np.isnan(result.errors[:5]).all()
    assert np.isnan(result.chi2_red[:5]).all()
    # The good bin is fitted as if alone.
    alone = fit_g2(DELAY, g2_in[:, 5], err_in[:, 5], "single")
    np.testing.assert_allclose(result.params[5], alone.params[0], rtol=1e-12)
    # Inputs are never modified, results are read-only.
    assert np.isnan(g2[3, 0])
    assert err[2, 2] == 0.0
    with pytest.raises(ValueError, match="read-only"):
        result.params[5, 0] = 1.0


def test_no_convergence_and_singular_covariance_are_flagged(backend: Any) -> None:
    _, g2, err = simulate("double", 3, seed=6)
    slow = fit_g2(DELAY, g2, err, "double", max_iter=2)
    assert not slow.success.any()
    assert set(slow.reasons) == {"no convergence within max_iter iterations"}
    assert np.isnan(slow.params).all()
    # Two identical components: the fraction between them is not determined by the data.
    same = {"tau1": 2e-3, "tau2": 2e-3, "beta1": 1.0, "beta2": 1.0}
    singular = fit_g2(DELAY, g2, err, "double", fixed=same)
    assert not singular.success.any()
    assert all(r is not None and r.startswith("singular covariance") for r in singular.reasons)
    assert np.isnan(singular.params).all()
    assert np.isnan(singular.errors).all()


# --------------------------------------------------------------------- input rules
def test_options_and_shapes(backend: Any) -> None:
    truth, g2, err = simulate("stretched", 4, seed=9)
    full = fit_g2(DELAY, g2, err, "stretched")
    assert isinstance(full, G2Fit)
    assert full.params.shape == full.errors.shape == (4, 4)
    assert full.param_names == ("contrast", "tau", "beta", "baseline")
    # A partial p0 dict (the rest estimated), an array p0 and per-bin p0 reach the same minimum.
    for p0 in ({"tau": 1e-3}, np.array([0.2, 1e-3, 1.0, 1.0]), truth):
        np.testing.assert_allclose(fit_g2(DELAY, g2, err, "stretched", p0=p0).params, full.params, rtol=1e-6)
    # One bin as a 1-D g2; partial bounds fill from the defaults.
    one = fit_g2(DELAY, g2[:, 2], err[:, 2], "stretched", bounds={"beta": (0.5, 1.5)})
    assert one.params.shape == (1, 4)
    assert one.bounds["tau"] == DEFAULT_BOUNDS["stretched"]["tau"]
    np.testing.assert_allclose(one.params[0], full.params[2], rtol=1e-6)
    # Unit weights without errors; per-bin fixed values.
    assert fit_g2(DELAY, g2, None, "single").success.all()
    per_bin = fit_g2(DELAY, g2, err, "stretched", fixed={"beta": np.array([0.7, 0.75, 0.8, 0.85])})
    np.testing.assert_array_equal(per_bin.value("beta"), [0.7, 0.75, 0.8, 0.85])
    with pytest.raises(KeyError, match="no parameter 'beta1'"):
        full.value("beta1")


BAD_INPUT = [
    (dict(model="kww"), ValueError, "unknown g2 model 'kww'"),
    (dict(delay=np.logspace(-5, 0, 47)), ValueError, r"g2 must have shape \(n_delay, n_bins\) = \(47"),
    (dict(delay=-np.logspace(-5, 0, 48)), ValueError, "delay must be positive and finite"),
    (dict(delay=np.logspace(0, -5, 48)), ValueError, "strictly increasing"),
    (dict(g2_err=np.ones((48, 2))), ValueError, "g2_err must have the shape of g2"),
    (dict(g2=np.full((48, 3), "x")), TypeError, "g2 must be real numbers"),
    (
        dict(bounds={"taux": (0, 1)}),
        ValueError,
        r"unknown parameter\(s\) \['taux'\].*contrast, tau, baseline",
    ),
    (dict(bounds={"contrast": (0.5, 0.5)}), ValueError, "needs low < high"),
    (dict(bounds={"tau": (0.0, 1.0)}), ValueError, "tau must stay positive"),
    (dict(bounds={"tau": 1.0}), ValueError, r"must be a \(low, high\) pair"),
    (dict(p0={"tau": 1e3}), ValueError, r"p0\['tau'\] lies outside its bounds \[1e-05, 100.0\]"),
    (dict(p0=np.ones(4)), ValueError, r"p0 must be a dict by parameter name or an array of shape \(3,\)"),
    (dict(p0={"contrast": [0.3, 0.3]}), ValueError, r"one value per bin \(3,\)"),
    (dict(fixed={"beta": 1.0}), ValueError, r"unknown parameter\(s\) \['beta'\]"),
    (dict(fixed={"tau": -1.0}), ValueError, "must be finite and positive"),
    (dict(fixed={"tau": 1.0}, p0={"tau": 1.0}), ValueError, "both fixed and in p0"),
    (dict(fixed={"contrast": 0.3, "tau": 1.0, "baseline": 1.0}), ValueError, "nothing to fit"),
    (dict(delay=DELAY[:3], g2=np.ones((3, 3)), g2_err=None), ValueError, "too few points: 3 delays for 3"),
    (dict(max_iter=0), ValueError, "max_iter must be a positive integer"),
]


@pytest.mark.parametrize(("change", "error", "match"), BAD_INPUT)
def test_bad_input_raises(backend: Any, change: dict[str, Any], error: type[Exception], match: str) -> None:
    _, g2, err = simulate("single", 3, seed=1)
    kwargs: dict[str, Any] = dict(delay=DELAY, g2=g2, g2_err=err, model="single") | change
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(error, match=match):
            fit_g2(**kwargs)
