"""Streaming reductions against brute-force NumPy over the whole in-memory stack."""

from __future__ import annotations

from dataclasses import fields
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from xpcs_device import use_backend
from xpcs_device.testing import needs_jax
from xpcs_kernels import frames, reductions
from xpcs_kernels.frames import iter_frame_chunks
from xpcs_kernels.reductions import (
    FrameValueError,
    Reductions,
    finalize_reductions,
    init_reductions,
    reduce_frames,
    segment_bounds,
    update_reductions,
)

pytestmark = pytest.mark.usefixtures("fresh_backend")

RTOL = 1e-12
K = 6  # bins; bin 6 is left empty on purpose


@pytest.fixture(scope="module")
def h5py() -> Any:
    return pytest.importorskip("h5py", reason="h5py not installed (the test extra has it)")


def make_labels(h: int = 9, w: int = 11, seed: int = 1) -> np.ndarray:
    """Bins 1..5 occupied (bin 5 has a single pixel), bin 6 empty, 0 masked."""
    lab = np.random.default_rng(seed).integers(0, 5, size=(h, w))
    lab[lab == 0] = 1
    lab[0, :3] = 0  # masked pixels
    lab[lab == 5] = 4
    lab[h - 1, w - 1] = 5
    return lab


def make_stack(n: int = 23, h: int = 9, w: int = 11, dtype: Any = np.uint16, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    lam = rng.uniform(0.2, 20.0, size=(h, w))
    counts = rng.poisson(lam, size=(n, h, w))
    if np.dtype(dtype).kind == "f":
        return (counts * rng.uniform(0.5, 1.5, size=(n, h, w))).astype(dtype)
    return counts.astype(dtype)


def brute_force(
    data: np.ndarray, labels: np.ndarray, n_bins: int, n_segments: int = 1, first_frame: int = 0
) -> dict[str, Any]:
    """Plain NumPy over the whole stack: loops over label values, segments by slicing."""
    x = data.astype(np.float64)
    n = x.shape[0]
    mean_image = x.mean(axis=0)
    iq, err, counts = np.full(n_bins, np.nan), np.full(n_bins, np.nan), np.zeros(n_bins, np.int64)
    for k in range(1, n_bins + 1):
        sel = labels == k
        counts[k - 1] = sel.sum()
        if counts[k - 1]:
            iq[k - 1] = x[:, sel].mean()
        if counts[k - 1] >= 2:
            err[k - 1] = mean_image[sel].std(ddof=1) / np.sqrt(counts[k - 1])
    length = n // n_segments
    starts = [s * length for s in range(n_segments)] + [n]
    segs = np.full((n_segments, n_bins), np.nan)
    for s in range(n_segments):
        part = x[starts[s] : starts[s + 1]]
        for k in range(1, n_bins + 1):
            if (labels == k).any():
                segs[s, k - 1] = part[:, labels == k].mean()
    numbers = first_frame + np.arange(n, dtype=float)
    ivt = np.stack([numbers, np.array([f[labels > 0].mean() for f in x])])
    return {
        "mean_image": mean_image,
        "iq": iq,
        "iq_err": err,
        "iq_counts": counts,
        "iq_segments": segs,
        "intensity_vs_time": ivt,
        "segment_bounds": tuple(starts),
    }


def as_numpy(result: Reductions) -> dict[str, Any]:
    out = {}
    for f in fields(result):
        value = getattr(result, f.name)
        out[f.name] = value if isinstance(value, int | tuple) else np.asarray(value)
    return out


def assert_matches(got: dict[str, Any], want: dict[str, Any], rtol: float = RTOL) -> None:
    for key, expected in want.items():
        if isinstance(expected, tuple):
            assert got[key] == expected, key
        else:
            np.testing.assert_allclose(got[key], expected, rtol=rtol, atol=0, equal_nan=True, err_msg=key)


# ----------------------------------------------------------------- against brute force
@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.int32, np.float32, np.float64])
@pytest.mark.parametrize("n_segments", [1, 4])
def test_matches_brute_force(backend, dtype, n_segments):
    data, labels = make_stack(dtype=dtype), make_labels()
    result = reduce_frames(data, labels, K, n_segments=n_segments, chunk_frames=5)
    got = as_numpy(result)
    assert_matches(got, brute_force(data, labels, K, n_segments))
    assert result.n_frames == 23
    assert result.n_valid_pixels == int((labels > 0).sum())
    assert got["mean_image"].dtype == np.float64
    assert got["mean_image"].shape == labels.shape
    assert got["iq_segments"].shape == (n_segments, K)
    assert got["intensity_vs_time"].shape == (2, 23)


