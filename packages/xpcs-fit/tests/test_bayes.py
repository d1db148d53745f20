"""NumPyro NUTS fits: recovery of known parameters from simulated Siegert data (truth and
noise level known), agreement with least squares, the warm start in the constrained
space, reproducibility, bins that cannot be used, bad input and the NumPy-backend error.

All sampling tests share one shape and sampler configuration (8 bins, 2 x (300 + 300)
draws), so the sampler compiles once per model for the whole file."""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

from xpcs_device import available_backends, reset_backend, use_backend
from xpcs_fit.bayes import G2Posterior, JaxBackendRequiredError, fit_g2_bayes
from xpcs_fit.leastsq import G2Fit, fit_g2
from xpcs_fit.models import DEFAULT_BOUNDS, PARAM_NAMES

HAS_JAX = importlib.util.find_spec("jax") is not None and "jax" in available_backends()
HAS_NUMPYRO = importlib.util.find_spec("numpyro") is not None
needs_jax = [
    pytest.mark.jax,
    pytest.mark.skipif(not (HAS_JAX and HAS_NUMPYRO), reason="JAX and NumPyro (xpcs-fit[jax]) not installed"),
]

DELAY = np.logspace(-5, 0, 40)
SIGMA = 0.004  # absolute noise of every g2 point
N_BINS = 8
SINGLE = np.stack(
    [np.linspace(0.15, 0.3, N_BINS), np.logspace(-4, -1.5, N_BINS), 1 + np.linspace(-4e-3, 4e-3, N_BINS)],
    axis=1,
)  # (n_bins, 3): contrast, tau (s), baseline
RUN: dict[str, Any] = {"num_warmup": 300, "num_samples": 300, "num_chains": 2}


def siegert(model: str, t: np.ndarray, p: np.ndarray) -> np.ndarray:
    """The APS forms in plain NumPy (independent of xpcs_fit.models): ``(n_delay, n_bins)``."""
    t = t[:, None]
    if model == "single":
        a, tau, d = p.T
        return np.asarray(d + a * np.exp(-2 * t / tau))
    if model == "stretched":
        a, tau, c, d = p.T
        return np.asarray(d + a * np.exp(-2 * (t / tau) ** c))
    a, t1, c1, t2, c2, f, d = p.T
    return np.asarray(d + a * (f * np.exp(-((t / t1) ** c1)) + (1 - f) * np.exp(-((t / t2) ** c2))) ** 2)


def simulate(model: str, truth: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray]:
    g2 = siegert(model, DELAY, truth)
    noise = np.random.default_rng(seed).normal(scale=SIGMA, size=g2.shape)
    return g2 + noise, np.full(g2.shape, SIGMA)


@pytest.fixture(autouse=True)
def _fresh_backend() -> Iterator[None]:
    reset_backend()
    yield
    reset_backend()


@pytest.fixture
def jax_backend() -> Iterator[Any]:
    if not (HAS_JAX and HAS_NUMPYRO):
        pytest.skip("JAX and NumPyro (xpcs-fit[jax]) not installed")
    with use_backend("jax") as b:
        yield b


@pytest.fixture(scope="module")
def data() -> tuple[np.ndarray, np.ndarray]:
    return simulate("single", SINGLE, seed=0)


@pytest.fixture(scope="module")
def posterior(data: tuple[np.ndarray, np.ndarray]) -> G2Posterior:
    if not (HAS_JAX and HAS_NUMPYRO):
        pytest.skip("JAX and NumPyro (xpcs-fit[jax]) not installed")
    reset_backend()
    with use_backend("jax"):
        g2, err = data
        return fit_g2_bayes(DELAY, g2, err, model="single", seed=1, **RUN)


# ------------------------------------------------------------------ NumPy backend
def test_numpy_backend_raises_an_error_naming_the_jax_backend(data: tuple[np.ndarray, np.ndarray]) -> None:
    g2, err = data
    with use_backend("numpy"), pytest.raises(JaxBackendRequiredError) as info:
        fit_g2_bayes(DELAY, g2, err)
    message = str(info.value)
    assert "JAX backend" in message
    assert "'numpy'" in message
    assert "XPCS_USE_JAX=1" in message
    assert "set_backend('jax')" in message


