"""The compiled (numba) photon-event two-time correlator against the brute-force definition
and against the array path (``compiled=False``) on the same events; ``compiled=`` dispatch."""

from __future__ import annotations

import subprocess
import sys
import warnings
from typing import Any, Literal

import numpy as np
import pytest

from xpcs_kernels.compiled import compiled_available
from xpcs_kernels.reductions import FrameValueError
from xpcs_kernels.twotime_sparse import COMPILED_DENSE_FRACTION, default_dense_threshold, twotime_events

pytestmark = [
    pytest.mark.usefixtures("fresh_backend"),
    pytest.mark.skipif(not compiled_available(), reason="numba is not installed"),
]

RTOL = 1e-12
N = 23


def make_case(
    n: int = N, h: int = 8, w: int = 9, rate: float = 0.4, seed: int = 2
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Frames of Poisson counts, dynamic bins 1..3 (two pixels masked), two static bins nested
    in each dynamic bin, photons on a masked pixel (ignored)."""
    rng = np.random.default_rng(seed)
    dyn = rng.integers(1, 4, size=(h, w))
    dyn[0, :2] = 0
    sta = (dyn - 1) * 2 + rng.integers(1, 3, size=(h, w))
    sta[dyn == 0] = 0
    frames = rng.poisson(rate, size=(n, h, w)).astype(np.uint8)
    frames[:, 0, 0] = 3
    return frames, dyn, sta


def events_of(frames: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    flat = frames.reshape(frames.shape[0], -1)
    t, p = np.nonzero(flat)
    return t, p, flat[t, p]


def brute_force(frames: np.ndarray, dyn: np.ndarray, sta: np.ndarray | None) -> np.ndarray:
    """C(t1, t2) = <v(t1) v(t2)> / (<v(t1)> <v(t2)>) over each dynamic bin's pixels, one
    frame pair at a time, with v = X / <X>_static(t) (APS) or v = X (plain); NaN where a
    frame has no intensity in the bin."""
    n = frames.shape[0]
    x = frames.reshape(n, -1).astype(np.float64)
    v = x.copy()
    if sta is not None:
        for s in np.unique(sta[sta > 0]):
            m = sta.ravel() == s
            mean = x[:, m].mean(axis=1, keepdims=True)
            v[:, m] = x[:, m] / np.where(mean > 0, mean, 1.0)
    out = []
    for d in np.unique(dyn[dyn > 0]):
        m = dyn.ravel() == d
        c = np.empty((n, n))
        for t1 in range(n):
            for t2 in range(n):
                den = v[t1, m].mean() * v[t2, m].mean()
                c[t1, t2] = np.mean(v[t1, m] * v[t2, m]) / den if den > 0 else np.nan
        out.append(c)
    return np.stack(out)


def host(backend: Any, x: Any) -> np.ndarray:
    return np.asarray(backend.to_numpy(x))


def assert_same(backend: Any, got: Any, want: Any, rtol: float = RTOL) -> None:
    for name in ("c2", "g2", "g2_segments", "delays", "segment_delays"):
        a, b = getattr(got, name), getattr(want, name)
        if b is None:
            assert a is None
            continue
        np.testing.assert_allclose(host(backend, a), host(backend, b), rtol=rtol, atol=1e-14)
    assert got.segment_bounds == want.segment_bounds
    assert got.num_pts == want.num_pts
    assert got.bins == want.bins


@pytest.mark.parametrize("normalization", ["aps", "plain"])
@pytest.mark.parametrize("threshold", [0, 4, None, N])
def test_compiled_equals_definition_and_array_path(
    backend: Any, normalization: Literal["aps", "plain"], threshold: int | None
) -> None:
    """Every routing (all pixels dense, mixed, default, all pairs): C equals the double loop,
    and C, g2 and segment g2 equal the array path's, in float64."""
    frames, dyn, sta = make_case(rate=0.5, seed=8)
    t, p, c = events_of(frames)
    kw: dict[str, Any] = dict(
        normalization=normalization, dtype=np.float64, n_segments=3, dense_threshold=threshold
    )
    got = twotime_events(t, p, c, N, dyn, sta, compiled=True, **kw)
    ref = brute_force(frames, dyn, sta if normalization == "aps" else None)
    np.testing.assert_allclose(host(backend, got.c2), ref, rtol=RTOL)
    for batch in (5, 1 << 18):  # the array path, in tiny and whole pair blocks
        want = twotime_events(t, p, c, N, dyn, sta, compiled=False, pair_batch=batch, **kw)
        assert_same(backend, got, want)


def test_duplicates_and_shuffled_events(backend: Any) -> None:
    """Events split in two halves and shuffled (not in frame order): summed per (pixel, frame)."""
    frames, dyn, sta = make_case(rate=0.7, seed=5)
    t, p, c = events_of(frames)
    order = np.random.default_rng(0).permutation(2 * t.size)
    tt, pp = np.concatenate([t, t])[order], np.concatenate([p, p])[order]
    cc = np.concatenate([c / 2, c / 2])[order]
    c_before = cc.copy()
    res = twotime_events(tt, pp, cc, N, dyn, sta, dtype=np.float64, n_segments=2, compiled=True)
    np.testing.assert_allclose(host(backend, res.c2), brute_force(frames, dyn, sta), rtol=RTOL)
    np.testing.assert_array_equal(cc, c_before)  # inputs untouched
    # Duplicates in frame order too (the sort that skips the frame pass).
    fo = np.argsort(tt, kind="stable")
    res = twotime_events(tt[fo], pp[fo], cc[fo], N, dyn, sta, dtype=np.float64, compiled=True)
    np.testing.assert_allclose(host(backend, res.c2), brute_force(frames, dyn, sta), rtol=RTOL)


def test_empty_bin_and_empty_frames(backend: Any) -> None:
    """A bin without any photon and frames without photons in a bin: the same NaN rows and
    columns, g2 and warning as the array path."""
    frames, dyn, sta = make_case(rate=1.0, seed=3)
    frames[:, dyn == 2] = 0  # bin 2: no events at all
    frames[6] = 0
    t, p, c = events_of(frames)
    with pytest.warns(RuntimeWarning, match=r"bin 2: 23 frame\(s\), first 0") as rec:
        got = twotime_events(t, p, c, N, dyn, sta, dtype=np.float64, compiled=True)
    assert "bin 1: 1 frame(s), first 6" in str(rec[0].message)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        want = twotime_events(t, p, c, N, dyn, sta, dtype=np.float64, compiled=False)
    assert_same(backend, got, want)
    c2 = host(backend, got.c2)
    assert np.isnan(c2[1]).all()
    assert np.isnan(c2[0, 6]).all()
    assert np.isnan(c2[0, :, 6]).all()
    np.testing.assert_allclose(c2[[0, 2]], brute_force(frames, dyn, sta)[[0, 2]], rtol=RTOL)


def test_no_events_at_all(backend: Any) -> None:
    _, dyn, sta = make_case()
    empty = np.zeros(0, dtype=np.int64)
    with pytest.warns(RuntimeWarning, match="zero intensity"):
        got = twotime_events(empty, empty, empty, N, dyn, sta, compiled=True, keep_maps=False)
    assert got.c2 is None
    assert np.isnan(host(backend, got.g2)).all()


@pytest.mark.parametrize("threshold", [0, None])
def test_float32(backend: Any, threshold: int | None) -> None:
    """float32 maps (stored rounded, diagonal sums of the stored values) against the float64
    result; keep_maps=False gives the same g2 without maps."""
    frames, dyn, sta = make_case()
    t, p, c = events_of(frames)
    ref = twotime_events(t, p, c, N, dyn, sta, dtype=np.float64, compiled=False)
    f32 = twotime_events(t, p, c, N, dyn, sta, dtype=np.float32, compiled=True, dense_threshold=threshold)
    assert host(backend, f32.c2).dtype == np.float32
    np.testing.assert_allclose(host(backend, f32.c2), host(backend, ref.c2), rtol=2e-6)
    np.testing.assert_allclose(host(backend, f32.g2), host(backend, ref.g2), rtol=2e-6)
    lean = twotime_events(
        t, p, c, N, dyn, sta, dtype=np.float32, compiled=True, keep_maps=False, dense_threshold=threshold
    )
    assert lean.c2 is None
    np.testing.assert_allclose(host(backend, lean.g2), host(backend, f32.g2), rtol=1e-6)
    np.testing.assert_allclose(host(backend, lean.g2_segments), host(backend, f32.g2_segments), rtol=1e-6)


@pytest.mark.parametrize(("n_segments", "delays"), [(1, "all"), (4, "all"), (5, "multitau")])
def test_segments_and_delays(backend: Any, n_segments: int, delays: Any) -> None:
    frames, dyn, sta = make_case(n=31, seed=4)
    frames[:, 2:4, :] = np.random.default_rng(1).poisson(2.0, size=(31, 2, 9))  # busy pixels
    t, p, c = events_of(frames)
    for keep in (True, False):
        kw: dict[str, Any] = dict(dtype=np.float64, n_segments=n_segments, delays=delays, keep_maps=keep)
        got = twotime_events(t, p, c, 31, dyn, sta, compiled=True, dense_threshold=10, **kw)
        want = twotime_events(t, p, c, 31, dyn, sta, compiled=False, **kw)
        assert_same(backend, got, want)


def test_bins_subset(backend: Any) -> None:
    frames, dyn, sta = make_case()
    t, p, c = events_of(frames)
    got = twotime_events(t, p, c, N, dyn, sta, bins=[3, 1], dtype=np.float64, compiled=True)
    want = twotime_events(t, p, c, N, dyn, sta, bins=[3, 1], dtype=np.float64, compiled=False)
    assert_same(backend, got, want)
    np.testing.assert_allclose(host(backend, got.c2), brute_force(frames, dyn, sta)[[2, 0]], rtol=RTOL)


def test_compiled_none_is_the_compiled_loop_on_cpu(backend: Any) -> None:
    frames, dyn, sta = make_case()
    t, p, c = events_of(frames)
    auto = twotime_events(t, p, c, N, dyn, sta, dtype=np.float64)
    on = twotime_events(t, p, c, N, dyn, sta, dtype=np.float64, compiled=True)
    assert_same(backend, auto, on, rtol=0.0)  # the same code ran: bit for bit


def test_bad_events(backend: Any) -> None:
    """The compiled path checks the events in its first pass: the same errors as the array path."""
    frames, dyn, sta = make_case()
    t, p, c = events_of(frames)
    with pytest.raises(ValueError, match="frame indices must lie in"):
        twotime_events(t, p, c, 5, dyn, sta, n_segments=1, compiled=True)
    with pytest.raises(ValueError, match="frame indices must lie in"):
        twotime_events(t - 1, p, c, N, dyn, sta, compiled=True)
    with pytest.raises(ValueError, match="flat indices"):
        twotime_events(t, p + 1000, c, N, dyn, sta, compiled=True)
    with pytest.raises(ValueError, match="flat indices"):
        twotime_events(t, p - 1000, c, N, dyn, sta, compiled=True)
    with pytest.raises(ValueError, match="one entry per event"):
        twotime_events(t, p[:-1], c, N, dyn, sta, compiled=True)
    with pytest.raises(TypeError, match="integer indices"):
        twotime_events(t.astype(float), p, c, N, dyn, sta, compiled=True)
    for value, match in ((-1.0, "negative counts"), (np.nan, "NaN"), (np.inf, "infinite")):
        bad = c.astype(float)
        bad[3] = value
        with pytest.raises(FrameValueError, match=match):
            twotime_events(t, p, bad, N, dyn, sta, compiled=True)


def test_bad_compiled(backend: Any) -> None:
    frames, dyn, sta = make_case()
    t, p, c = events_of(frames)
    for bad in ("yes", 1, 0, np.bool_(True)):
        with pytest.raises(TypeError, match="compiled must be None, True or False"):
            twotime_events(t, p, c, N, dyn, sta, compiled=bad)  # type: ignore[arg-type]


def test_default_dense_threshold_compiled() -> None:
    assert default_dense_threshold(2000, compiled=True) == int(np.ceil(COMPILED_DENSE_FRACTION * 2000))
    assert default_dense_threshold(2000, np.float64, compiled=True) == default_dense_threshold(
        2000, compiled=True
    )
    # the compiled path runs on host arrays and BLAS whatever the backend
    assert default_dense_threshold(2000, backend="jax", compiled=True) == default_dense_threshold(
        2000, compiled=True
    )
    assert default_dense_threshold(2, compiled=True) == 1


def test_import_does_not_load_numba() -> None:
    """numba loads with the first compiled call, not with the module."""
    code = "import sys, xpcs_kernels.twotime_sparse; assert 'numba' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)
