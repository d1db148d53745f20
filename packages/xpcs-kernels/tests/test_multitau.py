"""Multi-tau g2 against a brute-force per-pixel correlation, an analytic speckle model and
boost_corr (APS)."""

from __future__ import annotations

import importlib
import os
import warnings
from types import ModuleType
from typing import Any

import numpy as np
import pytest

from xpcs_device import use_backend
from xpcs_device.testing import HAS_JAX
from xpcs_kernels import multitau_sparse
from xpcs_kernels.multitau import (
    MultitauResult,
    delay_list,
    finalize_multitau,
    init_multitau,
    multitau,
    update_multitau,
)
from xpcs_kernels.multitau_sparse import multitau_events
from xpcs_kernels.reductions import FrameValueError

pytestmark = pytest.mark.usefixtures("fresh_backend")

RTOL = 1e-12


def require_oracle(module: str, reason: str) -> ModuleType:
    """``pytest.importorskip``, except that with ``XPCS_REQUIRE_ORACLES=1`` a missing oracle
    fails the test instead of skipping it (CI environments that must run it)."""
    if os.environ.get("XPCS_REQUIRE_ORACLES") == "1":
        try:
            found: ModuleType = importlib.import_module(module)
            return found
        except ImportError as exc:  # pragma: no cover - depends on the environment
            pytest.fail(f"XPCS_REQUIRE_ORACLES=1 but the oracle {module!r} is missing ({reason}): {exc}")
    skipped: ModuleType = pytest.importorskip(module, reason=reason)
    return skipped


