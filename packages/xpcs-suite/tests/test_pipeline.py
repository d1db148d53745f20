"""The main job on small simulated data: analyze against brute-force definitions (level-0
multi-tau g2 by an O(N) loop per lag, SAXS 2D as the plain mean), the multi-tau window
factor against the explicit sum over frame pairs, fits stored without touching the rest,
and every bad input as a one-line InputError that leaves no file behind."""

from __future__ import annotations

import importlib.util
import io
from pathlib import Path

import numpy as np
import pytest

from xpcs_suite.g2_correction import averaging_windows, lags_per_level_of, window_factor
from xpcs_suite.inputs import InputError
from xpcs_suite.pipeline import AnalysisOptions, analyze, fit
from xpcs_suite.progress import Progress
from xpcs_suite.results import read_result

h5py = pytest.importorskip("h5py")
BACKENDS = ["numpy"] + (["jax"] if importlib.util.find_spec("jax") is not None else [])
SMALL_OPTIONS = {"dynamic_q": 4, "static_q": 16, "progress": False}


def _brute_g2(frames, static_roi, dynamic_roi, lags):
    """APS scheme at level 0: per static bin <G2>/(<IP><IF>), dynamic = mean of its static bins."""
    x = frames.reshape(frames.shape[0], -1).astype(np.float64)
    s, d = static_roi.ravel(), dynamic_roi.ravel()
    out = np.zeros((len(lags), int(d.max())))
    for i, lag in enumerate(lags):
        a, b = x[:-lag], x[lag:]
        g, ip, i_f = (a * b).mean(0), a.mean(0), b.mean(0)
        for k in range(1, int(d.max()) + 1):
            statics = np.unique(s[(d == k) & (s > 0)])
            out[i, k - 1] = np.mean(
                [g[s == j].mean() / (ip[s == j].mean() * i_f[s == j].mean()) for j in statics]
            )
    return out


@pytest.mark.parametrize("backend", BACKENDS)
def test_analyze_matches_brute_force(simulated_raw, tmp_path, backend):
    raw, _ = simulated_raw
    out = tmp_path / "result.h5"
    summary = analyze(raw, out, AnalysisOptions(backend=backend, **SMALL_OPTIONS))
    assert summary.backend == backend
    assert set(summary.timings) >= {"open", "qmap+partitions", "reductions+multitau", "write"}
    result = read_result(out)
    with h5py.File(raw, "r") as h5:
        frames = h5["/entry/data/data"][()]
        mask = h5["/entry/instrument/detector_1/mask"][()] != 0
        frame_time = float(h5["/entry/instrument/detector_1/frame_time"][()])
    np.testing.assert_array_equal(result.mask != 0, mask)
    np.testing.assert_allclose(result.saxs_2d, frames.mean(0), rtol=1e-12)
    assert result.frame_time_s == frame_time
    level0 = result.delay_list <= 8
    expected = _brute_g2(
        frames, result.static_roi_map, result.dynamic_roi_map, result.delay_list[level0].astype(int)
    )
    np.testing.assert_allclose(result.g2[level0], expected, rtol=1e-10)
    np.testing.assert_allclose(result.delays_s, result.delay_list * frame_time)
    assert tuple(result.dynamic_num_pts) == (4, 1)
    with h5py.File(out, "r") as h5:
        assert "/entry/instrument/bluesky/metadata" in h5
        np.testing.assert_array_equal(h5["/xpcs/qmap/static_num_pts"][()], [16, 1])


def test_analyze_twotime_diagonals_match_brute_force(simulated_raw, tmp_path):
    raw, _ = simulated_raw
    out = tmp_path / "two.h5"
    summary = analyze(raw, out, AnalysisOptions(twotime=True, **SMALL_OPTIONS))
    assert summary.twotime_bins == 4
    result = read_result(out)
    with h5py.File(raw, "r") as h5:
        x = h5["/entry/data/data"][()].reshape(summary.n_frames, -1).astype(np.float64)
    label = 2
    pixels = x[:, result.dynamic_roi_map.ravel() == label]
    mean = pixels.mean(1)
    c2 = (pixels @ pixels.T) / pixels.shape[1] / np.outer(mean, mean)
    # APS normalisation divides by static-bin means; compare loosely with the plain definition
    np.testing.assert_allclose(
        np.diagonal(result.twotime_maps[label], 3).mean(), np.diagonal(c2, 3).mean(), rtol=2e-2
    )


