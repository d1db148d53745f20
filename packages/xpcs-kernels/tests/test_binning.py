"""Per-bin sums and means against exact brute force (Python integers, a loop over bins)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from xpcs_device import use_backend
from xpcs_device.testing import HAS_JAX
from xpcs_kernels.binning import BinMap, _plan, bin_means, bin_sums, int32_sum_exact, prepare_bins

pytestmark = pytest.mark.usefixtures("fresh_backend")

K = 7  # bin 7 stays empty


def make_labels(h: int = 9, w: int = 11, seed: int = 1) -> np.ndarray:
    lab = np.random.default_rng(seed).integers(0, K - 1, size=(h, w)).astype(np.int32)
    lab[0, 0] = K - 1  # every bin but the last has a pixel
    return lab


def brute_sums(labels: np.ndarray, values: np.ndarray, n_bins: int) -> np.ndarray:
    """Exact sums as Python integers (object arrays) or float64 fsum-like: one bin at a time."""
    lead = values.shape[: values.ndim - labels.ndim]
    flat = values.reshape(-1, labels.size)
    exact = values.dtype.kind in "biu"
    out = np.zeros((flat.shape[0], n_bins), dtype=object if exact else np.float64)
    for f in range(flat.shape[0]):
        for k in range(1, n_bins + 1):
            sel = flat[f][labels.ravel() == k]
            out[f, k - 1] = sum(int(v) for v in sel) if exact else np.sum(sel, dtype=np.float64)
    return out.reshape(*lead, n_bins)


def as_exact(result: Any) -> np.ndarray:
    """float64 sums as Python integers, after checking they are integer-valued."""
    arr = np.asarray(result)
    assert arr.dtype == np.float64
    assert np.all(arr == np.floor(arr))
    return np.vectorize(int, otypes=[object])(arr) if arr.size else arr.astype(object)


# ----------------------------------------------------------------------- guard
def test_int32_guard_boundary() -> None:
    # uint16: 32768 * 65535 = 2**31 - 32768 fits; one more value may not.
    assert int32_sum_exact(32768, np.uint16)
    assert not int32_sum_exact(32769, np.uint16)
    # int16: the largest |value| is 32768 (the minimum).
    assert int32_sum_exact(65535, np.int16)
    assert not int32_sum_exact(65536, np.int16)
    assert int32_sum_exact(2**31 - 1, np.bool_)
    assert not int32_sum_exact(2**31, np.bool_)
    assert int32_sum_exact(8421504, np.uint8)  # 8421504 * 255 = 2**31 - 128
    assert not int32_sum_exact(8421505, np.uint8)
    assert not int32_sum_exact(1, np.uint32)  # a single value can reach 2**31
    assert not int32_sum_exact(1, np.float32)


def test_plan_respects_the_guard() -> None:
    # Blocks are divisors of the pixel count and satisfy the guard.
    for n_pixels, dtype in [(2048 * 2048, np.uint16), (2162 * 2068, np.uint16), (2048 * 2048, np.uint8)]:
        accumulator, block = _plan(n_pixels, np.dtype(dtype), "auto", True)
        assert accumulator == "int32"
        assert n_pixels % block == 0
        assert int32_sum_exact(block, dtype)
        assert not int32_sum_exact(block, dtype) or block <= 1 << 18
    # Never int32 on the NumPy backend's auto, for floats, or for dtypes reaching 2**31.
    assert _plan(4096, np.dtype(np.uint16), "auto", False)[0] == "float64"
    assert _plan(4096, np.dtype(np.float32), "auto", True)[0] == "float64"
    assert _plan(4096, np.dtype(np.uint32), "auto", True)[0] == "float64"
    assert _plan(4096, np.dtype(np.int64), "auto", True)[0] == "float64"
    # NumPy, float64 values and intp labels: bincount converts nothing, so one block.
    assert _plan(4096, np.dtype(np.float64), "auto", False, np.dtype(np.intp)) == ("float64", 4096)
    assert _plan(2**20, np.dtype(np.float64), "auto", False, np.dtype(np.int32)) == ("float64", 2**18)
    # 2 x 40009 (a prime above 32768) uint16 pixels: int32 blocks would be 2 pixels -> float64.
    assert _plan(2 * 40009, np.dtype(np.uint16), "auto", True)[0] == "float64"


# ------------------------------------------------------------------ exactness
@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.int16, np.int32, np.uint32, np.bool_])
@pytest.mark.parametrize("accumulate", ["auto", "int32", "float64"])
def test_sums_exact_for_integer_frames(backend: Any, dtype: Any, accumulate: str) -> None:
    labels = make_labels()
    rng = np.random.default_rng(3)
    info = np.iinfo(dtype) if dtype is not np.bool_ else None
    low, high = (0, 2) if info is None else (int(info.min), int(info.max) + 1)
    values = rng.integers(low, high, size=(3, *labels.shape), dtype=np.int64).astype(dtype)
    if accumulate == "int32" and not int32_sum_exact(1, dtype):
        with pytest.raises(ValueError, match="int32"):
            bin_sums(labels, values, K, accumulate="int32")
        return
    kept = values.copy(), labels.copy()
    result = bin_sums(labels, values, K, accumulate=accumulate)  # type: ignore[arg-type]
    assert result.shape == (3, K)
    assert np.array_equal(as_exact(result), brute_sums(labels, values, K))
    assert np.array_equal(values, kept[0])
    assert np.array_equal(labels, kept[1])


def test_int32_and_float64_paths_identical(backend: Any) -> None:
    # 65536 uint16 pixels (two int32 blocks of 32768) and a bin of sums far above 2**31.
    labels = np.ones((256, 256), dtype=np.int32)
    labels[:, 200:] = 2
    labels[0, 0] = 0
    values = np.full((2, 256, 256), 65535, dtype=np.uint16)
    values[1, 5:9, :] = np.arange(256, dtype=np.uint16)
    assert _plan(labels.size, values.dtype, "int32", True) == ("int32", 32768)
    as_int = bin_sums(labels, values, 3, accumulate="int32")
    as_float = bin_sums(labels, values, 3, accumulate="float64")
    expected = brute_sums(labels, values, 3)
    assert int(expected[0, 0]) > 2**31  # an int32 sum over the whole bin would overflow
    assert np.array_equal(as_exact(as_int), expected)
    assert np.array_equal(np.asarray(as_int), np.asarray(as_float))


def test_just_over_int32_takes_float_path_exactly(backend: Any) -> None:
    # int32 values reach 2**31 - 1: every block of one value is at the limit -> float64 path.
    labels = np.array([[1, 1, 1], [2, 2, 0]], dtype=np.int32)
    values = np.array([[2**31 - 1, 2**31 - 1, 1], [-(2**31), -(2**31), 7]], dtype=np.int32)
    assert _plan(labels.size, values.dtype, "auto", True)[0] == "float64"
    result = bin_sums(labels, values, 2)
    assert np.array_equal(as_exact(result), np.array([2 * (2**31 - 1) + 1, -(2**32)], dtype=object))
    # uint16 in one bin of 32769 pixels: the sum is just over 2**31, still exact (two blocks).
    n = 32769 * 2
    big = np.zeros((1, n), dtype=np.int32)
    big[0, :32769] = 1
    frame = np.full((1, n), 65535, dtype=np.uint16)
    assert 32769 * 65535 > 2**31
    assert int(np.asarray(bin_sums(big, frame, 1))[0]) == 32769 * 65535


def test_float_frames_and_means(backend: Any) -> None:
    labels = make_labels()
    values = np.random.default_rng(5).uniform(0.0, 10.0, size=(2, 2, *labels.shape)).astype(np.float32)
    sums = np.asarray(bin_sums(labels, values, K))
    assert sums.shape == (2, 2, K)
    np.testing.assert_allclose(sums, brute_sums(labels, values.astype(np.float64), K), rtol=1e-12)
    num_pts = np.bincount(labels.ravel(), minlength=K + 1)[1:]
    means = np.asarray(bin_means(labels, values, num_pts))
    assert np.isnan(means[..., K - 1]).all()  # empty bin
    np.testing.assert_allclose(means[..., :-1], sums[..., :-1] / num_pts[:-1], rtol=1e-15)
    # One frame: (n_bins,); no frames: (0, n_bins).
    assert bin_sums(labels, values[0, 0], K).shape == (K,)
    assert bin_sums(labels, values[:0, 0], K).shape == (0, K)


def test_many_blocks_and_frames(backend: Any) -> None:
    # 512 x 512 uint16: eight int32 blocks on JAX, one float64 block on NumPy.
    rng = np.random.default_rng(9)
    labels = rng.integers(0, 40, size=(512, 512)).astype(np.int64)
    values = rng.poisson(30.0, size=(3, 512, 512)).astype(np.uint16)
    expected = np.stack([np.bincount(labels.ravel(), f.ravel(), minlength=40)[1:] for f in values])
    assert np.array_equal(np.asarray(bin_sums(labels, values, 39)), expected)


@pytest.mark.jax
@pytest.mark.skipif(not HAS_JAX, reason="JAX (xpcs-jax) not installed")
def test_numpy_and_jax_agree_under_jit() -> None:
    import jax

    labels = make_labels(64, 70)
    rng = np.random.default_rng(11)
    counts = rng.poisson(4.0, size=(4, 64, 70)).astype(np.uint16)
    floats = rng.uniform(0, 3, size=(4, 64, 70))
    num_pts = np.bincount(labels.ravel(), minlength=K + 1)[1:]
    with use_backend("numpy"):
        ref_counts = np.asarray(bin_sums(labels, counts, K))
        ref_floats = np.asarray(bin_means(labels, floats, num_pts))
    with use_backend("jax") as b:
        jl, jc, jf, jn = (b.asarray(x) for x in (labels, counts, floats, num_pts))
        sums = jax.jit(lambda lab, v: bin_sums(lab, v, K, accumulate="int32"))(jl, jc)
        means = jax.jit(bin_means)(jl, jf, jn)
        eager = bin_sums(jl, jc, K, accumulate="float64")
    assert np.array_equal(np.asarray(sums), ref_counts)
    assert np.array_equal(np.asarray(eager), ref_counts)
    np.testing.assert_allclose(np.asarray(means), ref_floats, rtol=1e-12, equal_nan=True)


# ------------------------------------------------------------------ bad input
def test_bad_input(backend: Any) -> None:
    labels = make_labels()
    frame = np.ones(labels.shape, dtype=np.uint16)
    with pytest.raises(TypeError, match="integer label map"):
        bin_sums(labels.astype(float), frame, K)
    with pytest.raises(TypeError, match="real numbers"):
        bin_sums(labels, frame.astype(complex), K)
    with pytest.raises(ValueError, match="do not end with the label map's shape"):
        bin_sums(labels, frame.T, K)
    with pytest.raises(ValueError, match="do not end with the label map's shape"):
        bin_sums(labels, frame[0], K)
    with pytest.raises(ValueError, match="n_bins must be a positive integer"):
        bin_sums(labels, frame, 0)
    with pytest.raises(ValueError, match="accumulate must be"):
        bin_sums(labels, frame, K, accumulate="int64")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="int32"):
        bin_sums(labels, frame.astype(np.float32), K, accumulate="int32")
    with pytest.raises(ValueError, match=r"labels must lie in 0..n_bins = 0..3"):
        bin_sums(labels, frame, 3)
    with pytest.raises(ValueError, match="labels must lie in"):
        bin_sums(labels - 1, frame, K)
    with pytest.raises(ValueError, match="no pixel"):
        bin_sums(np.zeros((0, 3), np.int32), np.zeros((0, 3)), K)
    with pytest.raises(ValueError, match="num_pts must be"):
        bin_means(labels, frame, np.ones((2, K)))


@pytest.mark.jax
@pytest.mark.skipif(not HAS_JAX, reason="JAX (xpcs-jax) not installed")
@pytest.mark.parametrize("accumulate", ["int32", "float64"])
def test_out_of_range_device_labels_are_dropped(accumulate: str) -> None:
    # Device labels are trusted (not checked): out-of-range ones count nowhere, on every path.
    labels = np.array([[1, -1, 2], [3, 4, -7]], dtype=np.int32)
    values = np.array([[1, 10, 100], [1000, 10000, 20000]], dtype=np.uint16)
    with use_backend("jax") as b:
        got = np.asarray(bin_sums(b.asarray(labels), b.asarray(values), 3, accumulate=accumulate))  # type: ignore[arg-type]
    assert got.tolist() == [1.0, 100.0, 1000.0]


# ------------------------------------------------------------ prepared label maps
def _brute_means(labels: np.ndarray, values: np.ndarray, n_bins: int) -> np.ndarray:
    sums = brute_sums(labels, values, n_bins)
    counts = np.array([int((labels == k).sum()) for k in range(1, n_bins + 1)])
    out = np.full(sums.shape, np.nan)
    for k in np.flatnonzero(counts):
        out[..., k] = [float(v) / counts[k] for v in np.ravel(sums[..., k])]
    return out


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.int16, np.uint32, np.bool_, np.float32])
def test_bin_map_sums_and_means_exact(backend: Any, dtype: Any) -> None:
    labels = make_labels(12, 10)
    rng = np.random.default_rng(11)
    if dtype is np.float32:
        values = rng.uniform(0, 100, size=(2, *labels.shape)).astype(dtype)
    else:
        info = np.iinfo(dtype) if dtype is not np.bool_ else None
        low, high = (0, 2) if info is None else (int(info.min), int(info.max) + 1)
        values = rng.integers(low, high, size=(2, *labels.shape), dtype=np.int64).astype(dtype)
    kept = values.copy(), labels.copy()
    bm = prepare_bins(labels, K)
    assert isinstance(bm, BinMap)
    assert bm.shape == labels.shape
    assert bm.n_bins == K
    assert np.array_equal(np.asarray(bm.num_pts), np.bincount(labels.ravel(), minlength=K + 1)[1:])
    assert bm.largest_bin == int(np.bincount(labels.ravel())[1:].max())
    # whole-frame int32: integer values on a compiled backend, when the largest bin cannot
    # overflow (uint32: 23 x (2**32 - 1) can)
    expect_fast = backend.supports_jit and dtype not in (np.float32, np.uint32)
    assert bm.whole_frame_int32(dtype) == expect_fast
    sums, means = bm.sums(values), bm.means(values)
    if dtype is np.float32:
        np.testing.assert_allclose(
            np.asarray(sums), brute_sums(labels, values.astype(np.float64), K), rtol=1e-12
        )
    else:
        assert np.array_equal(as_exact(sums), brute_sums(labels, values, K))
        np.testing.assert_array_equal(np.asarray(means), _brute_means(labels, values, K))  # NaN: empty bin
    # identical to the unprepared functions, one frame and a stack
    assert np.array_equal(np.asarray(sums), np.asarray(bin_sums(labels, values, K)))
    num_pts = np.asarray(bm.num_pts)
    np.testing.assert_array_equal(np.asarray(means), np.asarray(bin_means(labels, values, num_pts)))
    np.testing.assert_array_equal(np.asarray(bm.means(values[0])), np.asarray(means)[0])
    assert bm.sums(values[:0]).shape == (0, K)
    assert np.array_equal(values, kept[0])
    assert np.array_equal(labels, kept[1])


def test_bin_map_int32_guard_uses_the_largest_bin(backend: Any) -> None:
    """uint16 at its maximum: a bin of 32768 pixels sums below 2**31 in int32 over the
    whole frame; one pixel more and the frame is summed in blocks instead, still exact."""
    for size, fast in ((32768, True), (32769, False)):
        labels = np.zeros(size + 5, dtype=np.int32)
        labels[:size] = 1
        labels[size:] = 2
        frame = np.full((2, size + 5), 65535, dtype=np.uint16)
        bm = prepare_bins(labels, 2)
        assert bm.whole_frame_int32(np.uint16) == (fast and backend.supports_jit)
        assert int32_sum_exact(bm.largest_bin, np.uint16) == fast
        expected = np.array([[size * 65535, 5 * 65535]] * 2)
        assert np.array_equal(as_exact(bm.sums(frame)).astype(np.int64), expected)
        np.testing.assert_array_equal(np.asarray(bm.means(frame)), [[65535.0, 65535.0]] * 2)
        assert np.array_equal(np.asarray(bm.sums(frame, accumulate="float64")), expected.astype(float))


@pytest.mark.parametrize("n_bins", [5000, 70000])
def test_bin_map_many_bins(backend: Any, n_bins: int) -> None:
    """Many bins: one histogram copy (5000 bins), and 32-bit indices (70000 bins)."""
    rng = np.random.default_rng(2)
    labels = rng.integers(0, n_bins + 1, size=(300, 400)).astype(np.int64)
    values = rng.poisson(4.0, size=(300, 400)).astype(np.uint16)
    bm = prepare_bins(labels, n_bins)
    expected = np.bincount(labels.ravel(), values.ravel(), minlength=n_bins + 1)[1:]
    assert np.array_equal(np.asarray(bm.sums(values)), expected)


def test_bin_map_bad_input(backend: Any) -> None:
    labels = make_labels()
    with pytest.raises(ValueError, match=r"labels must lie in 0\.\.n_bins = 0\.\.5"):
        prepare_bins(labels, 5)
    with pytest.raises(ValueError, match="labels must lie"):
        prepare_bins(np.array([[-1, 2]]), 2)
    with pytest.raises(TypeError, match="integer label map"):
        prepare_bins(labels.astype(float), K)
    with pytest.raises(ValueError, match="n_bins must be a positive integer"):
        prepare_bins(labels, 0)
    with pytest.raises(ValueError, match="no pixel"):
        prepare_bins(np.zeros((0, 3), dtype=np.int32), K)
    bm = prepare_bins(labels, K)
    with pytest.raises(ValueError, match="do not end with the label map's shape"):
        bm.sums(np.zeros((3, 3)))
    with pytest.raises(TypeError, match="real numbers"):
        bm.means(np.zeros(labels.shape, dtype=complex))
    with pytest.raises(ValueError, match="accumulate must be"):
        bm.sums(np.zeros(labels.shape), accumulate="int64")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match='accumulate="int32" needs integer'):
        bm.sums(np.zeros(labels.shape), accumulate="int32")


@pytest.mark.jax
@pytest.mark.skipif(not HAS_JAX, reason="JAX (xpcs-jax) not installed")
def test_bin_map_numpy_and_jax_agree() -> None:
    labels = make_labels(64, 64)
    values = np.random.default_rng(4).poisson(9.0, size=(3, 64, 64)).astype(np.uint16)
    results = []
    for name in ("numpy", "jax"):
        with use_backend(name):
            bm = prepare_bins(labels, K)
            results.append((np.asarray(bm.sums(values)), np.asarray(bm.means(values))))
    np.testing.assert_array_equal(results[0][0], results[1][0])
    np.testing.assert_array_equal(results[0][1], results[1][1])