@pytest.mark.subprocess
def test_numpy_backend_never_imports_jax_or_numpyro() -> None:
    code = (
        "import json, sys\n"
        "import numpy as np\n"
        "from xpcs_fit.bayes import JaxBackendRequiredError, fit_g2_bayes\n"
        "t = np.logspace(-5, 0, 10); y = np.ones((10, 2))\n"
        "try:\n"
        "    fit_g2_bayes(t, y, 0.01 * y)\n"
        "except JaxBackendRequiredError:\n"
        "    raised = True\n"
        "else:\n"
        "    raised = False\n"
        "loaded = sorted(m for m in sys.modules if m.split('.')[0] in ('jax', 'jaxlib', 'numpyro'))\n"
        "print(json.dumps({'raised': raised, 'loaded': loaded}))\n"
    )
    env = {**os.environ, "XPCS_USE_JAX": "0"}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert json.loads(done.stdout.strip().splitlines()[-1]) == {"raised": True, "loaded": []}


CHAIN_METHODS_CHILD = """
import json
import numpy as np
import xpcs_device
xpcs_device.set_backend("jax")
from xpcs_fit.bayes import fit_g2_bayes
t = np.logspace(-5, 0, 40)
truth = np.array([[0.2, 1e-4, 1.0], [0.2, 1e-3, 1.0], [0.2, 1e-2, 1.0]])
g2 = truth[:, 2] + truth[:, 0] * np.exp(-2 * t[:, None] / truth[:, 1])
g2 = g2 + np.random.default_rng(0).normal(scale=0.004, size=g2.shape)
kw = dict(num_warmup=300, num_samples=300, num_chains=2, seed=1)
a, v = (fit_g2_bayes(t, g2, np.full_like(g2, 0.004), chain_method=m, **kw) for m in ("auto", "vectorized"))
print(json.dumps({
    "auto": a.chain_method,
    "between": float(np.max(np.abs(a.mean - v.mean) / a.std)),
    "truth": [float(np.max(np.abs(p.mean - truth) / p.std)) for p in (a, v)],
}))
"""


@pytest.mark.jax
@pytest.mark.subprocess
def test_parallel_and_vectorized_chains_sample_the_same_posterior() -> None:
    if not (HAS_JAX and HAS_NUMPYRO):
        pytest.skip("JAX and NumPyro (xpcs-fit[jax]) not installed")
    # Two CPU devices (fixed before JAX starts, hence a fresh interpreter): "auto" runs the
    # two chains in parallel. The programs differ from the sequential one, so the draws
    # differ (rounding, then trajectories); the posteriors agree within Monte Carlo error.
    code = CHAIN_METHODS_CHILD
    env = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=2", "XPCS_USE_JAX": "1"}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["auto"] == "parallel"
    assert result["between"] < 0.5
    assert max(result["truth"]) < 4


# ----------------------------------------------------------------------- recovery
@pytest.mark.parametrize("_", [pytest.param(None, marks=needs_jax, id="single")])
def test_posterior_recovers_known_parameters(posterior: G2Posterior, _: None) -> None:
    assert posterior.param_names == PARAM_NAMES["single"]
    assert posterior.mean.shape == posterior.std.shape == (N_BINS, 3)
    assert np.all(np.abs(posterior.mean - SINGLE) < 4 * posterior.std)
    # Coverage over 24 parameters (binomial: 68 % -> 16.3 +- 2.3, 95 % -> 22.8 +- 1.1).
    in68 = (posterior.ci68[..., 0] <= SINGLE) & (posterior.ci68[..., 1] >= SINGLE)
    in95 = (posterior.ci95[..., 0] <= SINGLE) & (posterior.ci95[..., 1] >= SINGLE)
    assert 10 <= in68.sum() <= 22
    assert in95.sum() >= 20
    assert np.all(posterior.ci95[..., 0] < posterior.ci68[..., 0])
    assert np.all(posterior.ci68[..., 1] < posterior.ci95[..., 1])
    # Converged: 2 x 300 draws give R-hat within a few per cent of 1 (1.01 needs more draws;
    # with 2 x 150, chance alone took the largest of 24 R-hats to 1.06 on one seed).
    assert np.all(posterior.r_hat < 1.05)
    assert np.all(posterior.ess_bulk > 50)
    assert np.all(posterior.ess_tail > 50)
    assert posterior.divergences.shape == (2,)
    assert np.all(posterior.divergences == 0)
    assert posterior.bfmi.shape == (2,)
    assert np.all(posterior.bfmi > 0.3)
    assert posterior.samples is not None
    assert posterior.samples.shape == (2, RUN["num_samples"], N_BINS, 3)
    np.testing.assert_allclose(posterior.samples.mean(axis=(0, 1)), posterior.mean, rtol=1e-12)
    assert posterior.converged(max_r_hat=1.05, min_ess=50).all()