def test_empty_and_single_pixel_bins_are_nan_never_zero(backend):
    result = as_numpy(reduce_frames(make_stack(), make_labels(), K))
    assert result["iq_counts"][4] == 1
    assert result["iq_counts"][5] == 0
    assert np.isfinite(result["iq"][4])
    assert np.isnan(result["iq_err"][4])
    assert np.isnan(result["iq"][5])
    assert np.isnan(result["iq_err"][5])
    assert np.isnan(result["iq_segments"][0, 5])
    assert np.isfinite(result["iq_err"][:4]).all()


def test_frame_time_scales_the_time_row(backend):
    data, labels = make_stack(), make_labels()
    ivt = np.asarray(reduce_frames(data, labels, K, frame_time=0.002).intensity_vs_time)
    np.testing.assert_allclose(ivt[0], np.arange(23) * 0.002, rtol=RTOL)
    with pytest.raises(ValueError, match="frame_time must be a positive"):
        reduce_frames(data, labels, K, frame_time=0.0)


def test_range_of_frames(backend):
    data, labels = make_stack(30), make_labels()
    got = as_numpy(reduce_frames(data, labels, K, n_segments=3, start=4, stop=27, chunk_frames=4))
    assert_matches(got, brute_force(data[4:27], labels, K, 3, first_frame=4))


@pytest.mark.parametrize("source", ["array", "iterator"])
def test_a_frame_range_keeps_source_frame_numbers(backend, source):
    data, labels = make_stack(30), make_labels()
    frames = data if source == "array" else iter(list(data))
    ivt = np.asarray(reduce_frames(frames, labels, K, start=5, stop=17, chunk_frames=4).intensity_vs_time)
    assert np.array_equal(ivt[0], np.arange(5, 17, dtype=float))  # frames 5..16 of the source
    np.testing.assert_allclose(ivt[1], [f[labels > 0].mean() for f in data[5:17]], rtol=RTOL)
    timed = np.asarray(reduce_frames(data, labels, K, start=5, frame_time=0.5).intensity_vs_time)
    np.testing.assert_allclose(timed[0], np.arange(5, 30) * 0.5, rtol=RTOL)
    # The streaming API: first_frame says where the streamed frames start in the source.
    state = init_reductions(labels, K, first_frame=100)
    state = update_reductions(state, data[:3])
    assert np.array_equal(np.asarray(finalize_reductions(state).intensity_vs_time)[0], [100.0, 101.0, 102.0])
    # Errors name source frame numbers too.
    bad = data.astype(np.int32)
    bad[9, 1, 1] = -1
    with pytest.raises(
        FrameValueError, match=r"frames 8..11 \(frame numbers of the source\).*first in frame 9"
    ):
        reduce_frames(bad, labels, K, start=5, chunk_frames=4)
    for wrong in (-1, 1.5, True):
        with pytest.raises(ValueError, match="first_frame must be a non-negative integer"):
            init_reductions(labels, K, first_frame=wrong)


# --------------------------------------------------------------------- chunk invariance
@pytest.mark.parametrize("chunk_frames", [1, 2, 3, 7, 22, 23, None])
def test_integer_results_do_not_depend_on_chunking(backend, chunk_frames):
    data, labels = make_stack(dtype=np.uint8), make_labels()
    reference = as_numpy(reduce_frames(data, labels, K, n_segments=5, chunk_frames=23))
    got = as_numpy(reduce_frames(data, labels, K, n_segments=5, chunk_frames=chunk_frames))
    for key, value in reference.items():  # integer counts: sums are exact, results identical
        if isinstance(value, np.ndarray):
            np.testing.assert_array_equal(got[key], value, err_msg=key)
        else:
            assert got[key] == value


@pytest.mark.parametrize("chunk_frames", [1, 4, 6, None])
def test_float_results_do_not_depend_on_chunking(backend, chunk_frames):
    data, labels = make_stack(dtype=np.float32), make_labels()
    reference = as_numpy(reduce_frames(data, labels, K, n_segments=3, chunk_frames=23))
    assert_matches(
        as_numpy(reduce_frames(data, labels, K, n_segments=3, chunk_frames=chunk_frames)),
        {k: v for k, v in reference.items() if not isinstance(v, int)},
    )