@pytest.mark.parametrize("backend", BACKENDS)
def test_analyze_stores_the_g2_of_every_static_bin(simulated_raw, tmp_path, backend):
    """``normalized_g2_static`` (what the jackknife error of D needs) against the level-0
    definition per static bin, <G2>/(<IP><IF>) over its pixels."""
    raw, _ = simulated_raw
    out = tmp_path / "result.h5"
    analyze(raw, out, AnalysisOptions(backend=backend, **SMALL_OPTIONS))
    result = read_result(out)
    with h5py.File(raw, "r") as h5:
        frames = h5["/entry/data/data"][()]
    x = frames.reshape(frames.shape[0], -1).astype(np.float64)
    static = result.static_roi_map.ravel()
    lags = result.delay_list[result.delay_list <= 8].astype(int)
    expected = np.full((lags.size, result.q_static.size), np.nan)
    for i, lag in enumerate(lags):
        a, b = x[:-lag], x[lag:]
        for j in range(1, result.q_static.size + 1):
            pixels = static == j
            if pixels.any():
                expected[i, j - 1] = (a[:, pixels] * b[:, pixels]).mean() / (
                    a[:, pixels].mean() * b[:, pixels].mean()
                )
    assert result.g2_static is not None
    assert result.g2_static.shape == (result.delay_list.size, result.q_static.size)
    np.testing.assert_allclose(result.g2_static[: lags.size], expected, rtol=1e-10)


def test_fit_writes_its_group_and_leaves_the_rest(simulated_raw, tmp_path):
    raw, _ = simulated_raw
    out = tmp_path / "result.h5"
    analyze(raw, out, AnalysisOptions(**SMALL_OPTIONS))
    with h5py.File(out, "r") as h5:
        before = {
            k: h5[f"/xpcs/multitau/{k}"][()] for k in ("normalized_g2", "normalized_g2_err", "delay_list")
        }
    summary = fit(out, "single", plot_dir=tmp_path / "plots")
    assert summary.group == "/xpcs/fit/single"
    assert (tmp_path / "plots" / "g2.png").is_file()
    assert (tmp_path / "plots" / "tauq.png").is_file()
    with h5py.File(out, "r") as h5:
        for key, value in before.items():
            np.testing.assert_array_equal(h5[f"/xpcs/multitau/{key}"][()], value)
    group = read_result(out).fits["single"]
    assert group.datasets["params"].shape == (4, 3)
    assert group.attrs["model"] == "single"
    fit(out, "stretched", plots=False)
    assert set(read_result(out).fits) == {"single", "stretched"}


# ------------------------------------------------------------------ window factor
@pytest.mark.parametrize("w", [1, 2, 4, 16])
@pytest.mark.parametrize("x", [0.01, 0.2, 1.5])
def test_window_factor_is_the_pair_sum(w, x):
    k = 5 * w  # any lag >= w
    pairs = [np.exp(-2 * x * abs(k + j - i)) for i in range(w) for j in range(w)]
    expected = np.mean(pairs) / np.exp(-2 * x * k)
    np.testing.assert_allclose(
        window_factor(np.array([w]), np.array([x]))[0, 0], min(expected, 10.0), rtol=1e-12
    )


def test_windows_follow_the_multitau_levels():
    from xpcs_kernels.multitau import delay_list

    lags = delay_list(1000)
    assert lags_per_level_of(lags) == 4
    windows = averaging_windows(lags)
    # level l >= 1 holds lags (5..8) * 2**l: the lag divided by its window is 5..8
    assert np.all(windows[lags <= 8] == 1)
    ratio = lags[lags > 8] / windows[lags > 8]
    assert set(ratio.astype(int).tolist()) <= {5, 6, 7, 8}
    assert np.all(ratio == np.round(ratio))


