"""The error of D: the stratified jackknife against the sample variance it must equal for a
linear statistic and against Monte Carlo, the static-bin bookkeeping against brute force,
and the calibration of ``fit``'s error of D on synthetic g2 whose noise is correlated from
delay to delay (the cause of the too-small errors): the spread of D over noise draws must
match the quoted error with the jackknife, and does not without it (APS files)."""

from __future__ import annotations

import importlib.util
import shutil
import warnings

import numpy as np
import pytest

from xpcs_suite.g2_correction import averaging_windows, window_factor
from xpcs_suite.jackknife import leave_one_static_out, static_to_dynamic, stratified_jackknife_variance
from xpcs_suite.pipeline import AnalysisOptions, analyze, fit
from xpcs_suite.results import read_result

h5py = pytest.importorskip("h5py")
BACKENDS = ["numpy"] + (["jax"] if importlib.util.find_spec("jax") is not None else [])


# ------------------------------------------------------------------ jackknife
def _weighted_means(groups: list[np.ndarray], weights: np.ndarray) -> float:
    return float(sum(w * g.mean() for w, g in zip(weights, groups, strict=True)))


def _delete_one(groups: list[np.ndarray], weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Brute force: the statistic recomputed with each value left out in turn."""
    reps, strata = [], []
    for h, g in enumerate(groups):
        for j in range(g.size):
            cut = [np.delete(x, j) if i == h else x for i, x in enumerate(groups)]
            reps.append(_weighted_means(cut, weights))
            strata.append(h)
    return np.array(reps), np.array(strata)


def test_jackknife_of_weighted_group_means_is_their_sample_variance() -> None:
    rng = np.random.default_rng(1)
    groups = [rng.normal(m, s, n) for m, s, n in ((1.0, 0.5, 4), (3.0, 2.0, 7), (-2.0, 0.1, 2))]
    weights = np.array([0.2, 1.5, 3.0])
    reps, strata = _delete_one(groups, weights)
    expected = sum(w**2 * g.var(ddof=1) / g.size for w, g in zip(weights, groups, strict=True))
    assert stratified_jackknife_variance(reps, strata) == pytest.approx(expected, rel=1e-10)


def test_jackknife_variance_of_a_nonlinear_statistic_matches_monte_carlo() -> None:
    # ratio of two group means: its variance by simulation against the jackknife's mean
    rng = np.random.default_rng(2)
    values, estimates = [], []
    for _ in range(1500):
        a, b = rng.normal(2.0, 0.4, 10), rng.normal(5.0, 1.0, 12)
        values.append(a.mean() / b.mean())
        reps = [np.delete(a, j).mean() / b.mean() for j in range(a.size)]
        reps += [a.mean() / np.delete(b, j).mean() for j in range(b.size)]
        estimates.append(stratified_jackknife_variance(reps, [0] * a.size + [1] * b.size))
    assert np.mean(estimates) == pytest.approx(np.var(values, ddof=1), rel=0.1)


@pytest.mark.parametrize(
    ("reps", "strata", "message"),
    [
        ([1.0, 2.0], [0], "of one length"),
        ([], [], "no replicates"),
        ([1.0, 2.0, 3.0], [0, 0, 1], "at least 2 replicates"),
        ([1.0, np.nan], [0, 0], "finite"),
    ],
)
def test_jackknife_bad_input(reps, strata, message) -> None:
    with pytest.raises(ValueError, match=message):
        stratified_jackknife_variance(reps, strata)


# ------------------------------------------------------------- static bins
def test_static_to_dynamic_and_leave_one_out_by_brute_force() -> None:
    static = np.array([[1, 1, 2, 2], [3, 3, 4, 0], [5, 5, 6, 6]])
    dynamic = np.array([[1, 1, 1, 1], [2, 2, 2, 0], [2, 2, 0, 0]])
    owner = static_to_dynamic(static, dynamic, 7)
    np.testing.assert_array_equal(owner, [1, 1, 2, 2, 2, 0, 0])
    rng = np.random.default_rng(3)
    g2s = rng.normal(1.2, 0.1, (5, 7))
    q = np.array([1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0])
    loo = leave_one_static_out(g2s, q, owner, [0, 1])
    np.testing.assert_array_equal(loo.bins, [0, 0, 1, 1, 1])
    np.testing.assert_array_equal(loo.left_out, [0, 1, 2, 3, 4])
    for r, (k, j) in enumerate(zip(loo.bins, loo.left_out, strict=True)):
        rest = [s for s in range(7) if owner[s] == k + 1 and s != j]
        np.testing.assert_allclose(loo.g2[:, r], g2s[:, rest].mean(axis=1), rtol=1e-14)
        assert loo.q[r] == pytest.approx(np.sqrt(np.mean(q[rest] ** 2)), rel=1e-14)


def test_static_bad_input() -> None:
    with pytest.raises(ValueError, match="not nested"):
        static_to_dynamic(np.array([[1, 1]]), np.array([[1, 2]]), 1)
    with pytest.raises(ValueError, match="differ in size"):
        static_to_dynamic(np.ones((2, 2), int), np.ones((2, 3), int), 1)
    with pytest.raises(ValueError, match="at least 2"):
        leave_one_static_out(np.ones((3, 2)), [1.0, 2.0], [1, 2], [0])


def test_static_g2_of_the_wrong_shape_is_refused(two_bin_fields, tmp_path) -> None:
    from xpcs_suite.results import MultitauFields, write_result

    fields = two_bin_fields(np.array([[1, 2], [2, 1]]))
    fields["multitau"] = MultitauFields(
        np.ones((3, 2)), np.full((3, 2), 0.01), [1, 2, 4], g2_static=np.ones((3, 5))
    )
    with pytest.raises(ValueError, match="g2_static has shape"):
        write_result(tmp_path / "refused.h5", **fields)
    assert not (tmp_path / "refused.h5").exists()


# ---------------------------------------------------- calibration of fit
N_TRIALS = 24
RHO, NOISE = 0.9, 0.01  # AR(1) correlation of neighbouring delays; noise of one static bin's g2


def _synthetic(simulated_raw, tmp_path, backend):
    """The q-map of an analysed small simulation (16 dynamic bins of about 10 static bins),
    4000-frame multi-tau delays, D putting tau between 200 and about 2 frames, and every
    static bin's exact Brownian g2 ``1 + 0.3 F exp(-2 D q_s² t)`` (``F``: the multi-tau
    window of its rate)."""
    from xpcs_kernels.multitau import delay_list

    raw, _ = simulated_raw
    base = tmp_path / "base.h5"
    analyze(raw, base, AnalysisOptions(dynamic_q=16, static_q=160, progress=False, backend=backend))
    r = read_result(base, load_twotime=False)
    owner = static_to_dynamic(r.static_roi_map, r.dynamic_roi_map, r.q_static.size)
    counts = np.bincount(owner, minlength=17)[1:]
    q_rms = np.sqrt(np.bincount(owner, r.q_static**2, minlength=17)[1:] / counts)
    lags = delay_list(4000).astype(np.float64)
    delays = lags * r.frame_time_s
    diffusion = 1.0 / (q_rms.min() ** 2 * 200 * r.frame_time_s)
    rates = diffusion * r.q_static**2
    clean = 1.0 + 0.3 * window_factor(averaging_windows(lags), rates * r.frame_time_s) * np.exp(
        -2.0 * np.outer(delays, rates)
    )
    return base, owner, counts, lags, diffusion, clean


def _write_g2(base, path, owner, counts, lags, g2_static, err, *, with_static=True):
    g2 = np.stack([g2_static[:, owner == k + 1].mean(axis=1) for k in range(counts.size)], axis=1)
    shutil.copy(base, path)
    with h5py.File(path, "a") as h5:
        group = h5["/xpcs/multitau"]
        for name, value in (
            ("delay_list", lags),
            ("normalized_g2", g2),
            ("normalized_g2_err", err),
            ("normalized_g2_static", g2_static),
        ):
            del group[name]
            if with_static or name != "normalized_g2_static":
                group[name] = value
    return path


def _fit(path, backend):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return fit(path, plots=False, backend=backend)


@pytest.mark.parametrize("backend", BACKENDS)
def test_noise_free_mixture_of_static_bins_gives_d(simulated_raw, tmp_path, backend):
    """Each bin's g2 is a mixture of exponentials (its static bins' q differ by up to 17 %):
    D must come out to 1e-4 (one exponential with the bins' mean q² is off by 0.5-2 % per
    bin), with a jackknife error that vanishes without noise."""
    base, owner, counts, lags, diffusion, clean = _synthetic(simulated_raw, tmp_path, backend)
    err = np.full((lags.size, counts.size), 1e-3)
    path = _write_g2(base, tmp_path / "clean.h5", owner, counts, lags, clean, err)
    summary = _fit(path, backend)
    assert read_result(path).fits["single"].attrs["diffusion_err_method"] == summary.diffusion_err_method
    assert summary.n_used_for_diffusion >= 10
    assert summary.diffusion_a2_per_s == pytest.approx(diffusion, rel=1e-4)
    assert summary.diffusion_err_a2_per_s < 1e-5 * diffusion
    assert summary.diffusion_err_method.startswith("jackknife")


@pytest.mark.parametrize("backend", BACKENDS)
def test_error_of_d_matches_the_spread_of_d_with_delay_correlated_noise(simulated_raw, tmp_path, backend):
    """The exact static-bin g2 of :func:`_synthetic` plus noise correlated along the delays
    (AR(1)), independent between static bins; ``normalized_g2_err`` is the true per-delay
    error. Over noise draws, std(D) must match the rms quoted error with the static-bin g2
    stored (jackknife) and exceed it by far without (the old error, kept for APS files)."""
    base, owner, counts, lags, diffusion, clean = _synthetic(simulated_raw, tmp_path, backend)
    err = np.tile(NOISE / np.sqrt(counts), (lags.size, 1))
    rng = np.random.default_rng(7)
    found: dict[str, list[tuple[float, float]]] = {"jackknife": [], "old": []}
    for _ in range(N_TRIALS):
        shocks = rng.standard_normal(clean.shape)
        noise = np.empty_like(clean)
        noise[0] = shocks[0]
        for i in range(1, lags.size):
            noise[i] = RHO * noise[i - 1] + np.sqrt(1.0 - RHO**2) * shocks[i]
        for kind, values in found.items():
            path = _write_g2(
                base,
                tmp_path / f"{kind}.h5",
                owner,
                counts,
                lags,
                clean + NOISE * noise,
                err,
                with_static=kind == "jackknife",
            )
            summary = _fit(path, backend)
            assert summary.diffusion_err_method.startswith("jackknife" if kind == "jackknife" else "tau(q)")
            values.append((summary.diffusion_a2_per_s, summary.diffusion_err_a2_per_s))
    new, old = np.array(found["jackknife"]), np.array(found["old"])
    np.testing.assert_array_equal(new[:, 0], old[:, 0])  # same D, other error
    spread = np.std(new[:, 0], ddof=1)
    # std(D) over 24 draws is known to about 15 %: calibrated errors give a ratio near 1
    assert 0.7 < spread / np.sqrt(np.mean(new[:, 1] ** 2)) < 1.4
    assert spread / np.sqrt(np.mean(old[:, 1] ** 2)) > 1.2  # 1.29 here, about 1.4 on average
    z = (new[:, 0] - diffusion) / new[:, 1]
    assert abs(np.mean(z)) < 3.0 / np.sqrt(N_TRIALS)  # no bias beyond 3 standard errors
    assert np.mean(np.abs(z) < 2.0) >= 0.8