@settings(max_examples=25, deadline=None)
@given(cuts=st.lists(st.integers(1, 22), max_size=8, unique=True), n_segments=st.integers(1, 6))
def test_any_chunking_of_an_iterator(cuts, n_segments):
    data, labels = make_stack(dtype=np.uint16), make_labels()
    pieces = np.split(data, sorted(cuts))
    with use_backend("numpy"):
        got = as_numpy(reduce_frames(iter(pieces), labels, K, n_segments=n_segments, n_frames_total=23))
    assert_matches(got, brute_force(data, labels, K, n_segments))


# --------------------------------------------------------------- backends and compilation
@pytest.mark.parametrize("marks", [pytest.param(None, marks=needs_jax)])
@pytest.mark.parametrize("dtype", [np.uint16, np.float32])
def test_numpy_and_jax_agree_with_and_without_jit(marks, dtype):
    data, labels = make_stack(dtype=dtype), make_labels()
    with use_backend("numpy"):
        reference = as_numpy(reduce_frames(data, labels, K, n_segments=4, chunk_frames=5))
    with use_backend("jax") as b:
        jitted = reduce_frames(data, labels, K, n_segments=4, chunk_frames=5, jit=True)
        assert all(b.is_array(getattr(jitted, name)) for name in ("mean_image", "iq", "iq_segments"))
        eager = as_numpy(reduce_frames(data, labels, K, n_segments=4, chunk_frames=5, jit=False))
    for got in (as_numpy(jitted), eager):
        assert_matches(got, {k: v for k, v in reference.items() if not isinstance(v, int)})


@pytest.mark.parametrize("marks", [pytest.param(None, marks=needs_jax)])
def test_update_kernel_is_compiled_under_jax(marks):
    with use_backend("jax") as b:
        kernel = reductions._chunk_kernel(b, K, False, False, True)
        assert hasattr(kernel, "lower")  # a jax.jit-compiled function
        state = init_reductions(make_labels(), K, n_frames_total=23)
        state = update_reductions(state, make_stack(dtype=np.uint8)[:5])
        assert state.n_frames == 5
        assert b.is_array(state.sum_image)


def test_update_accepts_backend_arrays(backend):
    data, labels = make_stack(), make_labels()
    state = init_reductions(labels, K, labels.shape, n_frames_total=23, n_segments=2)
    for chunk in iter_frame_chunks(data, 6):
        state = update_reductions(state, backend.asarray(chunk))
    assert_matches(as_numpy(finalize_reductions(state)), brute_force(data, labels, K, 2))


# ---------------------------------------------------------------------------- h5py
@pytest.mark.parametrize("layout", ["chunked-gzip", "chunked", "contiguous"])
def test_hdf5_dataset_streamed_chunk_by_chunk(backend, h5py, tmp_path, monkeypatch, layout):
    data, labels = make_stack(40, dtype=np.uint16), make_labels()
    kwargs: dict[str, Any] = {
        "contiguous": {},
        "chunked": {"chunks": (4, 9, 11)},
        "chunked-gzip": {"chunks": (4, 9, 11), "compression": "gzip"},
    }[layout]
    # A budget of 9 float64 frames: memory per update stays bounded whatever N is.
    monkeypatch.setattr(frames, "DEFAULT_CHUNK_BYTES", 9 * 8 * 9 * 11)
    seen: list[int] = []
    original = reductions.update_reductions

    def counting_update(state, chunk, **kw):
        seen.append(chunk.shape[0])
        return original(state, chunk, **kw)

    monkeypatch.setattr(reductions, "update_reductions", counting_update)
    with h5py.File(tmp_path / "frames.h5", "w") as f:
        ds = f.create_dataset("entry/data/data", data=data, **kwargs)
        got = as_numpy(reduce_frames(ds, labels, K, n_segments=3))
    assert_matches(got, brute_force(data, labels, K, 3))
    assert sum(seen) == 40
    assert max(seen) == (8 if layout.startswith("chunked") else 9)  # 2 HDF5 chunks, or the budget


# ---------------------------------------------------------------------- segments
def test_segment_bounds():
    assert segment_bounds(10, 3) == (0, 3, 6, 10)
    assert segment_bounds(5, 5) == (0, 1, 2, 3, 4, 5)
    assert segment_bounds(7, 1) == (0, 7)
    with pytest.raises(ValueError, match="cannot split 3 frames into n_segments=4"):
        segment_bounds(3, 4)
    with pytest.raises(ValueError, match="n_segments must be a positive integer"):
        segment_bounds(3, 0)


