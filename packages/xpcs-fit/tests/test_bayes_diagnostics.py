"""MCMC diagnostics against independent implementations (numpyro.diagnostics, scipy's ranks
and normal quantiles), textbook values on synthetic chains with known autocorrelation, and
BFMI from its definition on hand-computed energy sequences."""

from __future__ import annotations

from statistics import NormalDist
from typing import Any

import numpy as np
import pytest

from xpcs_fit import diagnostics as dg


def ar1(rho: float, n_chains: int, n_draws: int, n_series: int, seed: int) -> np.ndarray:
    """Stationary Gaussian AR(1) chains ``(n_chains, n_draws, n_series)``, unit variance;
    their integrated autocorrelation time is ``(1 + rho) / (1 - rho)``."""
    rng = np.random.default_rng(seed)
    x = np.empty((n_chains, n_draws, n_series))
    x[:, 0] = rng.normal(size=(n_chains, n_series))
    noise = rng.normal(size=(n_chains, n_draws, n_series)) * np.sqrt(1 - rho**2)
    for i in range(1, n_draws):
        x[:, i] = rho * x[:, i - 1] + noise[:, i]
    return x


@pytest.fixture(scope="module")
def numpyro_diagnostics() -> Any:
    return pytest.importorskip("numpyro.diagnostics", reason="numpyro comes with xpcs-fit[jax]")


# ------------------------------------------------------------------------- R-hat
def test_split_rhat_equals_numpyro(numpyro_diagnostics: Any) -> None:
    x = ar1(0.7, 4, 301, 6, seed=0)  # odd length: the middle draw is dropped by both
    x[2] += 0.3  # one chain off: R-hat well above 1
    np.testing.assert_allclose(dg.split_rhat(x), numpyro_diagnostics.split_gelman_rubin(x), rtol=1e-12)


def test_rank_normalize_matches_scipy_ranks_with_ties() -> None:
    stats = pytest.importorskip("scipy.stats", reason="scipy is in xpcs-fit's test extra")
    rng = np.random.default_rng(1)
    x = np.round(rng.normal(size=(3, 50, 4)), 1)  # many ties
    ranks = stats.rankdata(x.reshape(150, 4), axis=0)  # average ranks of tied values
    expected = stats.norm.ppf((ranks - 0.375) / (150 + 0.25)).reshape(x.shape)
    np.testing.assert_allclose(dg.rank_normalize(x), expected, rtol=1e-12, atol=1e-14)


def test_rank_normalize_without_scipy_on_distinct_draws() -> None:
    x = np.array([[3.0, 1.0], [2.0, 5.0]])[:, :, None]  # ranks 3, 1, 2, 4 of 4 draws
    expected = [NormalDist().inv_cdf((r - 0.375) / 4.25) for r in (3, 1, 2, 4)]
    np.testing.assert_allclose(dg.rank_normalize(x).ravel(), expected, rtol=1e-15)


def test_rhat_is_the_larger_of_bulk_and_folded_split_rhat(numpyro_diagnostics: Any) -> None:
    stats = pytest.importorskip("scipy.stats", reason="scipy is in xpcs-fit's test extra")
    rng = np.random.default_rng(2)
    x = rng.normal(size=(4, 200, 3))
    x[1, :, 0] *= 3.0  # same centre, wider chain: only the folded (tail) R-hat sees it
    x[2, :, 1] += 1.0  # shifted chain: the bulk R-hat sees it

    def z(a: np.ndarray) -> np.ndarray:
        r = stats.rankdata(a.reshape(-1, a.shape[2]), axis=0)
        return np.asarray(stats.norm.ppf((r - 0.375) / (r.shape[0] + 0.25)).reshape(a.shape))

    bulk = numpyro_diagnostics.split_gelman_rubin(z(x))
    folded = numpyro_diagnostics.split_gelman_rubin(z(np.abs(x - np.median(x.reshape(-1, 3), axis=0))))
    np.testing.assert_allclose(dg.rhat(x), np.maximum(bulk, folded), rtol=1e-12)
    assert folded[0] > 1.05 > bulk[0]
    assert bulk[1] > 1.05


def test_rhat_near_one_for_mixed_chains_and_large_for_stuck_ones() -> None:
    x = ar1(0.5, 4, 1000, 20, seed=3)
    assert np.all(np.abs(dg.rhat(x) - 1) < 0.01)
    x[0] += 2.0
    assert np.all(dg.rhat(x) > 1.1)


