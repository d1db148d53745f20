"""The compiled (numba) multi-tau lag sums against brute-force sums and against the array
kernels (XLA / NumPy) on the same frames; the dispatch of ``compiled=``."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from xpcs_kernels import compiled as compiled_mod
from xpcs_kernels.multitau import finalize_multitau, init_multitau, multitau, update_multitau

numba = pytest.importorskip("numba", reason="numba is a dependency of xpcs-kernels")
from xpcs_kernels import multitau_loops  # noqa: E402  (needs numba)

pytestmark = pytest.mark.usefixtures("fresh_backend")

FIELDS = ("normalized_g2", "normalized_g2_err", "static_g2", "G2", "IP", "IF")


def brute_lag_sums(hist: np.ndarray, x: np.ndarray, lags: tuple[int, ...]) -> np.ndarray:
    """``sum_t x[t] * y[t - tau]`` over the frames of x, y = hist then x, one product at a time."""
    y = np.concatenate([hist, x]).astype(np.int64)
    w = hist.shape[0]
    out = np.zeros((len(lags), x.shape[1]), dtype=np.int64)
    for k, tau in enumerate(lags):
        for t in range(x.shape[0]):
            out[k] += y[w + t] * y[w + t - tau]
    return out


@pytest.mark.parametrize("n", [1, 3, 7, 8, 9, 16, 23, 64])
@pytest.mark.parametrize(
    ("window", "lags", "pair_dtype"),
    [
        (8, tuple(range(1, 9)), np.uint16),
        (8, (5, 6, 7, 8), np.uint8),
        (16, tuple(range(9, 17)), np.int32),
        (4, (3, 4), np.float64),
        (8, tuple(range(1, 9)), None),
    ],
)
def test_correlate_group_brute_force(n: int, window: int, lags: tuple[int, ...], pair_dtype: Any) -> None:
    rng = np.random.default_rng(n * 31 + window)
    p = 2 * multitau_loops.PIXELS + 37  # several passes, a partial last one
    # counts within the float32 exactness the caller guarantees (64 * 300**2 < 2**24)
    counts = (np.uint8, 20) if pair_dtype in (np.uint8, None) else (np.uint16, 300)
    hist = rng.integers(0, counts[1], size=(window, p)).astype(counts[0])
    x = rng.integers(0, counts[1], size=(n, p)).astype(counts[0])
    products = rng.integers(0, 1000, size=(len(lags), p)).astype(np.float64)
    total = rng.integers(0, 1000, size=p).astype(np.float64)
    before = (hist.copy(), x.copy(), products.copy(), total.copy())
    out_p, out_t, pairs = multitau_loops.correlate_group(
        hist, x, lags, products, total, None if pair_dtype is None else np.dtype(pair_dtype)
    )
    np.testing.assert_array_equal(out_p, products + brute_lag_sums(hist, x, lags))
    np.testing.assert_array_equal(out_t, total + x.astype(np.int64).sum(axis=0))
    if pair_dtype is None:
        assert pairs is None
    else:
        assert pairs is not None
        assert pairs.dtype == pair_dtype
        expect = x[0 : n - 1 : 2].astype(np.int64) + x[1:n:2].astype(np.int64)
        np.testing.assert_array_equal(pairs.astype(np.int64), expect)
    for a, b in zip(before, (hist, x, products, total), strict=True):
        np.testing.assert_array_equal(a, b)  # inputs are never modified


def _labels(h: int, w: int, seed: int = 3) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    static = rng.integers(1, 9, size=(h, w))
    static[0, :3] = 0
    return static, np.where(static > 0, (static + 1) // 2, 0)


def _np(b: Any, x: Any) -> np.ndarray:
    return np.asarray(b.to_numpy(x))


def _same(b: Any, got: Any, want: Any) -> None:
    for name in FIELDS:
        g, w = getattr(got, name), getattr(want, name)
        if w is None:
            assert g is None
            continue
        assert b.is_array(g), name  # arrays of the active backend either way
        np.testing.assert_allclose(_np(b, g), _np(b, w), rtol=1e-12, atol=0, err_msg=name)


@pytest.mark.parametrize(
    ("dtype", "lam", "dpl", "stride", "avg", "group"),
    [
        (np.uint8, 0.3, 4, 1, 1, 16),
        (np.uint8, 0.3, 4, 1, 1, None),
        (np.uint16, 40.0, 4, 1, 1, 64),  # higher levels leave float32: mixed compiled / array levels
        (np.uint16, 2.0, 8, 1, 1, 32),  # 16 lags at level 0
        (np.uint8, 1.0, 3, 2, 3, 8),
        (np.int32, 5.0, 4, 1, 1, 8),
    ],
)
def test_compiled_equals_array_path(
    backend: Any, dtype: Any, lam: float, dpl: int, stride: int, avg: int, group: int | None
) -> None:
    static, dynamic = _labels(20, 70)
    rng = np.random.default_rng(11)
    frames = rng.poisson(lam * rng.uniform(0.5, 1.5, size=(20, 70)), size=(300, 20, 70)).astype(dtype)
    kw: dict[str, Any] = {
        "lags_per_level": dpl,
        "stride": stride,
        "avg": avg,
        "group_frames": group,
        "keep_unnormalized": True,
        "chunk_frames": 37,
        "n_segments": 2,
    }
    want = multitau(frames, static, dynamic, compiled=False, **kw)
    got = multitau(frames, static, dynamic, compiled=True, **kw)
    _same(backend, got, want)
    for name in ("g2_partial", "g2_partial_err"):
        np.testing.assert_allclose(
            _np(backend, getattr(got, name)), _np(backend, getattr(want, name)), rtol=1e-12
        )


def test_count_bound_growing_mid_stream(backend: Any) -> None:
    """Sparse counts first (float32 sums), then large ones (the same levels fall back to the
    array kernel part-way): equal to the array path and to an unchunked run."""
    static, dynamic = _labels(12, 90)
    rng = np.random.default_rng(2)
    frames = rng.poisson(0.2, size=(200, 12, 90)).astype(np.uint16)
    frames[120:] = rng.integers(1000, 4000, size=(80, 12, 90)).astype(np.uint16)
    state = init_multitau(static, dynamic, group_frames=16, compiled=True)
    for start in range(0, 200, 40):
        state = update_multitau(state, frames[start : start + 40])
    got = finalize_multitau(state, keep_unnormalized=True)
    want = multitau(frames, static, dynamic, group_frames=16, keep_unnormalized=True, compiled=False)
    _same(backend, got, want)


def test_consume_updates_in_place_and_default_keeps_states(backend: Any) -> None:
    """consume=True (the sums added in place) gives the result of the default, with partial
    g2 segments too; without it every earlier state still finalises to its own result."""
    static, dynamic = _labels(10, 70)
    frames = np.random.default_rng(4).poisson(0.4, size=(160, 10, 70)).astype(np.uint8)
    kwargs: dict[str, Any] = {"group_frames": 8, "n_frames_total": 160, "n_segments": 2, "compiled": True}
    consumed = init_multitau(static, dynamic, **kwargs)
    kept = [init_multitau(static, dynamic, group_frames=8, compiled=True)]  # finalisable any time
    for start in range(0, 160, 24):
        consumed = update_multitau(consumed, frames[start : start + 24], consume=True)
        kept.append(update_multitau(kept[-1], frames[start : start + 24]))
    want = multitau(
        frames, static, dynamic, group_frames=8, n_segments=2, keep_unnormalized=True, compiled=False
    )
    _same(backend, finalize_multitau(consumed, keep_unnormalized=True), want)
    _same(backend, finalize_multitau(kept[-1], keep_unnormalized=True), want)
    # an earlier state, updated again since: still the first 96 frames' correlation
    early = init_multitau(static, dynamic, group_frames=8, compiled=False)
    early = update_multitau(early, frames[:96])
    _same(
        backend,
        finalize_multitau(kept[4], keep_unnormalized=True),
        finalize_multitau(early, keep_unnormalized=True),
    )


def test_masked_detector_gathers_pixels(backend: Any) -> None:
    static, dynamic = _labels(40, 60)
    static[5:, :] = 0  # under half the pixels in bins: the correlator gathers them
    dynamic = np.where(static > 0, dynamic, 0)
    frames = np.random.default_rng(4).poisson(0.7, size=(90, 40, 60)).astype(np.uint8)
    want = multitau(frames, static, dynamic, keep_unnormalized=True, compiled=False)
    got = multitau(frames, static, dynamic, keep_unnormalized=True, compiled=True)
    _same(backend, got, want)


def test_dispatch(backend: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """``None`` takes the loop on a CPU, ``False`` never; bad values and an impossible
    ``True`` are refused with a message."""
    calls: list[int] = []
    real = multitau_loops.correlate_group

    def spy(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(multitau_loops, "correlate_group", spy)
    static, dynamic = _labels(6, 7)
    frames = np.random.default_rng(0).poisson(1.0, size=(40, 6, 7)).astype(np.uint8)
    multitau(frames, static, dynamic, compiled=False)
    assert not calls
    multitau(frames, static, dynamic)
    assert calls
    with pytest.raises(TypeError, match="compiled must be None, True or False"):
        multitau(frames, static, dynamic, compiled="yes")  # type: ignore[arg-type]
    monkeypatch.setattr(compiled_mod, "compiled_available", lambda: False)
    with pytest.raises(ValueError, match="needs numba"):
        init_multitau(static, dynamic, compiled=True)
    assert not init_multitau(static, dynamic).compiled  # auto falls back without numba
