"""MCMC convergence diagnostics on draws held in NumPy arrays (no JAX needed).

Every function takes draws shaped ``(n_chains, n_draws, ...)`` and returns one value per
trailing element ``(...)`` (e.g. per bin and parameter), except :func:`bfmi`, which takes
energies ``(n_chains, n_draws)`` and returns one value per chain.

Definitions (Vehtari, Gelman, Simpson, Carpenter, Bürkner 2021, "Rank-normalization,
folding, and localization: an improved R̂", Bayesian Analysis 16, 667; Betancourt 2016,
"Diagnosing suboptimal cotangent disintegrations in Hamiltonian Monte Carlo"):

- :func:`split_rhat`: Gelman-Rubin potential scale reduction of the chains cut in halves
  (the middle draw of an odd-length chain is dropped), ``sqrt(var⁺ / W)`` with ``W`` the
  mean within-chain variance and ``var⁺ = (n-1)/n · W + var(chain means)``.
- :func:`rhat`: the recommended rank-normalised split R̂, the larger of the split R̂ of
  the rank-normalised draws (bulk) and of the rank-normalised ``|draw - median|``
  (tails). Values above ~1.01 mean the chains have not mixed.
- :func:`ess`: effective sample size ``n_chains · n_draws / τ`` with
  ``τ = -1 + 2 Σ rho_t`` from the multi-chain autocorrelations ``rho_t``, truncated by
  Geyer's initial positive sequence, made monotone, and Stan's end correction
  (``τ`` floored at ``1 / log10(n_chains · n_draws)``, so antithetic chains may give an
  ESS above the number of draws).
- :func:`ess_bulk`: :func:`ess` of the rank-normalised split chains;
  :func:`ess_tail`: the smaller :func:`ess` of the split-chain indicators
  ``draw ≤ q5 %`` and ``draw ≤ q95 %``.
- :func:`bfmi`: energy Bayesian fraction of missing information per chain,
  ``Σ_n (E_n - E_{n-1})² / Σ_n (E_n - Ē)²``; below ~0.3 the momentum resampling
  explores the energy levels poorly.

Rank normalisation maps the pooled ranks ``r`` (ties get their average rank) of ``S``
draws to ``Φ⁻¹((r - 3/8) / (S + 1/4))``.
"""

from __future__ import annotations

from statistics import NormalDist
from typing import Any

import numpy as np

__all__ = [
    "bfmi",
    "ess",
    "ess_bulk",
    "ess_tail",
    "rank_normalize",
    "rhat",
    "split_chains",
    "split_rhat",
]

FloatArray = np.ndarray[Any, np.dtype[np.float64]]


def _draws(x: Any, min_draws: int = 4) -> FloatArray:
    arr = np.asarray(x, dtype=np.float64)
    if arr.ndim < 2:
        raise ValueError(f"draws must have shape (n_chains, n_draws, ...), got shape {arr.shape}")
    if arr.shape[0] < 1 or arr.shape[1] < min_draws:
        raise ValueError(f"need at least 1 chain of {min_draws} draws, got shape {arr.shape[:2]}")
    return arr


def split_chains(x: Any) -> FloatArray:
    """``(2 n_chains, n_draws // 2, ...)``: each chain cut into its first and last half."""
    arr = _draws(x)
    half = arr.shape[1] // 2
    return np.concatenate([arr[:, :half], arr[:, arr.shape[1] - half :]], axis=0)


def rank_normalize(x: Any) -> FloatArray:
    """Normal scores of the ranks of all draws pooled over chains (same shape as ``x``)."""
    arr = _draws(x, min_draws=1)
    n_chains, n_draws = arr.shape[:2]
    size = n_chains * n_draws
    flat = arr.reshape(size, -1)
    order = np.argsort(flat, axis=0, kind="stable")
    ordered = np.take_along_axis(flat, order, axis=0)
    position = np.arange(size)[:, None]
    # Tie groups in the sorted columns: each position's group spans [first, last].
    starts = np.ones(ordered.shape, dtype=bool)
    starts[1:] = ordered[1:] != ordered[:-1]
    ends = np.ones(ordered.shape, dtype=bool)
    ends[:-1] = starts[1:]
    first = np.maximum.accumulate(np.where(starts, position, 0), axis=0)
    last = np.minimum.accumulate(np.where(ends, position, size - 1)[::-1], axis=0)[::-1]
    twice_rank = first + last + 2  # 2 x the average 1-based rank: an integer in [2, 2 size]
    # The scores depend on the rank only: evaluate the exact inverse normal CDF once per
    # possible (half-integer) rank.
    inv_cdf = NormalDist().inv_cdf
    table = np.array([inv_cdf((k / 2 - 0.375) / (size + 0.25)) for k in range(2, 2 * size + 1)])
    scores = np.empty_like(flat)
    np.put_along_axis(scores, order, table[twice_rank - 2], axis=0)
    return scores.reshape(arr.shape)