@pytest.mark.jax
def test_posterior_agrees_with_least_squares(posterior: G2Posterior, data: Any, jax_backend: Any) -> None:
    g2, err = data
    # g2_err is absolute in the likelihood: compare with absolute-sigma least squares. On
    # well-posed data the posterior is nearly Gaussian around the least-squares optimum;
    # the tau prior (1/tau) shifts it by ~ (error / tau)^2 relative, far below the errors.
    lsq = fit_g2(DELAY, g2, err, model="single", absolute_sigma=True)
    assert lsq.success.all()
    assert np.all(np.abs(posterior.mean - lsq.params) < 0.5 * lsq.errors)
    ratio = posterior.std / lsq.errors
    assert np.all((ratio > 0.75) & (ratio < 1.33))


# ------------------------------------------------------------------- warm start
@pytest.mark.jax
def test_every_chain_starts_at_the_least_squares_values_in_constrained_space(
    posterior: G2Posterior, data: Any, jax_backend: Any
) -> None:
    g2, err = data
    from numpyro.distributions import biject_to, constraints

    lsq = fit_g2(DELAY, g2, err, model="single")
    assert posterior.lsq is not None
    assert lsq.success.all()
    # The warm start runs on the NumPy backend: the same fit to 1e-6 (fit_g2's promise).
    np.testing.assert_allclose(posterior.lsq.params, lsq.params, rtol=1e-6)
    lsq = posterior.lsq
    np.testing.assert_array_equal(posterior.init, lsq.params)
    assert posterior.init_source == ("least squares",) * N_BINS
    # ``start`` is the sampler's own initial (unconstrained) state mapped back by NumPyro.
    for chain in range(2):
        np.testing.assert_allclose(posterior.start[chain], lsq.params, rtol=1e-9)
    # The check can fail: read as unconstrained values (the old bug), the same numbers would
    # start the chains elsewhere.
    for k, name in enumerate(PARAM_NAMES["single"]):
        low, high = DEFAULT_BOUNDS["single"][name]
        misread = np.asarray(biject_to(constraints.interval(low, high))(lsq.params[:, k]))
        assert np.all(np.abs(misread - lsq.params[:, k]) > 1e-3 * np.abs(lsq.params[:, k]))


@pytest.mark.jax
def test_failed_and_on_bound_least_squares_bins_get_safe_reported_starts(data: Any, jax_backend: Any) -> None:
    g2, err = data
    lsq = fit_g2(DELAY, g2, err, model="single")
    params = lsq.params.copy()
    success = lsq.success.copy()
    reasons = list(lsq.reasons)
    params[3] = np.nan
    success[3] = False
    reasons[3] = "no convergence (simulated)"
    params[5, 2] = DEFAULT_BOUNDS["single"]["baseline"][0]  # on the lower bound
    broken = dataclasses.replace(lsq, params=params, success=success, reasons=tuple(reasons))
    post = fit_g2_bayes(DELAY, g2, err, model="single", seed=1, init=broken, **RUN)
    (a_lo, a_hi), (t_lo, t_hi), (d_lo, d_hi) = DEFAULT_BOUNDS["single"].values()
    np.testing.assert_allclose(post.init[3], [(a_lo + a_hi) / 2, np.sqrt(t_lo * t_hi), (d_lo + d_hi) / 2])
    assert post.init_source[3] == "prior median (least squares failed: no convergence (simulated))"
    assert post.init[5, 2] == pytest.approx(d_lo + 1e-4 * (d_hi - d_lo), rel=1e-12)
    assert post.init_source[5] == "least squares, moved inside the bounds"
    assert post.init_source[0] == "least squares"
    np.testing.assert_allclose(post.start, np.broadcast_to(post.init, post.start.shape), rtol=1e-9)
    assert post.success.all()


