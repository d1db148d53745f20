"""Two-time correlation of photon events against the dense path and the brute-force definition.

The oracle tests run on the array formulation (``compiled=False``) and on the default (the
compiled loop on a CPU); the tests of the array path's own machinery (pair blocks, dense
routing, event checks) pin ``compiled=False``. The compiled loop's own routing, checks and
comparisons with the array path are in ``test_twotime_events_compiled.py``.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
import pytest

from xpcs_kernels.reductions import FrameValueError
from xpcs_kernels.twotime import TwoTimeMemoryError, twotime
from xpcs_kernels.twotime_sparse import _radix_order, default_dense_threshold, twotime_events

pytestmark = pytest.mark.usefixtures("fresh_backend")

RTOL = 1e-12

# False: the array formulation (pair blocks, np.add.at); None: the default, the compiled loop
# on a CPU with numba.
BOTH_PATHS = pytest.mark.parametrize("compiled", [False, None], ids=["array", "default"])


def make_case(
    n: int = 21, h: int = 8, w: int = 9, rate: float = 0.3, seed: int = 2
) -> tuple[np.ndarray, ...]:
    rng = np.random.default_rng(seed)
    dyn = rng.integers(1, 4, size=(h, w))
    dyn[0, :2] = 0
    sta = (dyn - 1) * 2 + rng.integers(1, 3, size=(h, w))
    sta[dyn == 0] = 0
    frames = rng.poisson(rate, size=(n, h, w)).astype(np.uint8)
    frames[:, 0, 0] = 3  # photons on a masked pixel are ignored
    return frames, dyn, sta


def events_of(frames: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    flat = frames.reshape(frames.shape[0], -1)
    t, p = np.nonzero(flat)
    return t, p, flat[t, p]


def brute_force_plain(frames: np.ndarray, dyn: np.ndarray) -> np.ndarray:
    n = frames.shape[0]
    x = frames.reshape(n, -1).astype(np.float64)
    out = []
    for d in (1, 2, 3):
        m = dyn.ravel() == d
        c = np.empty((n, n))
        for t1 in range(n):
            for t2 in range(n):
                c[t1, t2] = np.mean(x[t1, m] * x[t2, m]) / (x[t1, m].mean() * x[t2, m].mean())
        out.append(c)
    return np.stack(out)


@BOTH_PATHS
@pytest.mark.parametrize("normalization", ["aps", "plain"])
def test_equal_to_dense(backend: Any, normalization: Literal["aps", "plain"], compiled: bool | None) -> None:
    frames, dyn, sta = make_case()
    dense = twotime(frames, dyn, sta, normalization=normalization, dtype=np.float64, n_segments=3)
    t, p, c = events_of(frames)
    sparse = twotime_events(
        t,
        p,
        c,
        21,
        dyn,
        sta,
        normalization=normalization,
        dtype=np.float64,
        n_segments=3,
        pair_batch=50,
        compiled=compiled,
    )
    for name in ("c2", "g2", "g2_segments", "delays", "segment_delays"):
        np.testing.assert_allclose(
            np.asarray(backend.to_numpy(getattr(sparse, name))),
            np.asarray(backend.to_numpy(getattr(dense, name))),
            rtol=RTOL,
            atol=1e-14,
        )
    assert sparse.segment_bounds == dense.segment_bounds
    assert sparse.num_pts == dense.num_pts


@BOTH_PATHS
def test_brute_force_and_duplicates(backend: Any, compiled: bool | None) -> None:
    frames, dyn, _ = make_case(seed=5, rate=0.6)
    t, p, c = events_of(frames)
    # Split every event into two halves and shuffle: repeated events are summed.
    order = np.random.default_rng(0).permutation(2 * t.size)
    tt, pp, cc = (
        np.concatenate([t, t])[order],
        np.concatenate([p, p])[order],
        np.concatenate([c / 2, c / 2])[order],
    )
    res = twotime_events(
        tt, pp, cc, 21, dyn, normalization="plain", dtype=np.float64, n_segments=2, compiled=compiled
    )
    np.testing.assert_allclose(
        np.asarray(backend.to_numpy(res.c2)), brute_force_plain(frames, dyn), rtol=RTOL
    )


def test_float32_and_pair_batch(backend: Any) -> None:
    frames, dyn, sta = make_case()
    t, p, c = events_of(frames)
    ref = twotime_events(t, p, c, 21, dyn, sta, dtype=np.float64, pair_batch=7, compiled=False)
    f32 = twotime_events(t, p, c, 21, dyn, sta, dtype=np.float32, keep_maps=False, compiled=False)
    assert f32.c2 is None
    np.testing.assert_allclose(
        np.asarray(backend.to_numpy(f32.g2)), np.asarray(backend.to_numpy(ref.g2)), rtol=2e-6
    )


def test_zero_frames_warn(backend: Any) -> None:
    frames, dyn, sta = make_case(rate=1.0)
    frames[6] = 0
    t, p, c = events_of(frames)
    with pytest.warns(RuntimeWarning, match=r"bin 1: 1 frame\(s\), first 6"):
        res = twotime_events(t, p, c, 21, dyn, sta, dtype=np.float64, compiled=False)
    c2 = np.asarray(backend.to_numpy(res.c2))
    assert np.isnan(c2[:, 6]).all()
    assert np.isnan(c2[:, :, 6]).all()
    assert np.isfinite(np.asarray(backend.to_numpy(res.g2))).all()


def test_bad_events(backend: Any) -> None:
    """The array path's checks (the compiled path's are in test_twotime_events_compiled.py)."""
    frames, dyn, sta = make_case()
    t, p, c = events_of(frames)
    with pytest.raises(ValueError, match="frame indices must lie in"):
        twotime_events(t, p, c, 5, dyn, sta, n_segments=1, compiled=False)
    with pytest.raises(ValueError, match="flat indices"):
        twotime_events(t, p + 1000, c, 21, dyn, sta, compiled=False)
    with pytest.raises(ValueError, match="one entry per event"):
        twotime_events(t, p[:-1], c, 21, dyn, sta, compiled=False)
    bad = c.astype(float)
    bad[3] = -1.0
    with pytest.raises(FrameValueError, match="negative counts"):
        twotime_events(t, p, bad, 21, dyn, sta, compiled=False)
    bad[3] = np.nan
    with pytest.raises(FrameValueError, match="NaN"):
        twotime_events(t, p, bad, 21, dyn, sta, compiled=False)
    with pytest.raises(TypeError, match="integer indices"):
        twotime_events(t.astype(float), p, c, 21, dyn, sta, compiled=False)
    # argument checks shared by both paths (here on the default path)
    with pytest.raises(ValueError, match="at least 2 frames"):
        twotime_events(t[:0], p[:0], c[:0], 1, dyn, sta, n_segments=1)
    with pytest.raises(ValueError, match="have no pixel"):
        twotime_events(t, p, c, 21, dyn, sta, bins=[9])
    with pytest.raises(TwoTimeMemoryError, match="memory budget"):
        twotime_events(t, p, c, 21, dyn, sta, memory_budget=100)


@pytest.mark.parametrize("threshold", [0, 3, 6, 21])
def test_dense_threshold_routes_equal_definition(backend: Any, threshold: int) -> None:
    """All pixels dense (0), all as event pairs (>= n_frames) and mixtures: the same C, g2 and
    segment g2 as the dense path, with tiny pair blocks (pair_batch) and events out of order,
    on the array path (the compiled routing: test_twotime_events_compiled.py)."""
    frames, dyn, sta = make_case(rate=0.5, seed=8)
    dense = twotime(frames, dyn, sta, dtype=np.float64, n_segments=3)
    t, p, c = events_of(frames)
    order = np.random.default_rng(1).permutation(t.size)
    for batch in (5, 1 << 18):
        for tt, pp, cc in ((t, p, c), (t[order], p[order], c[order])):
            res = twotime_events(
                tt,
                pp,
                cc,
                21,
                dyn,
                sta,
                dtype=np.float64,
                n_segments=3,
                dense_threshold=threshold,
                pair_batch=batch,
                compiled=False,
            )
            for name in ("c2", "g2", "g2_segments"):
                np.testing.assert_allclose(
                    np.asarray(backend.to_numpy(getattr(res, name))),
                    np.asarray(backend.to_numpy(getattr(dense, name))),
                    rtol=RTOL,
                    atol=1e-14,
                )


@BOTH_PATHS
def test_busy_and_quiet_pixels_against_brute_force(backend: Any, compiled: bool | None) -> None:
    """Pixels of very different rates (some above, some below the default threshold), plain
    normalisation, against the double loop; keep_maps=False gives the same g2."""
    rng = np.random.default_rng(3)
    frames, dyn, _ = make_case(n=40, rate=0.1, seed=4)
    frames[:, 2:4, :] = rng.poisson(2.0, size=(40, 2, 9)).astype(np.uint8)  # busy rows
    t, p, c = events_of(frames)
    res = twotime_events(
        t, p, c, 40, dyn, normalization="plain", dtype=np.float64, n_segments=2, compiled=compiled
    )
    np.testing.assert_allclose(
        np.asarray(backend.to_numpy(res.c2)), brute_force_plain(frames, dyn), rtol=RTOL
    )
    lean = twotime_events(
        t,
        p,
        c,
        40,
        dyn,
        normalization="plain",
        dtype=np.float64,
        n_segments=2,
        keep_maps=False,
        compiled=compiled,
    )
    assert lean.c2 is None
    np.testing.assert_allclose(
        np.asarray(backend.to_numpy(lean.g2_segments)),
        np.asarray(backend.to_numpy(res.g2_segments)),
        rtol=RTOL,
    )


def test_radix_order_is_a_stable_sort() -> None:
    rng = np.random.default_rng(0)
    for bound in (7, 1 << 16, (1 << 16) + 3, 1 << 40):
        key = rng.integers(0, bound, size=5000)
        np.testing.assert_array_equal(_radix_order(key, bound), np.argsort(key, kind="stable"))
    assert _radix_order(np.zeros(0, dtype=np.int64), 1).size == 0


def test_default_dense_threshold() -> None:
    assert default_dense_threshold(2000) == 70
    assert default_dense_threshold(2000, np.float64) > 70
    assert default_dense_threshold(2000, backend="jax") > default_dense_threshold(2000)
    assert default_dense_threshold(3) == 1


def test_bad_dense_threshold(backend: Any) -> None:
    frames, dyn, sta = make_case()
    t, p, c = events_of(frames)
    for bad in (-1, 2.5, True):
        with pytest.raises(ValueError, match="dense_threshold must be a non-negative integer"):
            twotime_events(t, p, c, 21, dyn, sta, dense_threshold=bad)  # type: ignore[arg-type]
