"""Two-time correlation (dense frames) against a brute-force double loop, AR(1) speckle and boost_corr."""

from __future__ import annotations

import os
from typing import Any, Literal

import numpy as np
import pytest

from xpcs_device import use_backend
from xpcs_device.testing import HAS_JAX
from xpcs_kernels.reductions import FrameValueError
from xpcs_kernels.twotime import TwoTimeMemoryError, multitau_delays, twotime, twotime_memory_bytes

pytestmark = pytest.mark.usefixtures("fresh_backend")

RTOL = 1e-12


def make_maps(h: int = 7, w: int = 9, seed: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Dynamic bins 1..3 (0 masked), two static bins nested in each dynamic bin."""
    rng = np.random.default_rng(seed)
    dyn = rng.integers(1, 4, size=(h, w))
    dyn[0, :2] = 0
    sta = (dyn - 1) * 2 + rng.integers(1, 3, size=(h, w))
    sta[dyn == 0] = 0
    return dyn, sta


def make_stack(n: int = 17, h: int = 7, w: int = 9, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    lam = rng.uniform(0.5, 6.0, size=(h, w)) * rng.uniform(0.7, 1.3, size=(n, 1, 1))
    return rng.poisson(lam).astype(np.uint16)


def brute_force(frames: np.ndarray, dyn: np.ndarray, sta: np.ndarray | None) -> np.ndarray:
    """C(t1, t2) by the definition, one frame pair at a time, float64."""
    n = frames.shape[0]
    x = frames.reshape(n, -1).astype(np.float64)
    if sta is not None:
        for s in np.unique(sta[sta > 0]):
            m = sta.ravel() == s
            for t in range(n):
                mean = x[t, m].mean()
                x[t, m] = x[t, m] / (mean if mean > 0 else 1.0)
    out = []
    for d in np.unique(dyn[dyn > 0]):
        m = dyn.ravel() == d
        c = np.empty((n, n))
        for t1 in range(n):
            for t2 in range(n):
                c[t1, t2] = np.mean(x[t1, m] * x[t2, m]) / (x[t1, m].mean() * x[t2, m].mean())
        out.append(c)
    return np.stack(out)


def diagonal_means(c: np.ndarray, delays: np.ndarray) -> np.ndarray:
    return np.array([[np.nanmean(np.diagonal(ck, int(t))) for ck in c] for t in delays])


# False: the backend's own arrays (XLA tiles on JAX, NumPy's normalisation on NumPy); None:
# the default, the host path with the numba normalisation on a CPU.
BOTH_PATHS = pytest.mark.parametrize("compiled", [False, None], ids=["array", "default"])


def as_np(b: Any, x: Any) -> np.ndarray:
    return np.asarray(b.to_numpy(x))


@BOTH_PATHS
@pytest.mark.parametrize("normalization", ["aps", "plain"])
def test_brute_force_float64(
    backend: Any, normalization: Literal["aps", "plain"], compiled: bool | None
) -> None:
    dyn, sta = make_maps()
    frames = make_stack()
    before = frames.copy()
    res = twotime(
        frames,
        dyn,
        sta,
        normalization=normalization,
        dtype=np.float64,
        n_segments=3,
        block_frames=6,
        compiled=compiled,
    )
    ref = brute_force(frames, dyn, sta if normalization == "aps" else None)
    np.testing.assert_array_equal(frames, before)  # inputs are never modified
    np.testing.assert_allclose(as_np(backend, res.c2), ref, rtol=RTOL)
    assert res.bins == (1, 2, 3)
    assert res.n_frames == 17
    delays = np.arange(17)
    np.testing.assert_array_equal(as_np(backend, res.delays), delays)
    np.testing.assert_allclose(as_np(backend, res.g2), diagonal_means(ref, delays), rtol=RTOL)
    seg_len = 17 // 3
    assert res.segment_bounds == (0, 5, 10, 15)
    seg = np.stack(
        [
            diagonal_means(
                ref[:, s * seg_len : (s + 1) * seg_len, s * seg_len : (s + 1) * seg_len], np.arange(seg_len)
            )
            for s in range(3)
        ],
        axis=1,
    )
    np.testing.assert_allclose(as_np(backend, res.g2_segments), seg, rtol=RTOL)


def test_float32_close_to_float64(backend: Any) -> None:
    dyn, sta = make_maps()
    frames = make_stack()
    res = twotime(frames, dyn, sta, dtype=np.float32, n_segments=2)
    assert as_np(backend, res.c2).dtype == np.float32
    np.testing.assert_allclose(as_np(backend, res.c2), brute_force(frames, dyn, sta), rtol=2e-6)


@pytest.mark.jax
@pytest.mark.skipif(not HAS_JAX, reason="JAX (xpcs-jax) not installed")
@pytest.mark.parametrize(("dtype", "rtol"), [(np.float64, 1e-12), (np.float32, 1e-6)])
def test_numpy_equals_jax(dtype: Any, rtol: float) -> None:
    """NumPy (host path) against JAX's XLA tiles under jit and JAX's default (the host path
    on a CPU: maps handed back as JAX arrays)."""
    dyn, sta = make_maps(9, 10, seed=3)
    frames = make_stack(29, 9, 10, seed=4)
    results = {}
    for name, compiled in (("numpy", None), ("jax", False), ("jax", None)):
        with use_backend(name) as b:
            res = twotime(frames, dyn, sta, dtype=dtype, block_frames=8, compiled=compiled, jit=True)
            if name == "jax":
                assert not isinstance(res.c2, np.ndarray)
            results[name, compiled] = [as_np(b, a) for a in (res.c2, res.g2, res.g2_segments)]
    for key in (("jax", False), ("jax", None)):
        for a, c in zip(results["numpy", None], results[key], strict=True):
            np.testing.assert_allclose(c, a, rtol=rtol, atol=rtol)


def test_jit_equals_eager(backend: Any) -> None:
    dyn, sta = make_maps()
    frames = make_stack()
    a = twotime(frames, dyn, sta, dtype=np.float64, compiled=False, jit=True)
    c = twotime(frames, dyn, sta, dtype=np.float64, compiled=False, jit=False)
    np.testing.assert_allclose(as_np(backend, a.c2), as_np(backend, c.c2), rtol=RTOL)
    np.testing.assert_allclose(as_np(backend, a.g2), as_np(backend, c.g2), rtol=RTOL)


@pytest.mark.parametrize("chunk_frames", [1, 7])
def test_chunk_size_invariance(backend: Any, chunk_frames: int) -> None:
    dyn, sta = make_maps()
    frames = make_stack(19)
    whole = twotime(frames, dyn, sta, dtype=np.float64, block_frames=5)
    chunked = twotime(frames, dyn, sta, dtype=np.float64, block_frames=5, chunk_frames=chunk_frames)
    # A plain iterator of single frames: length unknown until the end.
    streamed = twotime(
        iter(list(frames)), dyn, sta, dtype=np.float64, block_frames=5, chunk_frames=chunk_frames
    )
    # Tiles do not depend on the chunks; only the per-frame sums may round differently (JAX).
    for other in (chunked, streamed):
        for name in ("c2", "g2", "g2_segments"):
            got, want = as_np(backend, getattr(other, name)), as_np(backend, getattr(whole, name))
            np.testing.assert_allclose(got, want, rtol=1e-14)


def test_block_size_and_tiles(backend: Any) -> None:
    dyn, sta = make_maps()
    frames = make_stack(23)
    ref = twotime(frames, dyn, sta, dtype=np.float64, block_frames=100)
    tiles: list[tuple[int, int, int, np.ndarray]] = []
    tiled = twotime(
        frames,
        dyn,
        sta,
        dtype=np.float64,
        block_frames=4,
        keep_maps=False,
        on_tile=lambda k, r, c, t: tiles.append((k, r, c, t.copy())),
    )
    assert tiled.c2 is None
    np.testing.assert_allclose(as_np(backend, tiled.g2), as_np(backend, ref.g2), rtol=RTOL)
    np.testing.assert_allclose(as_np(backend, tiled.g2_segments), as_np(backend, ref.g2_segments), rtol=RTOL)
    rebuilt = np.zeros((3, 24, 24))  # 23 frames in blocks of 4 (balanced): padded to 24
    for k, r, c, t in tiles:
        assert c >= r
        rebuilt[k, r : r + t.shape[0], c : c + t.shape[1]] = t
    np.testing.assert_allclose(np.triu(rebuilt[:, :23, :23]), np.triu(as_np(backend, ref.c2)), rtol=RTOL)


def test_bins_and_delays_selection(backend: Any) -> None:
    dyn, sta = make_maps()
    frames = make_stack(40)
    full = twotime(frames, dyn, sta, dtype=np.float64)
    part = twotime(frames, dyn, sta, dtype=np.float64, bins=[3, 1], delays="multitau")
    assert part.bins == (3, 1)
    delays = multitau_delays(40)
    np.testing.assert_array_equal(delays, [1, 2, 3, 4, 5, 6, 7, 8, 10, 12, 14, 16, 20, 24, 28, 32])
    np.testing.assert_allclose(as_np(backend, part.c2), as_np(backend, full.c2)[[2, 0]], rtol=RTOL)
    np.testing.assert_allclose(as_np(backend, part.g2), as_np(backend, full.g2)[delays][:, [2, 0]], rtol=RTOL)
    seg = as_np(backend, part.g2_segments)
    np.testing.assert_array_equal(as_np(backend, part.segment_delays), [1, 2, 3, 4, 5, 6, 7])
    np.testing.assert_allclose(seg, as_np(backend, full.g2_segments)[1:8][:, :, [2, 0]], rtol=RTOL)


def test_ar1_speckle_analytic(backend: Any) -> None:
    """Complex Gaussian field E_t = rho E_(t-1) + sqrt(1 - rho^2) noise, I = |E|^2:
    <C(t, t + tau)> = 1 + rho^(2 tau) (Siegert), tau > 0."""
    rng = np.random.default_rng(7)
    n, h, w, rho = 40, 40, 50, 0.8
    e = (rng.normal(size=(h, w)) + 1j * rng.normal(size=(h, w))) / np.sqrt(2)
    frames = np.empty((n, h, w))
    for t in range(n):
        noise = (rng.normal(size=(h, w)) + 1j * rng.normal(size=(h, w))) / np.sqrt(2)
        e = rho * e + np.sqrt(1 - rho**2) * noise if t else e
        frames[t] = np.abs(e) ** 2
    dyn = np.ones((h, w), dtype=np.int64)
    res = twotime(frames, dyn, normalization="plain", dtype=np.float64, delays=np.arange(1, 10))
    g2 = as_np(backend, res.g2)[:, 0]
    expected = 1 + rho ** (2 * np.arange(1, 10))
    np.testing.assert_allclose(g2, expected, atol=0.04)


@pytest.fixture
def boost_corr() -> Any:
    if os.environ.get("XPCS_REQUIRE_ORACLES") == "1":
        import boost_corr as module  # type: ignore[import-untyped,unused-ignore]  # must be installed: fail, never skip

        return module
    return pytest.importorskip(
        "boost_corr", reason="boost_corr (APS oracle, test-only; Python 3.11 CI environments) not installed"
    )


@pytest.mark.oracle
def test_boost_corr_oracle(backend: Any, boost_corr: Any) -> None:
    torch = pytest.importorskip("torch", reason="boost_corr needs torch")
    dyn, sta = make_maps(12, 14, seed=5)
    frames = make_stack(36, 12, 14, seed=6)
    n, h, w = frames.shape
    dflat, sflat = dyn.ravel(), sta.ravel()
    info: dict[str, list[Any]] = {"dq_slc": [], "sq_slc": [], "dq_idx": [], "sq_idx": []}
    order, pos = [], 0
    for d in (1, 2, 3):
        first = pos
        for s in np.unique(sflat[dflat == d]):
            idx = np.flatnonzero(sflat == s)
            order.append(idx)
            info["sq_slc"].append(slice(pos, pos + idx.size))
            info["sq_idx"].append(int(s))
            pos += idx.size
        info["dq_slc"].append(slice(first, pos))
        info["dq_idx"].append(d)
    crop = np.concatenate(order)
    tc = boost_corr.TwotimeCorrelator(info, frame_num=n, det_size=(h, w), mask_crop=torch.from_numpy(crop))
    tc.process(torch.from_numpy(frames.reshape(n, -1)[:, crop].astype(np.float32)))
    tc.post_processing(smooth_method="sqmap")
    payloads = list(tc.get_twotime_generator(num_partials=5))
    maps = [next(iter(p.values())) for p in payloads[:-1]]
    summary = payloads[-1]

    res = twotime(frames, dyn, sta, dtype=np.float32, n_segments=5)
    aps = res.to_aps()
    for k in range(3):
        np.testing.assert_allclose(aps[f"correlation_map/c2_{k + 1:05d}"], maps[k], rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(aps["normalized_g2"], summary["c2_g2"], rtol=1e-4)
    np.testing.assert_allclose(aps["normalized_g2_segments"], summary["c2_g2_segments"], rtol=1e-4)
    np.testing.assert_array_equal(aps["processed_bins"], summary["processed_bins"])


def test_to_aps_layout(backend: Any) -> None:
    dyn, sta = make_maps()
    res = twotime(make_stack(20), dyn, sta, n_segments=4)
    out = res.to_aps(stride_frame=2, avg_frame=3)
    assert sorted(out) == sorted(
        [f"correlation_map/c2_{k:05d}" for k in (1, 2, 3)]
        + [
            "normalized_g2",
            "normalized_g2_segments",
            "delay_list",
            "processed_bins",
            "config/stride_frame",
            "config/avg_frame",
        ]
    )
    c2 = out["correlation_map/c2_00002"]
    assert c2.shape == (20, 20)
    assert c2.dtype == np.float32
    assert np.all(np.tril(c2, -1) == 0)
    assert out["normalized_g2"].shape == (20, 3)
    assert out["normalized_g2_segments"].shape == (5, 4, 3)
    assert int(out["config/avg_frame"]) == 3


# ------------------------------------------------------------------------ bad input
def test_zero_intensity_frame_gives_nan_and_warning(backend: Any) -> None:
    dyn, sta = make_maps()
    frames = make_stack(12)
    frames[4][dyn == 2] = 0
    with pytest.warns(RuntimeWarning, match=r"bin 2: 1 frame\(s\), first 4"):
        res = twotime(frames, dyn, sta, dtype=np.float64, n_segments=2)
    c2 = as_np(backend, res.c2)
    assert np.isnan(c2[1, 4]).all()
    assert np.isnan(c2[1, :, 4]).all()
    assert np.isfinite(c2[0]).all()
    assert np.isfinite(c2[2]).all()
    ref = brute_force(np.delete(frames, 4, axis=0), dyn, sta)  # noqa: F841 (shape check only)
    with np.errstate(invalid="ignore"):
        expected = diagonal_means(np.where(np.isnan(c2), np.nan, c2), np.arange(12))
    np.testing.assert_allclose(as_np(backend, res.g2), expected, rtol=RTOL)


def test_bad_frames(backend: Any) -> None:
    dyn, sta = make_maps()
    frames = make_stack(10).astype(np.float64)
    with pytest.raises(ValueError, match="do not match the label maps' shape"):
        twotime(frames[:, :, :-1], dyn, sta)
    with pytest.raises(ValueError, match="do not match the label maps' shape"):
        twotime(iter(list(frames[:, :, :-1])), dyn, sta)
    nan = frames.copy()
    nan[3, 2, 2] = np.nan
    with pytest.raises(FrameValueError, match="NaN values in 1 frame"):
        twotime(nan, dyn, sta)
    neg = frames.copy()
    neg[5, 3, 3] = -1
    with pytest.raises(FrameValueError, match=r"negative values.*first in frame 5"):
        twotime(neg, dyn, sta)
    masked = frames.copy()
    masked[:, 0, 0] = -1  # a masked pixel (label 0) may hold anything
    twotime(masked, dyn, sta)
    with pytest.raises(ValueError, match="at least 2 frames"):
        twotime(frames[:1], dyn, sta, n_segments=1)
    with pytest.raises(ValueError, match="at least 2 frames"):
        twotime(iter([frames[0]]), dyn, sta, n_segments=1)
    with pytest.raises(ValueError, match="lower n_segments"):
        twotime(frames[:3], dyn, sta, n_segments=5)


def test_bad_labels_and_options(backend: Any) -> None:
    dyn, sta = make_maps()
    frames = make_stack(10)
    with pytest.raises(ValueError, match=r"dynamic bins \[7\] have no pixel"):
        twotime(frames, dyn, sta, bins=[1, 7])
    with pytest.raises(ValueError, match="needs static_labels"):
        twotime(frames, dyn)
    with pytest.raises(ValueError, match="static"):
        twotime(frames, dyn, np.ones_like(sta))  # one static bin across three dynamic bins
    with pytest.raises(TypeError, match="integer label map"):
        twotime(frames, dyn.astype(float), sta)
    with pytest.raises(ValueError, match="float32 or float64"):
        twotime(frames, dyn, sta, dtype=np.int32)
    with pytest.raises(ValueError, match="normalization"):
        twotime(frames, dyn, sta, normalization="smooth")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="delays must lie"):
        twotime(frames, dyn, sta, delays=[0, 10])


def test_memory_budget(backend: Any) -> None:
    dyn, sta = make_maps()
    frames = make_stack(10)
    need = twotime_memory_bytes(10, int((dyn > 0).sum()), 3, np.float32, block_frames=10)
    assert need >= 3 * 10 * 10 * 4
    with pytest.raises(TwoTimeMemoryError, match=r"needs about .* GiB but the memory budget is .*fewer bins"):
        twotime(frames, dyn, sta, memory_budget=need - 1)
    with pytest.raises(TwoTimeMemoryError, match="keep_maps=False"):
        twotime(iter(list(frames)), dyn, sta, memory_budget=1000)
    twotime(frames, dyn, sta, memory_budget=need)


@BOTH_PATHS
@pytest.mark.parametrize("normalization", ["aps", "plain"])
@pytest.mark.parametrize("product", ["tiles", "whole"])
def test_products_and_unaligned_blocks(
    backend: Any,
    product: Literal["tiles", "whole"],
    normalization: Literal["aps", "plain"],
    compiled: bool | None,
) -> None:
    """Both numerator strategies against the brute-force definition, with blocks that do not
    divide the segment length (23 frames, 3 segments of 7, blocks of at most 3 frames)."""
    dyn, sta = make_maps()
    frames = make_stack(23, seed=5)
    res = twotime(
        frames,
        dyn,
        sta,
        normalization=normalization,
        dtype=np.float64,
        n_segments=3,
        block_frames=3,
        product=product,
        chunk_frames=4,
        compiled=compiled,
    )
    ref = brute_force(frames, dyn, sta if normalization == "aps" else None)
    np.testing.assert_allclose(as_np(backend, res.c2), ref, rtol=RTOL)
    np.testing.assert_allclose(as_np(backend, res.g2), diagonal_means(ref, np.arange(23)), rtol=RTOL)
    seg = np.stack(
        [diagonal_means(ref[:, s * 7 : (s + 1) * 7, s * 7 : (s + 1) * 7], np.arange(7)) for s in range(3)],
        axis=1,
    )
    np.testing.assert_allclose(as_np(backend, res.g2_segments), seg, rtol=RTOL)


def test_bad_product(backend: Any) -> None:
    dyn, sta = make_maps()
    frames = make_stack(10)
    with pytest.raises(ValueError, match="product must be"):
        twotime(frames, dyn, sta, product="syrk")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="needs keep_maps=True"):
        twotime(frames, dyn, sta, product="whole", keep_maps=False)


@pytest.mark.parametrize(
    "frame_dtype", [np.uint8, np.int8, np.uint16, np.int32, np.uint64, np.float32, np.float64]
)
@BOTH_PATHS
def test_whole_equals_definition_for_frame_dtypes(
    backend: Any, frame_dtype: Any, compiled: bool | None
) -> None:
    """product="whole" (host arrays: in-place normalisation, by the numba loop for uint8 /
    uint16 frames by default, and SYRK, row-by-row diagonals; XLA's whole product on JAX with
    compiled=False) for every kind of frame, from an array and from an iterator of unknown
    length, against brute force."""
    dyn, sta = make_maps()
    frames = make_stack(21, seed=7)
    frames = frames.astype(frame_dtype)
    ref = brute_force(frames.astype(np.float64), dyn, sta)
    seg = np.stack(
        [diagonal_means(ref[:, s * 7 : (s + 1) * 7, s * 7 : (s + 1) * 7], np.arange(7)) for s in range(3)],
        axis=1,
    )
    for source in (frames, iter(list(frames))):
        res = twotime(
            source,
            dyn,
            sta,
            dtype=np.float64,
            n_segments=3,
            product="whole",
            chunk_frames=5,
            compiled=compiled,
        )
        np.testing.assert_allclose(as_np(backend, res.c2), ref, rtol=RTOL)
        np.testing.assert_allclose(as_np(backend, res.g2), diagonal_means(ref, np.arange(21)), rtol=RTOL)
        np.testing.assert_allclose(as_np(backend, res.g2_segments), seg, rtol=RTOL)


def test_whole_bad_frames(backend: Any) -> None:
    dyn, sta = make_maps()
    frames = make_stack(10).astype(np.float32)
    for bad_value, match in ((np.nan, "NaN values"), (np.inf, "infinite values"), (-2.0, "negative values")):
        bad = frames.copy()
        bad[7, 3, 3] = bad_value
        for source in (bad, iter(list(bad))):
            with pytest.raises(FrameValueError, match=match + r".*first in frame 7"):
                twotime(source, dyn, sta, product="whole", chunk_frames=3)
    signed = frames.astype(np.int16)
    signed[2, 4, 4] = -1
    with pytest.raises(FrameValueError, match=r"negative values.*first in frame 2"):
        twotime(signed, dyn, sta, product="whole")
    with pytest.raises(ValueError, match="do not match the label maps' shape"):
        twotime(iter(list(frames[:, :, :-1])), dyn, sta, product="whole")
    with pytest.raises(ValueError, match="at least 2 frames"):
        twotime(iter([frames[0]]), dyn, sta, n_segments=1, product="whole")


def test_compiled_argument(backend: Any) -> None:
    """compiled=True runs the host path on any CPU backend (JAX gets JAX arrays back), equal
    to the array path; other values are refused."""
    dyn, sta = make_maps()
    frames = make_stack(19, seed=11).astype(np.uint16)
    loops = twotime(frames, dyn, sta, dtype=np.float64, n_segments=2, compiled=True)
    plain = twotime(frames, dyn, sta, dtype=np.float64, n_segments=2, compiled=False)
    assert type(loops.c2) is type(plain.c2)
    for name in ("c2", "g2", "g2_segments"):
        np.testing.assert_allclose(
            as_np(backend, getattr(loops, name)), as_np(backend, getattr(plain, name)), rtol=RTOL
        )
    with pytest.raises(TypeError, match="compiled must be None, True or False"):
        twotime(frames, dyn, sta, compiled="yes")  # type: ignore[arg-type]