# --------------------------------------------------------------------------- ESS
@pytest.mark.parametrize("rho", [0.0, 0.5, 0.9])
def test_ess_of_ar1_chains_matches_theory(rho: float) -> None:
    # ESS = n_chains n_draws (1 - rho) / (1 + rho) for AR(1). Over 200 series the median
    # estimate is within a few per cent, single ones scatter by ~10 % (rho = 0.9: fewer
    # independent draws, more scatter).
    x = ar1(rho, 4, 2000, 200, seed=4)
    theory = 8000 * (1 - rho) / (1 + rho)
    for estimate in (dg.ess(x), dg.ess_bulk(x)):
        assert abs(np.median(estimate) / theory - 1) < 0.05
        assert np.quantile(np.abs(estimate / theory - 1), 0.9) < 0.25


def test_ess_agrees_with_numpyro_and_exceeds_draws_for_antithetic_chains(numpyro_diagnostics: Any) -> None:
    # Same estimator up to Stan's end term (numpyro omits it): per cent agreement.
    x = ar1(0.6, 4, 1000, 50, seed=5)
    np.testing.assert_allclose(dg.ess(x), numpyro_diagnostics.effective_sample_size(x), rtol=0.03)
    # Antithetic chains (negative lag-1 correlation): ESS above the number of draws.
    anti = ar1(-0.5, 4, 1000, 50, seed=6)
    assert np.median(dg.ess(anti)) > 3 * 4000 * 0.9


def test_ess_bulk_is_invariant_under_monotone_maps_raw_ess_is_not() -> None:
    x = ar1(0.3, 2, 500, 10, seed=7)
    np.testing.assert_allclose(dg.ess_bulk(np.exp(3 * x)), dg.ess_bulk(x), rtol=1e-12)
    assert np.max(np.abs(dg.ess(np.exp(3 * x)) / dg.ess(x) - 1)) > 0.05


def test_ess_tail_of_independent_draws_is_near_the_draw_count_and_small_for_slow_tails() -> None:
    x = ar1(0.0, 4, 1000, 100, seed=8)
    assert abs(np.median(dg.ess_tail(x)) / 4000 - 1) < 0.1
    slow = ar1(0.95, 4, 1000, 100, seed=9)
    assert np.median(dg.ess_tail(slow)) < 0.1 * 4000


def test_constant_draws_give_nan_not_a_number() -> None:
    x = np.ones((2, 100, 1))
    assert np.isnan(dg.ess(x)).all()
    assert np.isnan(dg.split_rhat(x)).all()


def test_diagnostics_reject_too_few_draws() -> None:
    with pytest.raises(ValueError, match="n_chains, n_draws"):
        dg.ess(np.ones(10))
    with pytest.raises(ValueError, match="at least 1 chain of 4 draws"):
        dg.split_rhat(np.ones((2, 3)))


# -------------------------------------------------------------------------- BFMI
def test_bfmi_from_its_definition_on_hand_computed_sequences() -> None:
    # E = 1, 2, 4: Σ ΔE² = 1 + 4 = 5; Ē = 7/3, Σ (E - Ē)² = (16 + 1 + 25) / 9 = 42/9.
    # E = 0, 1, 0: Σ ΔE² = 2; Ē = 1/3, Σ (E - Ē)² = (1 + 4 + 1) / 9 = 6/9.
    # E = 0, 1, 0, 1: Σ ΔE² = 3; Σ (E - 1/2)² = 1.
    np.testing.assert_allclose(dg.bfmi([[1.0, 2.0, 4.0], [0.0, 1.0, 0.0]]), [45 / 42, 3.0])
    np.testing.assert_allclose(dg.bfmi([[0.0, 1.0, 0.0, 1.0]]), [3.0])


def test_bfmi_of_independent_and_sticky_energies() -> None:
    # E[ΔE²] / Var E = 2 (1 - rho) for a stationary AR(1) energy sequence.
    e = ar1(0.0, 1, 20000, 1, seed=10)[..., 0]
    sticky = ar1(0.9, 1, 20000, 1, seed=11)[..., 0]
    np.testing.assert_allclose(dg.bfmi(np.concatenate([e, sticky])), [2.0, 0.2], rtol=0.05)


def test_bfmi_rejects_bad_shapes() -> None:
    with pytest.raises(ValueError, match="energy must have shape"):
        dg.bfmi(np.ones(5))