# ------------------------------------------------------------------------------ data
def make_labels(h: int = 6, w: int = 7, seed: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Static bins 1..6 nested in dynamic bins 1..3 (static k in dynamic (k+1)//2); a few
    masked pixels."""
    rng = np.random.default_rng(seed)
    static = rng.integers(1, 7, size=(h, w))
    static[0, :2] = 0
    dynamic = np.where(static > 0, (static + 1) // 2, 0)
    return static, dynamic


def make_stack(
    n: int = 70, h: int = 6, w: int = 7, dtype: Any = np.uint16, seed: int = 0, lam: float = 3.0
) -> np.ndarray:
    rng = np.random.default_rng(seed)
    rates = rng.uniform(0.5, 2.0, size=(h, w)) * lam
    counts = rng.poisson(rates, size=(n, h, w))
    if np.dtype(dtype).kind == "f":
        return (counts * rng.uniform(0.5, 1.5, size=(n, h, w))).astype(dtype)
    return counts.astype(dtype)


# --------------------------------------------------------------------------- oracle
def brute_force(
    frames: np.ndarray,
    static: np.ndarray,
    dynamic: np.ndarray,
    dpl: int = 4,
    stride: int = 1,
    avg: int = 1,
) -> dict[str, np.ndarray]:
    """The definitions, pair by pair: effective frames, level frames by pair averaging, then
    for every delay and pixel the explicit sums over t of x[t] * x[t + tau]; then the APS
    normalisation with loops over bins."""
    n_raw = frames.shape[0]
    block = stride * avg
    n_eff = n_raw // block
    x = frames[: n_eff * block].astype(np.float64).reshape(n_eff, avg, stride, -1)[:, :, 0].mean(axis=1)
    levels = [x]
    delays, g2p, ip, if_ = [], [], [], []
    level = 0
    while True:
        xl = levels[level]
        n = xl.shape[0]
        lags = range(1, 2 * dpl + 1) if level == 0 else range(dpl + 1, 2 * dpl + 1)
        stop = False
        for tau in lags:
            if tau >= n:
                stop = True
                break
            prod = np.zeros(xl.shape[1])
            for t in range(n - tau):  # O(N) per lag, O(N^2) in all: the plain definition
                prod += xl[t] * xl[t + tau]
            g2p.append(prod / (n - tau))
            ip.append(xl[: n - tau].mean(axis=0))
            if_.append(xl[tau:].mean(axis=0))
            delays.append(tau * 2**level)
        if stop or n // 2 < 1:
            break
        pairs = (xl[0 : n // 2 * 2 : 2] + xl[1 : n // 2 * 2 : 2]) / 2.0
        levels.append(pairs)
        level += 1
    G2, IP, IF = np.array(g2p), np.array(ip), np.array(if_)
    s = static.reshape(-1)
    d = dynamic.reshape(-1)
    ks, kd = int(static.max()), int(dynamic.max())
    g2_static = np.full((len(delays), ks), np.nan)
    for k in range(1, ks + 1):
        sel = s == k
        if sel.any():
            den = IP[:, sel].mean(axis=1) * IF[:, sel].mean(axis=1)
            with np.errstate(invalid="ignore", divide="ignore"):
                g2_static[:, k - 1] = np.where(den > 0, G2[:, sel].mean(axis=1) / den, np.nan)
    g2 = np.full((len(delays), kd), np.nan)
    err = np.full((len(delays), kd), np.nan)
    for k in range(1, kd + 1):
        members = [j for j in range(1, ks + 1) if ((s == j) & (d == k)).any()]
        if members:
            g2[:, k - 1] = g2_static[:, [j - 1 for j in members]].mean(axis=1)
        sel = (d == k) & (s > 0)
        for r in range(len(delays)):
            den = IP[r, sel] * IF[r, sel]
            vals = G2[r, sel][den > 0] / den[den > 0]
            if vals.size > 1:
                err[r, k - 1] = vals.std(ddof=1) / np.sqrt(vals.size)
    h, w = static.shape
    return {
        "delays": np.array(delays),
        "g2": g2,
        "err": err,
        "static": g2_static,
        "G2": G2.reshape(-1, h, w),
        "IP": IP.reshape(-1, h, w),
        "IF": IF.reshape(-1, h, w),
    }


def np_(b: Any, x: Any) -> np.ndarray:
    return np.asarray(b.to_numpy(x))


def assert_matches(
    b: Any, res: MultitauResult, ref: dict[str, np.ndarray], rtol: float = RTOL, pixels: bool = False
) -> None:
    np.testing.assert_array_equal(res.delay_frames, ref["delays"])
    np.testing.assert_allclose(np_(b, res.normalized_g2), ref["g2"], rtol=rtol, atol=0)
    np.testing.assert_allclose(np_(b, res.normalized_g2_err), ref["err"], rtol=1e-9, atol=1e-15)
    np.testing.assert_allclose(np_(b, res.static_g2), ref["static"], rtol=rtol, atol=0)
    if pixels:
        assert res.G2 is not None
        assert res.IP is not None
        assert res.IF is not None
        valid = np.broadcast_to(make_valid(ref), ref["G2"].shape)
        for name, value in (("G2", res.G2), ("IP", res.IP), ("IF", res.IF)):
            got = np_(b, value)
            np.testing.assert_allclose(got[valid], ref[name][valid], rtol=rtol, atol=0, err_msg=name)
            assert np.isnan(got[~valid]).all()


_VALID: dict[int, np.ndarray] = {}


def make_valid(ref: dict[str, np.ndarray]) -> np.ndarray:
    return _VALID[id(ref)]


# ---------------------------------------------------------------------------- delays
def test_delay_list_aps() -> None:
    expected = [1, 2, 3, 4, 5, 6, 7, 8, 10, 12, 14, 16, 20, 24, 28, 32, 40, 48, 56, 64, 80, 96, 112, 128]
    assert delay_list(2000)[: len(expected)].tolist() == expected
    assert delay_list(2000)[-1] == 1536  # level 8: 6 * 256 < 1792 <= 7 * 256
    assert delay_list(9, lags_per_level=2).tolist() == [1, 2, 3, 4, 6]  # level 1 has 4 frames
    assert delay_list(2).tolist() == [1]


@pytest.mark.oracle
def test_delay_list_equals_boost_corr() -> None:
    help_functions = require_oracle("boost_corr.help_functions", "boost_corr (APS) is a test-only oracle")
    for n in (5, 9, 17, 33, 100, 777, 2000, 10_000, 123_457):
        for dpl in (4, 8):
            if n <= dpl:  # boost_corr then lists lags 1..dpl >= n, which have no frame pair
                continue
            ref = help_functions.gen_tau_bin(n, dpl=dpl)[0]
            np.testing.assert_array_equal(delay_list(n, dpl), ref)


@pytest.mark.parametrize("bad", [0, 1, -3, 2.5, True])
def test_delay_list_bad(bad: Any) -> None:
    with pytest.raises(ValueError, match=r"n_frames|2 frames"):
        delay_list(bad)


# ------------------------------------------------------------------ brute-force oracle
@pytest.mark.parametrize(
    ("dtype", "dpl", "stride", "avg", "n"),
    [
        (np.uint16, 4, 1, 1, 70),
        (np.uint8, 4, 1, 1, 45),
        (np.float32, 4, 1, 1, 37),
        (np.int32, 2, 1, 1, 50),
        (np.uint16, 3, 2, 1, 81),
        (np.uint8, 4, 1, 3, 100),
        (np.uint16, 4, 3, 2, 125),
    ],
)
@pytest.mark.parametrize("compiled", [False, None])
def test_brute_force(
    backend: Any, dtype: Any, dpl: int, stride: int, avg: int, n: int, compiled: bool | None
) -> None:
    static, dynamic = make_labels()
    frames = make_stack(n=n, dtype=dtype)
    before = frames.copy()
    ref = brute_force(frames, static, dynamic, dpl, stride, avg)
    _VALID[id(ref)] = static > 0
    res = multitau(
        frames,
        static,
        dynamic,
        lags_per_level=dpl,
        stride=stride,
        avg=avg,
        keep_unnormalized=True,
        chunk_frames=11,
        compiled=compiled,
    )
    assert_matches(backend, res, ref, pixels=True)
    np.testing.assert_array_equal(frames, before)  # inputs are never modified
    assert res.n_frames == n // (stride * avg)


def test_exact_for_large_counts(backend: Any) -> None:
    """Counts near the dtype's range take the float64 path where int32 could overflow."""
    static, dynamic = make_labels()
    for dtype, value in ((np.uint8, 255), (np.uint16, 60_000)):
        frames = make_stack(n=40, dtype=np.int64, lam=1.0)
        frames = np.minimum(frames * value, value).astype(dtype)
        ref = brute_force(frames, static, dynamic)
        res = multitau(frames, static, dynamic, group_frames=8)
        np.testing.assert_allclose(np_(backend, res.normalized_g2), ref["g2"], rtol=RTOL)


def test_compute_dtype_boundaries() -> None:
    """The group accumulator is int16 while every sum stays below 2**15, float32 below
    2**24, int32 below 2**31, float64 beyond (and for float input): checked at both sides
    of each limit."""
    from xpcs_kernels.multitau_levels import compute_dtype

    peak2 = 255 * 255
    last_f32 = (2**24 - 1) // peak2  # 258 frames of 8-bit counts
    last_i32 = (2**31 - 1) // peak2  # 33025
    assert compute_dtype(0, last_f32, 8, 255) == np.float32
    assert compute_dtype(0, last_f32 + 1, 8, 255) == np.int32
    assert compute_dtype(0, last_i32, 8, 255) == np.int32
    assert compute_dtype(0, last_i32 + 1, 8, 255) == np.float64
    # level l frames are sums of 2**l frames: the bound scales with 2**l
    assert compute_dtype(1, last_f32 // 4, 8, 255) == np.float32
    assert compute_dtype(1, last_f32 // 4 + 1, 8, 255) == np.int32
    assert compute_dtype(0, 8, 8, None) == np.float64
    # int16 while the sums stay below 2**15 (sparse counts)
    last_i16 = (2**15 - 1) // 25  # 1310 frames of counts <= 5
    assert compute_dtype(0, last_i16, 8, 5) == np.int16
    assert compute_dtype(0, last_i16 + 1, 8, 5) == np.float32
    assert compute_dtype(1, last_i16 // 4, 8, 5) == np.int16
    assert compute_dtype(1, last_i16 // 4 + 1, 8, 5) == np.float32


@pytest.mark.parametrize("compiled", [False, None])
@pytest.mark.parametrize("group", [256, 512])
def test_exact_at_accumulator_limits(backend: Any, group: int, compiled: bool | None) -> None:
    """8-bit counts near 255 in groups of 256 frames (float32 accumulator, sums just below
    2**24) and 512 (int32): per-pixel G2 equal to the brute force; float32 itself would
    round these sums, so an accumulator chosen too narrow fails here."""
    static, dynamic = make_labels(h=3, w=4)
    rng = np.random.default_rng(5)
    frames = rng.integers(200, 256, size=(2 * group, 3, 4)).astype(np.uint8)
    flat = frames.reshape(frames.shape[0], -1).astype(np.int64)
    exact = (flat[1:512] * flat[:511]).sum(axis=0)  # lag 1 over 512 frames: > 2**24
    rounded = np.zeros(flat.shape[1], np.float32)
    for t in range(511):
        rounded += (flat[t + 1] * flat[t]).astype(np.float32)
    assert exact.max() > 2**24
    assert (rounded != exact).any()  # the data do expose float32 rounding
    ref = brute_force(frames, static, dynamic)
    _VALID[id(ref)] = static > 0
    res = multitau(frames, static, dynamic, group_frames=group, keep_unnormalized=True, compiled=compiled)
    assert_matches(backend, res, ref, pixels=True)
    res_eager = multitau(
        frames, static, dynamic, group_frames=group, keep_unnormalized=True, jit=False, compiled=compiled
    )
    assert_matches(backend, res_eager, ref, pixels=True)


@pytest.mark.parametrize("compiled", [False, None])
@pytest.mark.parametrize("group", [8, 16])
def test_exact_at_int16_limit(backend: Any, group: int, compiled: bool | None) -> None:
    """Counts up to 45 (45**2 * 16 = 32400, just below 2**15): groups of 16 frames (and
    of 8) take the int16 accumulator at level 0; per-pixel G2 equal to the brute force
    (an int16 sum that overflowed would wrap and be far off)."""
    static, dynamic = make_labels(h=3, w=4)
    rng = np.random.default_rng(7)
    frames = rng.integers(40, 46, size=(64, 3, 4)).astype(np.uint8)
    frames[:, 0, 0] = 45  # one pixel exactly at the bound: its lag sums are 16 * 2025 per group
    ref = brute_force(frames, static, dynamic)
    _VALID[id(ref)] = static > 0
    res = multitau(frames, static, dynamic, group_frames=group, keep_unnormalized=True, compiled=compiled)
    assert_matches(backend, res, ref, pixels=True)


def test_sparse_pixels_gathered(backend: Any) -> None:
    """Most pixels masked: the correlator gathers the few valid pixels; same result."""
    static, dynamic = make_labels(h=10, w=12)
    static[3:, :] = 0
    dynamic = np.where(static > 0, dynamic, 0)
    frames = make_stack(n=30, h=10, w=12)
    ref = brute_force(frames, static, dynamic)
    _VALID[id(ref)] = static > 0
    res = multitau(frames, static, dynamic, keep_unnormalized=True)
    assert_matches(backend, res, ref, pixels=True)


# ---------------------------------------------------------------- streaming, backends
@pytest.mark.parametrize("compiled", [False, None])
def test_chunking_is_invisible(backend: Any, compiled: bool | None) -> None:
    static, dynamic = make_labels()
    frames = make_stack(n=150)
    results = [
        multitau(
            frames, static, dynamic, chunk_frames=c, group_frames=g, keep_unnormalized=True, compiled=compiled
        )
        for c, g in ((1, 8), (7, 8), (64, 16), (150, 32), (None, None))
    ]
    first = results[0]
    for other in results[1:]:
        for name in ("normalized_g2", "normalized_g2_err", "static_g2", "G2", "IP", "IF"):
            np.testing.assert_array_equal(
                np_(backend, getattr(other, name)), np_(backend, getattr(first, name)), err_msg=name
            )


def test_iterator_of_frames_and_streaming_api(backend: Any) -> None:
    static, dynamic = make_labels()
    frames = make_stack(n=33)
    whole = multitau(frames, static, dynamic)
    streamed = multitau(iter(list(frames)), static, dynamic)
    np.testing.assert_array_equal(np_(backend, streamed.normalized_g2), np_(backend, whole.normalized_g2))
    state = init_multitau(static, dynamic, n_frames_total=33)
    first = update_multitau(state, frames[:20])
    again = update_multitau(state, frames[:20])  # the old state stays valid
    for s in (first, again):
        res = finalize_multitau(update_multitau(s, frames[20:]), frame_time=0.5)
        np.testing.assert_array_equal(np_(backend, res.normalized_g2), np_(backend, whole.normalized_g2))
        np.testing.assert_allclose(res.delay_list, whole.delay_frames * 0.5)


def test_reused_chunk_buffer(backend: Any) -> None:
    """A caller that reads every chunk into the same buffer gets the right result."""
    static, dynamic = make_labels()
    frames = make_stack(n=45)
    buffer = np.empty((5, *frames.shape[1:]), dtype=frames.dtype)
    state = init_multitau(static, dynamic, group_frames=16)
    for start in range(0, 45, 5):
        buffer[...] = frames[start : start + 5]
        state = update_multitau(state, buffer)
    res = finalize_multitau(state)
    ref = multitau(frames, static, dynamic)
    np.testing.assert_array_equal(np_(backend, res.normalized_g2), np_(backend, ref.normalized_g2))


@pytest.mark.jax
@pytest.mark.skipif(not HAS_JAX, reason="JAX (xpcs-jax) not installed")
def test_numpy_equals_jax_and_jit() -> None:
    static, dynamic = make_labels()
    frames = make_stack(n=90, dtype=np.float64)
    out = {}
    # compiled=False: the XLA kernels themselves, under jit and eagerly
    for name, jit in (("numpy", True), ("jax", True), ("jax-eager", False)):
        with use_backend(name.split("-")[0]) as b:
            res = multitau(
                frames, static, dynamic, jit=jit, keep_unnormalized=True, n_segments=2, compiled=False
            )
            out[name] = {
                k: np_(b, getattr(res, k)) for k in ("normalized_g2", "normalized_g2_err", "G2", "g2_partial")
            }
    for other in ("jax", "jax-eager"):
        for key, value in out["numpy"].items():
            np.testing.assert_allclose(out[other][key], value, rtol=RTOL, atol=0, err_msg=f"{other} {key}")


def test_hdf5_source(backend: Any, tmp_path: Any) -> None:
    h5py = pytest.importorskip("h5py", reason="h5py not installed (the test extra has it)")
    static, dynamic = make_labels()
    frames = make_stack(n=64)
    with h5py.File(tmp_path / "f.h5", "w") as f:
        f.create_dataset("data", data=frames, chunks=(8, *frames.shape[1:]))
    with h5py.File(tmp_path / "f.h5", "r") as f:
        res = multitau(f["data"], static, dynamic)
    ref = multitau(frames, static, dynamic)
    np.testing.assert_array_equal(np_(backend, res.normalized_g2), np_(backend, ref.normalized_g2))


def test_partial_g2_is_g2_of_each_segment(backend: Any) -> None:
    static, dynamic = make_labels()
    frames = make_stack(n=97)
    res = multitau(frames, static, dynamic, n_segments=3, frame_time=0.01)
    assert res.segment_bounds == (0, 32, 64, 97)
    assert res.g2_partial is not None
    assert res.partial_delay_list is not None
    n_delay = len(delay_list(32))
    assert np_(backend, res.g2_partial).shape == (3, n_delay, 3)
    for s in range(3):
        lo, hi = res.segment_bounds[s], res.segment_bounds[s + 1]
        ref = brute_force(frames[lo:hi], static, dynamic)
        np.testing.assert_allclose(np_(backend, res.g2_partial)[s], ref["g2"][:n_delay], rtol=RTOL)
    np.testing.assert_allclose(res.partial_delay_list, delay_list(32) * 0.01)


# ---------------------------------------------------------------------- analytic model
def test_ar1_speckle_g2(backend: Any) -> None:
    """E_t = rho E_{t-1} + sqrt(1 - rho^2) noise (complex Gaussian), I = |E|^2: the Siegert
    relation gives g2(T) = 1 + rho^(2T); for a level-l delay (frames averaged over 2^l)
    the expected value is the mean of 1 + rho^(2|T + j - i|) over i, j < 2^l."""
    rng = np.random.default_rng(7)
    rho, n, h, w = 0.8, 600, 32, 32
    e = np.empty((n, h, w), dtype=np.complex128)
    e[0] = (rng.normal(size=(h, w)) + 1j * rng.normal(size=(h, w))) / np.sqrt(2)
    scale = np.sqrt(1 - rho**2)
    for t in range(1, n):
        e[t] = rho * e[t - 1] + scale * (rng.normal(size=(h, w)) + 1j * rng.normal(size=(h, w))) / np.sqrt(2)
    frames = np.abs(e) ** 2
    static = np.arange(h * w).reshape(h, w) % 4 + 1
    dynamic = np.ones((h, w), dtype=np.int64)
    res = multitau(frames, static, dynamic)
    g2 = np_(backend, res.normalized_g2)[:, 0]
    expected_list = []
    for delay in res.delay_frames:
        level = int(np.ceil(np.log2(delay / 8))) if delay > 8 else 0
        m = 2**level
        i, j = np.meshgrid(np.arange(m), np.arange(m))
        expected_list.append(1 + np.mean(rho ** (2 * np.abs(delay + j - i))))
    expected = np.array(expected_list)
    short = res.delay_frames <= 32  # long delays have few independent samples
    np.testing.assert_allclose(g2[short], expected[short], atol=0.03)
    assert g2[0] == pytest.approx(1 + rho**2, abs=0.03)


# ------------------------------------------------------------------------- boost_corr
def _boost_corr_g2(
    frames: np.ndarray, static: np.ndarray, dynamic: np.ndarray, tmp_path: Any
) -> dict[str, Any]:
    require_oracle("torch", "boost_corr needs CPU torch (wheels for Python 3.11)")
    boost_corr = require_oracle("boost_corr", "boost_corr (APS) is a test-only oracle")
    h5py = require_oracle("h5py", "h5py writes the qmap file boost_corr reads")
    import torch
    from boost_corr.xpcs_aps_8idi.xpcs_qpartitionmap import XpcsQPartitionMap

    path = tmp_path / "qmap.h5"
    with h5py.File(path, "w") as f:
        f["/qmap/dynamic_roi_map"] = dynamic.astype(np.uint32)
        f["/qmap/static_roi_map"] = static.astype(np.uint32)
        f["/qmap/mask"] = (static > 0).astype(np.uint32)
    qpm = XpcsQPartitionMap(str(path), device="cpu")
    n, h, w = frames.shape
    # max_count=255: float32 buffers (its default, 7, keeps level 0 in bfloat16, which rounds
    # per-batch sums above 256)
    corr = boost_corr.MultitauCorrelator(
        det_size=(h, w), frame_num=n, device="cpu", queue_size=64, auto_queue=False, max_count=255
    )
    data = torch.from_numpy(frames.reshape(n, -1).astype(np.float32))
    for start in range(0, n, 64):
        corr.process(data[start : start + 64])
    corr.post_process()
    _, out = corr.get_results()
    normalized: dict[str, Any] = qpm.normalize_multitau(out)
    return normalized


@pytest.mark.oracle
def test_equals_boost_corr(backend: Any, tmp_path: Any) -> None:
    rng = np.random.default_rng(3)
    n, h, w = 500, 24, 24
    static = (np.arange(h * w).reshape(h, w) % 12) + 1
    dynamic = (static - 1) // 4 + 1
    rates = rng.uniform(0.5, 2.0, size=(h, w))
    frames = rng.poisson(rates, size=(n, h, w)).astype(np.uint16)
    ref = _boost_corr_g2(frames, static, dynamic, tmp_path)
    res = multitau(frames, static, dynamic)
    np.testing.assert_array_equal(res.delay_frames, ref["delay_list"])
    np.testing.assert_allclose(np_(backend, res.normalized_g2), ref["g2"], rtol=2e-4)
    np.testing.assert_allclose(np_(backend, res.normalized_g2_err), ref["g2_err"], rtol=2e-3)


# ------------------------------------------------------------------------------ sparse
@pytest.mark.parametrize("route", ["events", "dense", "dense_chunked"])
def test_events_equal_dense(backend: Any, route: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Both routes of multitau_events (photon pairs, or dense frames built from the events,
    here also in chunks of 7 frames) against the dense path on the frames themselves."""
    occupancy = np.inf if route == "events" else 0.0
    if route == "dense_chunked":
        monkeypatch.setattr(multitau_sparse, "_CHUNK_ELEMENTS", 7 * 8 * 9)
    static, dynamic = make_labels(h=8, w=9)
    rng = np.random.default_rng(5)
    frames = (rng.random((130, 8, 9)) < 0.08).astype(np.uint8) * rng.integers(1, 4, size=(130, 8, 9)).astype(
        np.uint8
    )
    t, r, c = np.nonzero(frames)
    pixel = r * 9 + c
    count = frames[t, r, c]
    order = rng.permutation(t.size)  # any event order; one event split in two
    t, pixel, count = t[order], pixel[order], count[order]
    t = np.concatenate([t, t[:1]])
    pixel = np.concatenate([pixel, pixel[:1]])
    count = np.concatenate([count, count[:1]]).astype(np.float64)
    count[0] -= count[-1] / 2
    count[-1] /= 2
    configs: list[dict[str, Any]] = [{}, {"stride": 2, "avg": 2}, {"lags_per_level": 2, "n_segments": 2}]
    for kw in configs:
        dense = multitau(frames, static, dynamic, keep_unnormalized=True, **kw)
        sparse = multitau_events(
            t,
            pixel,
            count,
            n_frames=130,
            static_labels=static,
            dynamic_labels=dynamic,
            keep_unnormalized=True,
            dense_occupancy=occupancy,
            **kw,
        )
        np.testing.assert_array_equal(sparse.delay_frames, dense.delay_frames)
        for name in ("normalized_g2", "normalized_g2_err", "G2", "IP", "IF", "g2_partial"):
            a, d = getattr(sparse, name), getattr(dense, name)
            if d is None:
                assert a is None
                continue
            np.testing.assert_allclose(np_(backend, a), np_(backend, d), rtol=RTOL, atol=1e-15, err_msg=name)


def test_events_bad_input(backend: Any) -> None:
    static, dynamic = make_labels()
    kw: dict[str, Any] = {"n_frames": 10, "static_labels": static, "dynamic_labels": dynamic}
    with pytest.raises(ValueError, match=r"0\.\.n_frames-1"):
        multitau_events([10], [0], [1], **kw)
    with pytest.raises(ValueError, match="flat indices"):
        multitau_events([1], [42], [1], **kw)
    with pytest.raises(FrameValueError, match="non-negative"):
        multitau_events([1], [3], [-1.0], **kw)
    with pytest.raises(FrameValueError, match="non-negative"):
        multitau_events([1], [3], [np.nan], **kw)
    with pytest.raises(ValueError, match="one entry per event"):
        multitau_events([1, 2], [3], [1], **kw)
    with pytest.raises(ValueError, match="at least 2"):
        multitau_events([0], [3], [1], n_frames=1, static_labels=static, dynamic_labels=dynamic)
    for bad in (-0.1, np.nan):
        with pytest.raises(ValueError, match="dense_occupancy"):
            multitau_events([1], [3], [1], dense_occupancy=bad, **kw)


def test_events_route_by_occupancy(monkeypatch: pytest.MonkeyPatch) -> None:
    """The default route: photon pairs below DENSE_OCCUPANCY, dense frames above it."""
    static, dynamic = make_labels(h=8, w=9)
    routes: list[str] = []
    monkeypatch.setattr(
        multitau_sparse, "_dense_chunks", _spy(multitau_sparse._dense_chunks, routes, "dense")
    )
    monkeypatch.setattr(multitau_sparse, "_level_sums", _spy(multitau_sparse._level_sums, routes, "events"))
    n_pixels = int(np.count_nonzero(static))
    n_frames = 400
    for occupancy in (0.5 * multitau_sparse.DENSE_OCCUPANCY, 4 * multitau_sparse.DENSE_OCCUPANCY):
        n_events = max(2, int(occupancy * n_frames * n_pixels))
        rng = np.random.default_rng(1)
        cells = rng.choice(n_frames * 72, size=n_events, replace=False)
        frame, pixel = cells // 72, cells % 72
        keep = static.ravel()[pixel] > 0
        with warnings.catch_warnings():  # so few photons leave delays empty: NaN g2, warned
            warnings.simplefilter("ignore", RuntimeWarning)
            multitau_events(
                frame[keep],
                pixel[keep],
                np.ones(int(keep.sum())),
                n_frames=n_frames,
                static_labels=static,
                dynamic_labels=dynamic,
            )
    assert routes[0] == "events"
    assert routes[-1] == "dense"


def _spy(fn: Any, log: list[str], name: str) -> Any:
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        log.append(name)
        return fn(*args, **kwargs)

    return wrapped


# --------------------------------------------------------------------------- bad input
def test_bad_frames(backend: Any) -> None:
    static, dynamic = make_labels()
    frames = make_stack(n=20, dtype=np.float64)
    with pytest.raises(ValueError, match="do not match the label maps' shape"):
        multitau(frames[:, :5], static, dynamic)
    state = init_multitau(static, dynamic)
    with pytest.raises(ValueError, match="do not match the label maps' shape"):
        update_multitau(state, frames[:, :, :3])
    for value, what in ((np.nan, "NaN"), (-1.0, "negative"), (np.inf, "infinite")):
        bad = frames.copy()
        bad[13, 2, 3] = value
        with pytest.raises(FrameValueError, match=f"{what}.*first in frame 13"):
            multitau(bad, static, dynamic, chunk_frames=5)
    signed = make_stack(n=20, dtype=np.int16)
    signed[4, 0, 0] = -2
    with pytest.raises(FrameValueError, match="negative"):
        multitau(signed, static, dynamic)
    with pytest.raises(TypeError, match="dtype"):
        update_multitau(update_multitau(state, frames[:3]), frames[3:6].astype(np.float32))
    with pytest.raises(TypeError, match="not a real number type"):
        multitau(frames.astype(np.complex128), static, dynamic)


def test_too_few_frames(backend: Any) -> None:
    static, dynamic = make_labels()
    frames = make_stack(n=5)
    with pytest.raises(ValueError, match="at least 2"):
        multitau(frames[:1], static, dynamic)
    with pytest.raises(ValueError, match="at least 2"):
        multitau(frames, static, dynamic, stride=3)
    with pytest.raises(ValueError, match="at least 2"):
        finalize_multitau(update_multitau(init_multitau(static, dynamic), frames[:1]))
    with pytest.raises(ValueError, match="at least 2"):
        finalize_multitau(init_multitau(static, dynamic))
    with pytest.raises(ValueError, match="n_frames_total=9 was announced but 5"):
        finalize_multitau(update_multitau(init_multitau(static, dynamic, n_frames_total=9), frames))
    with pytest.raises(ValueError, match="beyond n_frames_total"):
        update_multitau(init_multitau(static, dynamic, n_frames_total=3), frames)


def test_bad_labels(backend: Any) -> None:
    static, dynamic = make_labels()
    with pytest.raises(ValueError, match="same detector"):
        init_multitau(static, dynamic[:, :3])
    with pytest.raises(TypeError, match="integer label map"):
        init_multitau(static.astype(float), dynamic)
    with pytest.raises(ValueError, match="2-D"):
        init_multitau(static.ravel(), dynamic.ravel())
    with pytest.raises(ValueError, match="no pixel in a bin"):
        init_multitau(np.zeros_like(static), dynamic)
    straddle = dynamic.copy()
    straddle[static == 1] = 2  # static bin 1 split... into one other bin: still nested
    straddle[np.argwhere(static == 3)[0][0], np.argwhere(static == 3)[0][1]] = 1
    with pytest.raises(ValueError, match="exactly one dynamic bin"):
        init_multitau(static, straddle)
    with pytest.raises(ValueError, match="n_segments"):
        init_multitau(static, dynamic, n_segments=3)  # frame count unknown
    with pytest.raises(ValueError, match="group_frames"):
        init_multitau(static, dynamic, group_frames=12)
    with pytest.raises(ValueError, match="stride"):
        init_multitau(static, dynamic, stride=0)


def test_empty_and_dark_bins_are_nan_with_warning(backend: Any) -> None:
    static, dynamic = make_labels()
    frames = make_stack(n=40)
    res_ok = multitau(frames, static, dynamic)
    # dynamic labels 1, 2, 4: bin 3 is empty, its column NaN, with a warning
    dynamic4 = np.where(dynamic == 3, 4, dynamic)
    with pytest.warns(RuntimeWarning, match=r"dynamic bins \[3\] .*no pixel"):
        res = multitau(frames, static, dynamic4)
    g2 = np_(backend, res.normalized_g2)
    assert g2.shape[1] == 4
    assert np.isnan(g2[:, 2]).all()
    np.testing.assert_array_equal(g2[:, [0, 1, 3]], np_(backend, res_ok.normalized_g2))
    # a static bin without photons: NaN in it and in its dynamic bin, warning
    dark = frames.copy()
    dark[:, static == 5] = 0
    with pytest.warns(RuntimeWarning, match=r"static bins \[5\].*no photon"):
        res = multitau(dark, static, dynamic)
    g2 = np_(backend, res.normalized_g2)
    assert np.isnan(g2[:, 2]).all()  # static 5 lies in dynamic 3
    np.testing.assert_array_equal(np.isnan(g2[:, :2]), False)
    assert np.isnan(np_(backend, res.static_g2)[:, 4]).all()


def test_backend_switch_is_refused() -> None:
    static, dynamic = make_labels()
    with use_backend("numpy"):
        state = init_multitau(static, dynamic)
    if HAS_JAX:
        with use_backend("jax"), pytest.raises(RuntimeError, match="backend"):
            update_multitau(state, make_stack(n=4))