def split_rhat(x: Any) -> FloatArray:
    """Split R̂ of the draws as given (no rank normalisation); NaN for constant draws."""
    s = split_chains(x)
    n = s.shape[1]
    within = s.var(axis=1, ddof=1).mean(axis=0)
    between = s.mean(axis=1).var(axis=0, ddof=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.asarray(np.sqrt(((n - 1) / n * within + between) / within))


def rhat(x: Any) -> FloatArray:
    """Rank-normalised split R̂: ``max`` of the bulk and folded-tail split R̂."""
    arr = _draws(x)
    bulk = split_rhat(rank_normalize(arr))
    folded = np.abs(arr - np.median(arr.reshape(-1, *arr.shape[2:]), axis=0))
    tail = split_rhat(rank_normalize(folded))
    return np.asarray(np.fmax(bulk, tail))


def _autocovariance(x: FloatArray) -> FloatArray:
    """Biased autocovariance along axis 1 (``Σ_i (x_i - x̄)(x_{i+t} - x̄) / n``) by FFT."""
    n = x.shape[1]
    centred = x - x.mean(axis=1, keepdims=True)
    size = 1 << (2 * n - 1).bit_length()  # zero padding: no wrap-around
    spectrum = np.fft.rfft(centred, n=size, axis=1)
    acov = np.fft.irfft(spectrum * np.conj(spectrum), n=size, axis=1)[:, :n]
    return np.asarray(acov / n)


def ess(x: Any) -> FloatArray:
    """Effective sample size of the chains as given (no splitting, no ranks); NaN for
    constant draws."""
    arr = _draws(x)
    n_chains, n = arr.shape[:2]
    acov = _autocovariance(arr)
    chain_var = acov[:, 0] * n / (n - 1)
    within = chain_var.mean(axis=0)
    var_plus = within * (n - 1) / n
    if n_chains > 1:
        var_plus = var_plus + arr.mean(axis=1).var(axis=0, ddof=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        rho = 1.0 - (within - acov.mean(axis=0)) / var_plus
    rho[0] = 1.0
    # Geyer's pairs Γ_k = rho_2k + rho_(2k+1) at the lags Stan considers (even lags up to n - 4).
    n_pairs = (n - 2) // 2
    pairs = rho[: 2 * n_pairs : 2] + rho[1 : 2 * n_pairs : 2]
    # Initial positive sequence: the pairs before the first one that is not positive. Stan's
    # end term adds the even lag of that pair where positive; when every pair is positive the
    # last pair's even lag is the end term instead.
    positive = np.logical_and.accumulate(pairs > 0, axis=0)
    count = positive.sum(axis=0)
    all_positive = count == n_pairs
    count = np.where(all_positive, n_pairs - 1, count)
    kept = np.arange(n_pairs).reshape((-1,) + (1,) * (rho.ndim - 1)) < count
    # Initial monotone sequence: each kept pair at most the one before it.
    monotone = np.where(kept, np.minimum.accumulate(np.where(kept, pairs, np.inf), axis=0), 0.0)
    end = np.take_along_axis(rho, (2 * count)[None], axis=0)[0]
    end = np.where(all_positive, end, np.maximum(end, 0.0))
    tau = -1.0 + 2.0 * monotone.sum(axis=0) + end
    total = n_chains * n
    tau = np.maximum(tau, 1.0 / np.log10(total))
    with np.errstate(invalid="ignore"):
        return np.asarray(np.where(np.isfinite(rho[1]), total / tau, np.nan))


def ess_bulk(x: Any) -> FloatArray:
    """Bulk ESS: :func:`ess` of the rank-normalised split chains."""
    return ess(rank_normalize(split_chains(x)))


def ess_tail(x: Any) -> FloatArray:
    """Tail ESS: the smaller :func:`ess` of the split-chain indicators of the 5 % and
    95 % quantiles."""
    arr = _draws(x)
    pooled = arr.reshape(-1, *arr.shape[2:])
    low, high = np.quantile(pooled, [0.05, 0.95], axis=0)
    split = split_chains(arr)
    ess_low = ess((split <= low).astype(np.float64))
    ess_high = ess((split <= high).astype(np.float64))
    return np.asarray(np.fmin(ess_low, ess_high))


def bfmi(energy: Any) -> FloatArray:
    """Energy BFMI of each chain from its Hamiltonian energies ``(n_chains, n_draws)``."""
    e = np.asarray(energy, dtype=np.float64)
    if e.ndim != 2 or e.shape[1] < 2:
        raise ValueError(f"energy must have shape (n_chains, n_draws >= 2), got shape {e.shape}")
    numerator = np.square(np.diff(e, axis=1)).sum(axis=1)
    denominator = np.square(e - e.mean(axis=1, keepdims=True)).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.asarray(numerator / denominator)
