"""tau(q): power law and diffusion against scipy curve_fit and a closed form, both backends."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from xpcs_device import use_backend
from xpcs_device.testing import HAS_JAX
from xpcs_fit.tau_q import TauQFit, fit_tau_q

pytestmark = pytest.mark.usefixtures("fresh_backend")


Q = np.linspace(2e-3, 2e-2, 25)  # 1/Å
D_TRUE = 2e4  # Å²/s


def data(seed: int = 0, alpha: float = 2.0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    tau = Q**-alpha / D_TRUE
    err = 0.04 * tau
    return tau + err * rng.standard_normal(Q.size), err


def test_equals_scipy(backend: Any) -> None:
    optimize = pytest.importorskip("scipy.optimize", reason="scipy is in xpcs-fit's test extra")
    tau, err = data(alpha=1.8)
    result = fit_tau_q(Q, tau, err)
    assert isinstance(result, TauQFit)
    assert result.reason is None
    assert result.diffusion_reason is None
    opts: dict[str, Any] = dict(sigma=err, ftol=1e-15, xtol=1e-15, gtol=1e-15, jac="3-point", method="trf")
    popt, pcov = optimize.curve_fit(lambda q, t0, a: t0 * q**-a, Q, tau, p0=[1e-4, 2.0], **opts)
    np.testing.assert_allclose([result.tau0, result.alpha], popt, rtol=1e-6)
    np.testing.assert_allclose([result.tau0_err, result.alpha_err], np.sqrt(np.diag(pcov)), rtol=1e-5)
    dopt, dcov = optimize.curve_fit(lambda q, d: 1 / (d * q**2), Q, tau, p0=[1e4], **opts)
    assert result.diffusion == pytest.approx(dopt[0], rel=1e-8)
    assert result.diffusion_err == pytest.approx(np.sqrt(dcov[0, 0]), rel=1e-5)


def test_diffusion_closed_form_and_recovery(backend: Any) -> None:
    # alpha = 2: tau = tau0 / q², linear in tau0: weighted least squares in closed form.
    tau, err = data(seed=3)
    result = fit_tau_q(Q, tau, err, absolute_sigma=True)
    x, w = Q**-2.0, err**-2.0
    tau0 = np.sum(w * x * tau) / np.sum(w * x * x)
    tau0_err = 1 / np.sqrt(np.sum(w * x * x))
    assert result.diffusion == pytest.approx(1 / tau0, rel=1e-10)
    assert result.diffusion_err == pytest.approx(tau0_err / tau0**2, rel=1e-8)
    assert abs(result.diffusion - D_TRUE) < 4 * result.diffusion_err
    assert abs(result.alpha - 2.0) < 4 * result.alpha_err


def test_skips_nan_points_and_agrees_across_backends() -> None:
    tau, err = data(seed=1)
    tau[[3, 7]] = np.nan  # failed g2 fits
    err[10] = np.nan
    with use_backend("numpy"):
        ref = fit_tau_q(Q, tau, err)
    assert ref.used.sum() == Q.size - 3
    assert not ref.used[[3, 7, 10]].any()
    keep = ref.used
    alone = fit_tau_q(Q[keep], tau[keep], err[keep])
    assert alone.alpha == pytest.approx(ref.alpha, rel=1e-12)
    if HAS_JAX:
        with use_backend("jax"):
            out = fit_tau_q(Q, tau, err)
        for name in ("tau0", "tau0_err", "alpha", "alpha_err", "diffusion", "diffusion_err", "chi2_red"):
            assert getattr(out, name) == pytest.approx(getattr(ref, name), rel=1e-6)


@pytest.mark.parametrize(
    ("q", "tau", "err", "error", "match"),
    [
        (Q[:5], np.ones(6), None, ValueError, "same length"),
        (-Q, np.ones(25), None, ValueError, "q must be positive"),
        (Q, -np.ones(25), None, ValueError, "tau must be positive"),
        (Q, np.ones(25), np.zeros(25), ValueError, "tau_err must be positive"),
        (Q, np.r_[np.ones(2), np.full(23, np.nan)], None, ValueError, "only 2 usable"),
        (Q, np.ones((5, 5)), None, ValueError, "must be 1-D"),
        (Q, np.array(["a"] * 25), None, TypeError, "tau must be real numbers"),
    ],
)
def test_bad_input(backend: Any, q: Any, tau: Any, err: Any, error: type[Exception], match: str) -> None:
    with pytest.raises(error, match=match):
        fit_tau_q(q, tau, err)