@pytest.mark.jax
def test_given_initial_values_are_used_as_given(posterior: G2Posterior, data: Any, jax_backend: Any) -> None:
    g2, err = data
    init = {name: posterior.init[:, k] for k, name in enumerate(posterior.param_names)}
    post = fit_g2_bayes(DELAY, g2, err, model="single", seed=1, init=init, **RUN)
    assert post.lsq is None
    assert post.init_source == ("given",) * N_BINS
    # Same start, seed and data as the least-squares warm start: the very same draws.
    assert post.samples is not None
    assert posterior.samples is not None
    np.testing.assert_array_equal(post.samples, posterior.samples)


# ------------------------------------------------------------- reproducibility
@pytest.mark.jax
def test_same_seed_gives_identical_draws_other_seed_differs(
    posterior: G2Posterior, data: Any, jax_backend: Any
) -> None:
    g2, err = data
    again = fit_g2_bayes(DELAY, g2, err, model="single", seed=1, init=posterior.lsq, **RUN)
    other = fit_g2_bayes(
        DELAY, g2, err, model="single", seed=2, init=posterior.lsq, keep_samples=False, **RUN
    )
    assert again.samples is not None
    assert posterior.samples is not None
    np.testing.assert_array_equal(again.samples, posterior.samples)
    np.testing.assert_array_equal(again.bfmi, posterior.bfmi)
    assert other.samples is None
    assert not np.array_equal(other.mean, posterior.mean)
    assert np.all(np.abs(other.mean - posterior.mean) < 0.5 * posterior.std)


# ---------------------------------------------------------- bins that are skipped
@pytest.mark.jax
def test_a_bin_with_invalid_data_is_skipped_and_reported(
    posterior: G2Posterior, data: Any, jax_backend: Any
) -> None:
    g2, err = (np.insert(a, 4, 1.0, axis=1) for a in data)
    g2[7, 4] = np.nan
    g2_before = g2.copy()
    init = {n: np.insert(posterior.init[:, k], 4, 0.5) for k, n in enumerate(posterior.param_names)}
    init["tau"][4] = 1e-3
    init["baseline"][4] = 1.0
    post = fit_g2_bayes(DELAY, g2, err, model="single", seed=1, init=init, **RUN)
    np.testing.assert_array_equal(g2, g2_before)  # inputs are never modified
    assert post.success.tolist() == [True] * 4 + [False] + [True] * 4
    assert post.reasons[4] == "g2 has 1 non-finite value(s)"
    assert np.isnan(post.mean[4]).all()
    assert np.isnan(post.r_hat[4]).all()
    # The other bins saw the same data, start and keys as ``posterior``: the same draws.
    keep = np.arange(9) != 4
    assert post.samples is not None
    assert posterior.samples is not None
    np.testing.assert_array_equal(post.samples[:, :, keep], posterior.samples)


# -------------------------------------------------------------- the other models
OTHER = {
    "stretched": np.array([[0.25, 3e-3, 0.75, 1.0], [0.2, 3e-4, 1.3, 1.002], [0.3, 3e-2, 1.0, 0.998]]),
    "double": np.array([[0.3, 2e-4, 1.0, 2e-2, 1.0, 0.5, 1.0], [0.25, 1e-4, 1.0, 1e-2, 1.0, 0.3, 1.0]]),
}


@pytest.mark.jax
@pytest.mark.parametrize("model", list(OTHER))
def test_stretched_and_double_models_recover_known_parameters(model: str, jax_backend: Any) -> None:
    truth = OTHER[model]
    g2, err = simulate(model, truth, seed=3)
    post = fit_g2_bayes(DELAY, g2, err, model=model, seed=0, **RUN)
    assert post.param_names == PARAM_NAMES[model]
    assert post.lsq is not None
    assert post.lsq.success.all()
    assert np.all(np.abs(post.mean - truth) < 4 * post.std)
    assert np.all(post.r_hat < 1.1)
    assert np.all(post.divergences == 0)