def test_more_segments_than_frames(backend):
    with pytest.raises(ValueError, match="cannot split 3 frames into n_segments=4"):
        reduce_frames(make_stack(3), make_labels(), K, n_segments=4)


def test_iterator_needs_the_frame_count_for_segments(backend):
    data, labels = make_stack(), make_labels()
    with pytest.raises(ValueError, match="pass n_frames_total"):
        reduce_frames(iter(list(data)), labels, K, n_segments=2)
    got = as_numpy(reduce_frames(iter(list(data)), labels, K))  # one segment: no count needed
    assert_matches(got, brute_force(data, labels, K))


def test_announced_frame_count_must_hold(backend):
    data, labels = make_stack(), make_labels()
    with pytest.raises(ValueError, match="the source ended early"):
        reduce_frames(iter([data[:20]]), labels, K, n_segments=2, n_frames_total=23)
    with pytest.raises(ValueError, match="beyond n_frames_total=20"):
        reduce_frames(iter([data]), labels, K, n_segments=2, n_frames_total=20)
    with pytest.raises(ValueError, match="n_frames_total=20 but the source has 23 frames"):
        reduce_frames(data, labels, K, n_frames_total=20)


# --------------------------------------------------------------------- bad input
def test_frame_shape_must_match_the_labels(backend):
    labels = make_labels()
    with pytest.raises(
        ValueError, match=r"frames of shape \(9, 12\) do not match the label map's shape \(9, 11\)"
    ):
        reduce_frames(make_stack(w=12), labels, K)
    state = init_reductions(labels, K)
    with pytest.raises(ValueError, match=r"frames of shape \(11, 9\) .* \(9, 11\)"):
        update_reductions(state, np.zeros((2, 11, 9)))
    with pytest.raises(
        ValueError, match=r"frame_shape \(9, 10\) differs from the label map's shape \(9, 11\)"
    ):
        init_reductions(labels, K, (9, 10))


def test_negative_counts_name_how_many_and_the_first_frame(backend):
    data = make_stack(dtype=np.int32)
    data[7, 2, 3] = -1
    data[12, 0, 0] = -5  # a masked pixel: still not a count
    with pytest.raises(
        FrameValueError, match=r"frames 0..19 .*: 2 negative values in 2 frame\(s\), first in frame 7"
    ):
        reduce_frames(data, make_labels(), K, chunk_frames=20)
    with pytest.raises(
        FrameValueError, match=r"frames 4..7 .*: 1 negative values in 1 frame\(s\), first in frame 7"
    ):
        reduce_frames(data, make_labels(), K, chunk_frames=4)


def test_nan_is_an_error_by_default(backend):
    data = make_stack(dtype=np.float32)
    data[9, 1, 1] = data[9, 2, 2] = data[15, 0, 0] = np.nan
    with pytest.raises(
        FrameValueError, match=r'3 NaN values in 2 frame\(s\), first in frame 9.*nan="ignore"'
    ):
        reduce_frames(data, make_labels(), K, chunk_frames=16)


def test_infinity_is_an_error(backend):
    data = make_stack(dtype=np.float64)
    data[4, 5, 5] = np.inf
    with pytest.raises(FrameValueError, match=r"1 infinite values in 1 frame\(s\), first in frame 4"):
        reduce_frames(data, make_labels(), K, nan="ignore")


def test_nan_ignore_takes_means_over_the_values_present(backend):
    data, labels = make_stack(dtype=np.float64), make_labels()
    data[3, labels == 2] = np.nan  # all of bin 2 in frame 3
    data[:, 4, 4] = np.nan  # one pixel in every frame
    data[5:8, 1, 1] = np.nan
    px = labels[4, 4]
    got = as_numpy(reduce_frames(data, labels, K, n_segments=2, nan="ignore", chunk_frames=5))
    assert np.isnan(got["mean_image"][4, 4])
    with np.errstate(invalid="ignore"):
        np.testing.assert_allclose(got["mean_image"][1, 1], np.nanmean(data[:, 1, 1]), rtol=RTOL)
    for k in range(1, 6):
        sel = labels == k
        np.testing.assert_allclose(got["iq"][k - 1], np.nanmean(data[:, sel]), rtol=RTOL)
        np.testing.assert_allclose(got["iq_segments"][1, k - 1], np.nanmean(data[11:, sel]), rtol=RTOL)
        m = got["mean_image"][sel]
        m = m[np.isfinite(m)]
        if m.size >= 2:
            np.testing.assert_allclose(got["iq_err"][k - 1], m.std(ddof=1) / np.sqrt(m.size), rtol=RTOL)
    valid = labels > 0
    np.testing.assert_allclose(got["intensity_vs_time"][1], [np.nanmean(f[valid]) for f in data], rtol=RTOL)
    assert got["iq_counts"][px - 1] == (labels == px).sum()  # pixels of the bin, NaN or not


