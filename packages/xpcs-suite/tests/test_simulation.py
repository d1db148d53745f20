"""The simulated colloid dataset against its physics: q from the scattering geometry, the
sphere form factor (scipy's spherical Bessel function), mean counts, and g2 - 1 = β exp(-2Dq²τ)
from a brute-force correlation of the frames; seeds, chunking, the raw file and atomicity."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from xpcs_device import use_backend
from xpcs_device.testing import HAS_JAX
from xpcs_suite.atomic import OutputExistsError
from xpcs_suite.simulation import (
    SimulationParameters,
    iter_simulated_frames,
    poisson_counts,
    prepare_sample,
    simulate_frames,
    sphere_form_factor,
    write_raw_file,
)

PHYSICS = SimulationParameters(n_frames=600, shape=(48, 56), contrast=0.4, peak_count=2.0, seed=11)


@pytest.fixture(scope="module")
def physics() -> tuple[np.ndarray, Any]:
    return simulate_frames(PHYSICS)


def _rings(sample: Any, n: int = 4) -> list[np.ndarray]:
    q = sample.q_inv_angstrom[sample.mask]
    edges = np.quantile(q, np.linspace(0, 1, n + 1))
    ring = np.clip(np.searchsorted(edges, q, side="right") - 1, 0, n - 1)
    return [ring == k for k in range(n)]


def test_q_is_the_exact_momentum_transfer(backend: Any) -> None:
    params = SimulationParameters(shape=(20, 30), beam_center_x_px=7.5, beam_center_y_px=12.25)
    sample = prepare_sample(params)
    i, j = np.mgrid[0:20, 0:30]
    dx = (j - 7.5) * params.pixel_size_m
    dy = -(i - 12.25) * params.pixel_size_m
    two_theta = np.arctan2(np.hypot(dx, dy), params.distance_m)
    k0 = 2 * np.pi * params.energy_kev / 12.398419843320026
    np.testing.assert_allclose(sample.q_inv_angstrom, 2 * k0 * np.sin(two_theta / 2), rtol=1e-12, atol=1e-18)
    np.testing.assert_allclose(sample.decay_rate_per_s, params.diffusion_a2_per_s * sample.q_inv_angstrom**2)


def test_same_sample_on_both_backends() -> None:
    if not HAS_JAX:
        pytest.skip("JAX (xpcs-jax) not installed")
    with use_backend("numpy"):
        a = prepare_sample(SimulationParameters(shape=(16, 24)))
    with use_backend("jax"):
        b = prepare_sample(SimulationParameters(shape=(16, 24)))
    np.testing.assert_allclose(a.q_inv_angstrom, b.q_inv_angstrom, rtol=1e-12)
    np.testing.assert_array_equal(a.mask, b.mask)


def test_form_factor_against_spherical_bessel() -> None:
    special = pytest.importorskip("scipy.special")
    x = np.concatenate([[0.0, 1e-6, 5e-4, 2e-3], np.linspace(0.01, 12.0, 500)])
    with np.errstate(invalid="ignore", divide="ignore"):
        expected = np.where(x > 0, (3 * special.spherical_jn(1, x) / np.where(x > 0, x, 1)) ** 2, 1.0)
    np.testing.assert_allclose(sphere_form_factor(x), expected, rtol=1e-10, atol=1e-14)
    sample = prepare_sample(PHYSICS)
    q = sample.q_inv_angstrom[sample.mask]
    np.testing.assert_allclose(
        sample.mean_intensity[sample.mask],
        PHYSICS.peak_count
        * (3 * special.spherical_jn(1, q * PHYSICS.radius_angstrom) / (q * PHYSICS.radius_angstrom)) ** 2,
        rtol=1e-10,
    )
    assert np.all(sample.mean_intensity[~sample.mask] == 0)


def test_intensity_falls_with_q_and_the_mask_has_a_beam_stop_and_dead_pixels() -> None:
    params = SimulationParameters(shape=(64, 64), dead_pixel_fraction=0.01)
    sample = prepare_sample(params)
    q, mean = sample.q_inv_angstrom[sample.mask], sample.mean_intensity[sample.mask]
    order = np.argsort(q)
    assert np.all(np.diff(mean[order]) <= 1e-12)  # the form factor decreases up to its first zero
    assert mean[order[-1]] < 0.3 * mean[order[0]]
    bcx, bcy = params.beam_center_x_px, params.beam_center_y_px
    assert not sample.mask[round(bcy), round(bcx)]  # the beam stop
    assert not sample.mask[round(bcy), -1]  # its arm reaches the right edge
    i, j = np.mgrid[0:64, 0:64]
    r = params.beam_stop_radius_px
    shadow = (np.hypot(i - bcy, j - bcx) <= r) | ((np.abs(i - bcy) <= r / 3) & (j >= bcx))
    assert not sample.mask[shadow].any()
    dead = (~sample.mask[~shadow]).mean()
    assert 0.004 < dead < 0.02  # dead_pixel_fraction = 0.01 of the other pixels


def test_mean_counts_per_pixel(physics: tuple[np.ndarray, Any]) -> None:
    frames, sample = physics
    assert frames.dtype == np.uint16
    assert frames.shape == (600, 48, 56)
    assert np.all(frames[:, ~sample.mask] == 0)
    ratio = frames[:, sample.mask].mean(axis=0) / sample.mean_intensity[sample.mask]
    for ring in _rings(sample):
        r = ratio[ring]
        # pixels are independent: the spread over pixels gives the error of their mean
        assert abs(r.mean() - 1.0) < 5 * r.std() / np.sqrt(r.size)
    assert abs(ratio.mean() - 1.0) < 0.02


def test_g2_is_brownian_with_the_set_contrast(physics: tuple[np.ndarray, Any]) -> None:
    frames, sample = physics
    counts = frames[:, sample.mask].astype(np.float64)
    mean = sample.mean_intensity[sample.mask]
    rate = sample.decay_rate_per_s[sample.mask]
    dt, beta = PHYSICS.frame_time_s, PHYSICS.contrast
    z_scores = []
    # lag 0: the second factorial moment <n(n-1)> / Ibar^2 = 1 + beta (Poisson removed)
    lags = [0, 1, 2, 3, 5, 8, 12, 20, 40, 80]
    for lag in lags:
        if lag == 0:
            per_pixel = (counts * (counts - 1)).mean(0) / mean**2
            expected = np.full(mean.shape, 1.0 + beta)
        else:
            per_pixel = (counts[:-lag] * counts[lag:]).mean(0) / mean**2
            expected = 1.0 + beta * np.exp(-2.0 * rate * lag * dt)
        for ring in _rings(sample):
            diff = per_pixel[ring] - expected[ring]
            z_scores.append(diff.mean() / (diff.std() / np.sqrt(diff.size)))
    z = np.asarray(z_scores)
    assert np.all(np.abs(z) < 5), z.reshape(len(lags), -1)
    assert np.mean(z**2) < 3.0  # chi^2 per point about 1 when the model holds


@pytest.mark.parametrize("rate", [0.0, 0.05, 1.0, 3.0, 9.5, 10.5, 40.0])
def test_poisson_counts_follow_the_poisson_law(rate: float) -> None:
    stats = pytest.importorskip("scipy.stats")
    n = 40_000
    rates = np.full(n, rate)
    out = np.full(n, -1, dtype=np.int64)
    poisson_counts(np.random.default_rng(7), rates, out)
    assert out.min() >= 0
    if rate == 0.0:
        assert np.all(out == 0)
        return
    # chi^2 over the counts with at least 5 expected draws each (the rest pooled in the tail)
    top = int(stats.poisson.ppf(1 - 5 / n, rate))
    observed = np.bincount(np.minimum(out, top + 1), minlength=top + 2)
    expected = n * np.append(stats.poisson.pmf(np.arange(top + 1), rate), stats.poisson.sf(top, rate))
    assert stats.chisquare(observed, expected).pvalue > 1e-4
    assert abs(out.mean() - rate) < 5 * np.sqrt(rate / n)


def test_poisson_counts_mixed_rates_are_reproducible() -> None:
    rates = np.array([0.0, 0.5, 12.0, 2.0, 700.0, 5.0])
    a, b = np.empty(6, dtype=np.int64), np.empty(6, dtype=np.int64)
    poisson_counts(np.random.default_rng(3), rates, a)
    poisson_counts(np.random.default_rng(3), rates, b)
    np.testing.assert_array_equal(a, b)
    assert a[0] == 0
    assert 500 < a[4] < 900  # a bright pixel, through Generator.poisson


def test_the_relaxation_times_span_the_multitau_range_by_default() -> None:
    params = SimulationParameters()
    sample = prepare_sample(params)
    tau_frames = 1.0 / (sample.decay_rate_per_s[sample.mask] * params.frame_time_s)
    assert 1.0 < tau_frames.min() < 5.0
    assert 100.0 < tau_frames.max() < 0.3 * params.n_frames


def test_seeds_and_chunks() -> None:
    params = SimulationParameters(n_frames=50, shape=(16, 20), seed=5)
    a = np.concatenate(list(iter_simulated_frames(params)))
    b = np.concatenate(list(iter_simulated_frames(params, chunk_frames=7)))
    c = np.concatenate(list(iter_simulated_frames(params.with_changes(seed=6))))
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    chunks = list(iter_simulated_frames(params, chunk_frames=16))
    assert [chunk.shape for chunk in chunks] == [(16, 16, 20)] * 3 + [(2, 16, 20)]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"contrast": 1.5}, "contrast"),
        ({"contrast": 0.0}, "contrast"),
        ({"diffusion_a2_per_s": -1.0}, "diffusion_a2_per_s"),
        ({"n_frames": 1}, "n_frames"),
        ({"shape": (4, 100)}, "shape rows"),
        ({"shape": 256}, "shape"),
        ({"frame_time_s": float("nan")}, "frame_time_s"),
        ({"count_time_s": 1.0}, "count_time_s"),
        ({"dtype": "float32"}, "dtype"),
        ({"seed": -1}, "seed"),
        ({"dead_pixel_fraction": 0.7}, "dead_pixel_fraction"),
        ({"beam_center_x_px": float("inf")}, "beam_center_x_px"),
    ],
)
def test_bad_parameters(change: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        SimulationParameters(**change)


def test_bad_chunk_size() -> None:
    with pytest.raises(ValueError, match="chunk_frames"):
        iter_simulated_frames(SimulationParameters(n_frames=4, shape=(8, 8)), chunk_frames=0)


@pytest.fixture(scope="module")
def h5py() -> Any:
    return pytest.importorskip("h5py", reason="h5py not installed (the test extra has it)")


def test_raw_file_round_trip(h5py: Any, tmp_path: Path) -> None:
    from xpcs_suite.inputs import geometry_from_nexus, raw_frame_time, raw_mask

    params = SimulationParameters(n_frames=40, shape=(24, 32), seed=9, frame_time_s=2e-3, count_time_s=1e-3)
    path = tmp_path / "raw.h5"
    sample = write_raw_file(path, params)
    frames, _ = simulate_frames(params)
    with h5py.File(path, "r") as h5:
        data = h5["/entry/data/data"]
        assert data.dtype == np.uint16
        assert data.chunks[1:] == (24, 32)
        np.testing.assert_array_equal(data[()], frames)
        det = h5["/entry/instrument/detector_1"]
        assert det["frame_time"][()] == 2e-3
        assert det["count_time"][()] == 1e-3
        assert det["x_pixel_size"].attrs["units"] == "m"
        assert h5["/entry/instrument/incident_beam/incident_energy"][()] == params.energy_kev
        sim = h5["/entry/sample/simulation"]
        assert sim["diffusion_coefficient"][()] == params.diffusion_a2_per_s
        assert sim["contrast"][()] == params.contrast
        assert sim["seed"][()] == 9
        np.testing.assert_array_equal(sim["mean_intensity"][()], sample.mean_intensity)
        np.testing.assert_array_equal(raw_mask(h5), sample.mask)
        assert raw_frame_time(h5) == 2e-3
        assert geometry_from_nexus(h5) == params.geometry
        assert isinstance(h5["/entry/start_time"][()], bytes)


def test_existing_raw_file_is_kept(h5py: Any, tmp_path: Path) -> None:
    path = tmp_path / "raw.h5"
    path.write_bytes(b"keep me")
    with pytest.raises(OutputExistsError, match="overwrite"):
        write_raw_file(path, SimulationParameters(n_frames=4, shape=(8, 8)))
    assert path.read_bytes() == b"keep me"
    write_raw_file(path, SimulationParameters(n_frames=4, shape=(8, 8)), overwrite=True)
    with h5py.File(path, "r") as h5:
        assert h5["/entry/data/data"].shape == (4, 8, 8)


def test_a_failed_write_leaves_nothing(h5py: Any, tmp_path: Path) -> None:
    # uint8 cannot hold the counts of a very bright sample: the error comes mid-stream
    bright = SimulationParameters(n_frames=200, shape=(16, 16), peak_count=400.0, dtype="uint8")
    with pytest.raises(OverflowError, match="uint8"):
        write_raw_file(tmp_path / "raw.h5", bright, chunk_frames=4)
    assert os.listdir(tmp_path) == []
    (tmp_path / "old.h5").write_bytes(b"old")
    with pytest.raises(OverflowError):
        write_raw_file(tmp_path / "old.h5", bright, chunk_frames=4, overwrite=True)
    assert (tmp_path / "old.h5").read_bytes() == b"old"
    assert os.listdir(tmp_path) == ["old.h5"]


def test_output_folder_must_exist(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="does not exist"):
        write_raw_file(tmp_path / "nope" / "raw.h5", SimulationParameters(n_frames=4, shape=(8, 8)))