# --------------------------------------------------------------------- bad input
BAD_INPUTS = [
    ({"delay": DELAY[:, None]}, ValueError, "delay must be a 1-D array"),
    ({"delay": DELAY - DELAY[0]}, ValueError, "positive and finite"),
    ({"g2": np.ones((39, 8))}, ValueError, r"g2 must have shape \(n_delay, n_bins\)"),
    ({"g2": np.full((40, 8), "x")}, TypeError, "g2 must be real numbers"),
    ({"g2_err": None}, ValueError, "g2_err is required"),
    ({"g2_err": np.ones((40, 7))}, ValueError, "g2_err must have the shape of g2"),
    ({"g2": np.full((40, 8), np.nan)}, ValueError, "no bin has valid data"),
    ({"model": "triple"}, ValueError, "unknown g2 model 'triple'"),
    ({"num_samples": 4}, ValueError, "num_samples must be an integer >= 8"),
    ({"num_warmup": 0}, ValueError, "num_warmup must be an integer >= 1"),
    ({"num_chains": 1.5}, ValueError, "num_chains must be an integer >= 1"),
    ({"seed": 1.0}, TypeError, "seed must be an integer"),
    ({"chain_method": "threads"}, ValueError, "chain_method must be one of"),
    ({"target_accept_prob": 1.0}, ValueError, r"target_accept_prob must be in \(0, 1\)"),
    ({"bounds": {"gamma": (0, 1)}}, ValueError, "unknown parameter"),
    ({"init": [0.2, 1e-3, 1.0]}, TypeError, "init must be None, a dict by parameter name or a G2Fit"),
    ({"init": {"beta": 1.0}}, ValueError, r"init names unknown parameter\(s\) \['beta'\]"),
    ({"init": {"tau": 1e3}}, ValueError, r"init\['tau'\] must lie strictly inside its bounds"),
    ({"init": {"contrast": 0.04}}, ValueError, r"init\['contrast'\] must lie strictly inside"),
    ({"init": {"tau": np.ones(3) * 1e-3}}, ValueError, r"one value per bin \(8,\)"),
]


@pytest.mark.jax
@pytest.mark.parametrize(("change", "error", "match"), BAD_INPUTS, ids=[m for _, _, m in BAD_INPUTS])
def test_bad_input_raises_a_clear_error(
    change: dict[str, Any], error: type[Exception], match: str, data: Any, jax_backend: Any
) -> None:
    args: dict[str, Any] = {"delay": DELAY, "g2": data[0], "g2_err": data[1], **RUN, **change}
    with pytest.raises(error, match=match):
        fit_g2_bayes(**args)


@pytest.mark.jax
def test_init_from_a_fit_of_another_model_is_rejected(data: Any, jax_backend: Any) -> None:
    g2, err = data
    lsq = fit_g2(DELAY, g2, err, model="stretched")
    with pytest.raises(ValueError, match="least-squares fit of the 'stretched' model"):
        fit_g2_bayes(DELAY, g2, err, model="single", init=lsq, **RUN)


@pytest.mark.jax
def test_parallel_chains_need_a_device_per_chain(data: Any, jax_backend: Any) -> None:
    g2, err = data
    import jax

    if jax.local_device_count() >= 2:
        pytest.skip("this machine has a device per chain")
    init = {"contrast": 0.2, "tau": 1e-3, "baseline": 1.0}
    with pytest.raises(ValueError, match="needs a device per chain: 2 chains, 1 device"):
        fit_g2_bayes(DELAY, g2, err, init=init, chain_method="parallel", **RUN)


@pytest.mark.parametrize("_", [pytest.param(None, marks=needs_jax, id="single")])
def test_result_is_frozen_and_read_only(posterior: G2Posterior, _: None) -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        posterior.mean = posterior.std  # type: ignore[misc]
    with pytest.raises(ValueError, match="read-only"):
        posterior.mean[0, 0] = 0.0
    assert posterior.value("tau").shape == (N_BINS,)
    np.testing.assert_array_equal(posterior.interval("tau", 95), posterior.ci95[:, 1])
    with pytest.raises(KeyError, match="no parameter 'beta'"):
        posterior.error("beta")
    assert posterior.priors["tau"] == "log-uniform(1e-05, 100)"
    assert posterior.priors["contrast"] == "uniform(0.04, 0.8)"
    assert isinstance(posterior.lsq, G2Fit)