def test_zero_frames(backend):
    labels = make_labels()
    with pytest.raises(ValueError, match="no frames to reduce"):
        reduce_frames(np.zeros((0, 9, 11)), labels, K)
    with pytest.raises(ValueError, match="no frames were reduced"):
        reduce_frames(iter([]), labels, K)
    with pytest.raises(ValueError, match="no frames to reduce"):
        reduce_frames(make_stack(), labels, K, start=5, stop=5)
    state = init_reductions(labels, K)
    assert update_reductions(state, np.zeros((0, 9, 11))) is state


@pytest.mark.parametrize(
    ("labels", "n_bins", "error", "match"),
    [
        (np.ones((3, 3, 3), int), 2, ValueError, "2-D"),
        (np.ones((3, 3)), 2, TypeError, "integer label map"),
        (np.ones((3, 3), bool), 2, TypeError, "integer label map"),
        (np.full((3, 3), 4), 3, ValueError, "0..3 .* from 4 to 4"),
        (np.full((3, 3), -1), 3, ValueError, "from -1 to -1"),
        (np.zeros((3, 3), int), 3, ValueError, "no valid pixel"),
        (np.ones((3, 3), int), 0, ValueError, "n_bins must be a positive integer"),
    ],
)
def test_bad_labels(backend, labels, n_bins, error, match):
    with pytest.raises(error, match=match):
        init_reductions(labels, n_bins)


def test_bad_arguments(backend):
    labels = make_labels()
    with pytest.raises(ValueError, match="nan must be 'raise' or 'ignore'"):
        init_reductions(labels, K, nan="omit")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="n_segments must be a positive integer"):
        init_reductions(labels, K, n_frames_total=10, n_segments=0)
    state = init_reductions(labels, K)
    with pytest.raises(ValueError, match=r"must be 3-D \(n, H, W\), got shape \(9, 11\)"):
        update_reductions(state, np.zeros((9, 11)))
    with pytest.raises(TypeError, match="not a real number type"):
        update_reductions(state, np.zeros((1, 9, 11), dtype=complex))


def test_a_failed_update_leaves_the_state_usable(backend):
    data, labels = make_stack(dtype=np.float64), make_labels()
    state = init_reductions(labels, K, n_frames_total=23)
    state = update_reductions(state, data[:10])
    bad = data[10:].copy()
    bad[2, 3, 3] = -1.0
    with pytest.raises(FrameValueError, match="first in frame 12"):
        update_reductions(state, bad)
    state = update_reductions(state, data[10:])
    assert_matches(as_numpy(finalize_reductions(state)), brute_force(data, labels, K))


def test_states_are_immutable_and_inputs_unchanged(backend):
    data, labels = make_stack(dtype=np.float32), make_labels()
    data_copy, labels_copy = data.copy(), labels.copy()
    empty = init_reductions(labels, K, n_frames_total=23)
    once = update_reductions(empty, data[:11])
    twice = update_reductions(once, data[11:])
    assert (empty.n_frames, once.n_frames, twice.n_frames) == (0, 11, 23)
    assert float(np.asarray(empty.sum_image).sum()) == 0.0
    with pytest.raises(AttributeError):
        once.n_frames = 3  # type: ignore[misc]
    np.testing.assert_array_equal(data, data_copy)
    np.testing.assert_array_equal(labels, labels_copy)
    assert_matches(as_numpy(finalize_reductions(twice)), brute_force(data, labels, K))


@pytest.mark.parametrize("marks", [pytest.param(None, marks=needs_jax)])
def test_state_is_bound_to_its_backend(marks):
    with use_backend("numpy"):
        state = init_reductions(make_labels(), K)
    with use_backend("jax"), pytest.raises(RuntimeError, match="created under the 'numpy' backend"):
        update_reductions(state, make_stack()[:2])