def test_progress_writes_tenths_to_a_pipe():
    stream = io.StringIO()
    with Progress("work", 100, stream=stream) as bar:
        for _ in range(100):
            bar.update(1)
    lines = stream.getvalue().splitlines()
    assert len(lines) == 11  # the start, each tenth from 10 % to 90 %, the end
    assert "100.0%" in lines[-1]
    quiet = io.StringIO()
    with Progress("work", 10, stream=quiet, enabled=False) as bar:
        bar.update(10)
    assert quiet.getvalue() == ""


# --------------------------------------------------------------------- bad input
def _bad_inputs(tmp_path: Path, raw: Path) -> dict[str, tuple[Path, AnalysisOptions]]:
    opts = AnalysisOptions(**SMALL_OPTIONS)
    text = tmp_path / "text.h5"
    text.write_text("not hdf5")
    truncated = tmp_path / "truncated.h5"
    truncated.write_bytes(raw.read_bytes()[: raw.stat().st_size // 2])
    flat = tmp_path / "flat.h5"
    with h5py.File(flat, "w") as h5:
        h5["/entry/data/data"] = np.zeros((4, 5))
    bare = tmp_path / "bare.h5"
    with h5py.File(raw, "r") as src, h5py.File(bare, "w") as h5:
        h5["/entry/data/data"] = src["/entry/data/data"][:20]
    wrong_mask = tmp_path / "mask.npy"
    np.save(wrong_mask, np.ones((3, 3)))
    return {
        "does not exist": (tmp_path / "missing.h5", opts),
        "not an HDF5 file": (text, opts),
        "truncated": (truncated, opts),
        "has no dataset": (raw, AnalysisOptions(frames_key="/nope", **SMALL_OPTIONS)),
        "frames must be 3-D": (flat, opts),
        r"has shape \(3, 3\)": (raw, AnalysisOptions(mask=wrong_mask, **SMALL_OPTIONS)),
        "no geometry": (bare, opts),
    }


def test_bad_inputs_raise_one_line_and_leave_nothing(simulated_raw, tmp_path):
    raw, _ = simulated_raw
    for expected, (path, options) in _bad_inputs(tmp_path, raw).items():
        out = tmp_path / "out.h5"
        with pytest.raises(InputError, match=expected) as info:
            analyze(path, out, options)
        assert "\n" not in str(info.value)
        assert not out.exists()
        assert not list(tmp_path.glob(".out.h5*"))


def test_existing_result_needs_overwrite(simulated_raw, tmp_path):
    raw, _ = simulated_raw
    out = tmp_path / "result.h5"
    out.write_bytes(b"keep me")
    with pytest.raises(FileExistsError, match="--overwrite"):
        analyze(raw, out, AnalysisOptions(**SMALL_OPTIONS))
    assert out.read_bytes() == b"keep me"
    analyze(raw, out, AnalysisOptions(overwrite=True, **SMALL_OPTIONS))
    assert read_result(out).g2 is not None


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"static_q": 10, "dynamic_q": 4}, "not a multiple"),
        ({"dynamic_q": 0}, "positive integer"),
        ({"poni": "a.poni", "geometry": "b.toml"}, "not both"),
        ({"backend": "torch"}, "numpy' or 'jax"),
    ],
)
def test_bad_options(changes, message):
    with pytest.raises(InputError, match=message):
        AnalysisOptions(**changes)


def test_effective_q_is_the_rms_of_the_static_bins_of_each_dynamic_bin() -> None:
    from xpcs_suite.pipeline import effective_q

    rng = np.random.default_rng(3)
    static = rng.integers(0, 7, size=(9, 11))  # static labels 1..6, 0 excluded
    dynamic = np.where(static > 0, (static + 1) // 2, 0)  # 1..3, two static bins each
    dynamic[0, 0] = 0
    q_static = np.array([0.01, 0.02, 0.03, 0.05, 0.08, 0.13])
    q_dynamic = np.array([0.015, 0.04, 0.1, 0.2])  # the fourth bin has no pixels
    expected = []
    for d in range(1, 5):
        members = sorted({int(s) for s in static[(dynamic == d) & (static > 0)]})
        q2 = [q_static[s - 1] ** 2 for s in members]
        expected.append(float(np.sqrt(np.mean(q2))) if members else q_dynamic[d - 1])
    np.testing.assert_allclose(effective_q(static, dynamic, q_static, q_dynamic), expected, rtol=1e-15)
