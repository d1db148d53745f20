"""The compiled (numba) bin sums of the multi-tau APS normalisation against the array
formulation and against the brute-force per-pixel correlation of tests/test_multitau.py."""

from __future__ import annotations

import importlib
import importlib.util
import sys
import warnings
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest

from xpcs_kernels import multitau_levels as lv
from xpcs_kernels import multitau_normalize as nm
from xpcs_kernels.compiled import compiled_available

mt = importlib.import_module("xpcs_kernels.multitau")  # the module (the package exports the function)

pytestmark = [
    pytest.mark.usefixtures("fresh_backend"),
    pytest.mark.skipif(not compiled_available(), reason="numba is not installed"),
]

RTOL = 1e-12
FIELDS = ("g2", "g2_err", "g2_static", "G2", "IP", "IF")


def _load_oracle() -> ModuleType:
    """tests/test_multitau.py, for its brute-force correlation and test data."""
    path = Path(__file__).with_name("test_multitau.py")
    spec = importlib.util.spec_from_file_location("_multitau_oracle", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


oracle = _load_oracle()


def level_sums(
    b: Any,
    frames: np.ndarray,
    static: np.ndarray,
    dynamic: np.ndarray,
    dpl: int = 4,
    stride: int = 1,
    avg: int = 1,
) -> tuple[tuple[lv.LevelSums, ...], nm.BinMaps]:
    """The flushed level sums of ``frames`` (what :func:`finalize_multitau` normalises)."""
    state = mt.init_multitau(
        static, dynamic, n_frames_total=frames.shape[0], lags_per_level=dpl, stride=stride, avg=avg
    )
    state = mt.update_multitau(state, frames)
    core = lv.flush(b, state.core, mt._bound(state), jit=True)
    return lv.level_sums(b, core), state.maps


def host(b: Any, x: Any) -> np.ndarray:
    return np.asarray(b.to_numpy(x))


def check_oracle(b: Any, out: nm.Normalized, ref: dict[str, np.ndarray], static: np.ndarray) -> None:
    np.testing.assert_array_equal(out.delays, ref["delays"])
    np.testing.assert_allclose(host(b, out.g2), ref["g2"], rtol=RTOL, atol=0)
    np.testing.assert_allclose(host(b, out.g2_err), ref["err"], rtol=1e-9, atol=1e-15)
    np.testing.assert_allclose(host(b, out.g2_static), ref["static"], rtol=RTOL, atol=0)
    valid = np.broadcast_to(static > 0, ref["G2"].shape)
    for name in ("G2", "IP", "IF"):
        got = host(b, getattr(out, name))
        np.testing.assert_allclose(got[valid], ref[name][valid], rtol=RTOL, atol=0, err_msg=name)
        assert np.isnan(got[~valid]).all(), name


def check_same(b: Any, got: nm.Normalized, want: nm.Normalized, fields: tuple[str, ...] = FIELDS) -> None:
    np.testing.assert_array_equal(got.delays, want.delays)
    for name in fields:
        x, y = getattr(got, name), getattr(want, name)
        if y is None:
            assert x is None, name
            continue
        np.testing.assert_allclose(host(b, x), host(b, y), rtol=RTOL, atol=0, err_msg=name)


def normalize_quiet(*args: Any, **kwargs: Any) -> nm.Normalized:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # NaN warnings: asserted elsewhere
        return nm.normalize(*args, **kwargs)


# ---------------------------------------------------------------- brute-force oracle
CASES = [
    # dtype, dpl, stride, avg, n: several levels (2 .. 6), float data, averaging
    (np.uint16, 4, 1, 1, 70),
    (np.uint8, 2, 1, 3, 100),
    (np.float32, 4, 1, 1, 37),
    (np.uint8, 2, 2, 1, 130),
]


@pytest.mark.parametrize("compiled", [True, False, None])
@pytest.mark.parametrize(("dtype", "dpl", "stride", "avg", "n"), CASES)
def test_matches_brute_force(
    backend: Any, compiled: bool | None, dtype: Any, dpl: int, stride: int, avg: int, n: int
) -> None:
    static, dynamic = oracle.make_labels()
    frames = oracle.make_stack(n=n, dtype=dtype)
    ref = oracle.brute_force(frames, static, dynamic, dpl, stride, avg)
    sums, maps = level_sums(backend, frames, static, dynamic, dpl, stride, avg)
    before = [host(backend, x).copy() for s in sums for x in (s.products, s.total, s.head, s.tail)]
    out = nm.normalize(backend, sums, maps, avg=avg, keep_pixels=True, compiled=compiled)
    check_oracle(backend, out, ref, static)
    after = [host(backend, x) for s in sums for x in (s.products, s.total, s.head, s.tail)]
    for x, y in zip(before, after, strict=True):  # inputs are never modified
        np.testing.assert_array_equal(x, y)


# ------------------------------------------------------------------------ NaN rules
def dark_after(frames: np.ndarray, static: np.ndarray, label: int, first: int) -> np.ndarray:
    """``frames`` with the photons of static bin ``label`` only in the first ``first``
    frames: at lags >= ``first`` its IF is 0 (NaN g2), below defined."""
    out = frames.copy()
    out[first:, static == label] = 0
    return out


def test_static_bin_dark_at_some_delays(backend: Any) -> None:
    static, dynamic = oracle.make_labels()
    frames = dark_after(oracle.make_stack(n=60), static, 5, 4)
    ref = oracle.brute_force(frames, static, dynamic)
    assert np.isnan(ref["static"][:, 4]).any()
    assert not np.isnan(ref["static"][:, 4]).all()
    sums, maps = level_sums(backend, frames, static, dynamic)
    outs = {}
    for compiled in (True, False):
        with pytest.warns(RuntimeWarning, match=r"static bins \[5\].*no photon"):
            outs[compiled] = nm.normalize(backend, sums, maps, keep_pixels=True, compiled=compiled)
        check_oracle(backend, outs[compiled], ref, static)
    check_same(backend, outs[True], outs[False])
    g2 = host(backend, outs[True].g2)
    np.testing.assert_array_equal(np.isnan(g2[:, 2]), np.isnan(ref["static"][:, 4]))  # 5 lies in 3


def test_empty_dynamic_bin(backend: Any) -> None:
    static, dynamic = oracle.make_labels()
    dynamic = np.where(dynamic == 3, 4, dynamic)  # labels 1, 2, 4: bin 3 has no pixel
    frames = oracle.make_stack(n=50, dtype=np.uint8)
    ref = oracle.brute_force(frames, static, dynamic)
    sums, maps = level_sums(backend, frames, static, dynamic)
    outs = {}
    for compiled in (True, False):
        with pytest.warns(RuntimeWarning, match=r"dynamic bins \[3\] .*no pixel"):
            outs[compiled] = nm.normalize(backend, sums, maps, keep_pixels=True, compiled=compiled)
        check_oracle(backend, outs[compiled], ref, static)
        assert np.isnan(host(backend, outs[compiled].g2)[:, 2]).all()
        assert np.isnan(host(backend, outs[compiled].g2_err)[:, 2]).all()
    check_same(backend, outs[True], outs[False])


def test_sparse_pixels_and_unbinned_pixels(backend: Any) -> None:
    """Most pixels in no static bin: only the binned ones are correlated (``maps.pixels``)."""
    static, dynamic = oracle.make_labels(h=10, w=12)
    static[3:, :] = 0
    dynamic = np.where(static > 0, dynamic, 0)
    frames = oracle.make_stack(n=40, h=10, w=12)
    ref = oracle.brute_force(frames, static, dynamic)
    sums, maps = level_sums(backend, frames, static, dynamic)
    assert maps.pixels is not None  # the subset path
    outs = {c: nm.normalize(backend, sums, maps, keep_pixels=True, compiled=c) for c in (True, False)}
    for out in outs.values():
        check_oracle(backend, out, ref, static)
    check_same(backend, outs[True], outs[False])


def test_few_photons_errors(backend: Any) -> None:
    """Sparse counts: many pixels without a per-pixel g2 (left out of the errors, NaN when
    fewer than 2 remain), dark static bins at the upper delays."""
    static, dynamic = oracle.make_labels(h=8, w=9, seed=3)
    frames = oracle.make_stack(n=64, h=8, w=9, dtype=np.uint8, seed=4, lam=0.03)
    ref = oracle.brute_force(frames, static, dynamic)
    assert np.isnan(ref["err"]).any()
    assert not np.isnan(ref["err"]).all()
    sums, maps = level_sums(backend, frames, static, dynamic)
    outs = {c: normalize_quiet(backend, sums, maps, keep_pixels=True, compiled=c) for c in (True, False)}
    for out in outs.values():
        check_oracle(backend, out, ref, static)
    check_same(backend, outs[True], outs[False])


# ---------------------------------------------------------------------------- tiles
@pytest.mark.parametrize("tile", [1, 5, 13])
def test_pixel_tiles(backend: Any, monkeypatch: pytest.MonkeyPatch, tile: int) -> None:
    """The compiled loops walk the pixels in tiles (4096 pixels, more than these test
    frames have): tiny tiles, each bin split over several of them, same numbers."""
    from xpcs_kernels import multitau_normalize_loops as loops

    monkeypatch.setattr(loops, "TILE", tile)
    static, dynamic = oracle.make_labels(h=8, w=9, seed=2)
    frames = oracle.make_stack(n=45, h=8, w=9, dtype=np.uint8)
    ref = oracle.brute_force(frames, static, dynamic)
    sums, maps = level_sums(backend, frames, static, dynamic)
    out = nm.normalize(backend, sums, maps, keep_pixels=True, compiled=True)
    assert maps.tile_segments[0] == tile
    check_oracle(backend, out, ref, static)
    check_same(backend, out, nm.normalize(backend, sums, maps, keep_pixels=True, compiled=False))


def test_tile_segments() -> None:
    """Pixels grouped tile by tile, label by label, in pixel order; label 0 left out."""
    from xpcs_kernels import multitau_normalize_loops as loops

    static = np.array([2, 0, 1, 2, 2, 1, 0, 3, 1])
    order, start, label, tile_start = loops.tile_segments(static, 4)
    # tiles [2 0 1 2], [2 1 0 3], [1]
    np.testing.assert_array_equal(order, [2, 0, 3, 5, 4, 7, 8])
    np.testing.assert_array_equal(start, [0, 1, 3, 4, 5, 6, 7])
    np.testing.assert_array_equal(label, [1, 2, 1, 2, 3, 1])
    np.testing.assert_array_equal(tile_start, [0, 2, 5, 6])


# --------------------------------------------------------------------- batches, keep
def test_batched_levels_equal(backend: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """The array formulation split into one batch per level (tiny row budget) and the
    compiled one (all levels in one pass) agree, with and without the per-pixel values."""
    static, dynamic = oracle.make_labels()
    frames = oracle.make_stack(n=120, dtype=np.uint8)
    sums, maps = level_sums(backend, frames, static, dynamic, dpl=2)
    assert len(sums) >= 5
    whole = nm.normalize(backend, sums, maps, keep_pixels=True, compiled=False)
    monkeypatch.setattr(nm, "_ROWS_BUDGET", 1)
    assert len(nm._batches(sums, maps.static.shape[0])) == len(sums)
    for keep in (True, False):
        batched = nm.normalize(backend, sums, maps, keep_pixels=keep, compiled=False)
        compiled = nm.normalize(backend, sums, maps, keep_pixels=keep, compiled=True)
        check_same(backend, compiled, batched)
        check_same(backend, batched, whole, FIELDS if keep else FIELDS[:3])


def test_eager_finish(backend: Any) -> None:
    """``jit=False`` (the per-bin arithmetic run eagerly) gives the same numbers."""
    static, dynamic = oracle.make_labels()
    frames = oracle.make_stack(n=40)
    sums, maps = level_sums(backend, frames, static, dynamic)
    jitted = nm.normalize(backend, sums, maps, keep_pixels=True, compiled=True)
    eager = nm.normalize(backend, sums, maps, keep_pixels=True, compiled=True, jit=False)
    check_same(backend, eager, jitted)


# ------------------------------------------------------------------------- argument
def test_compiled_argument(backend: Any) -> None:
    static, dynamic = oracle.make_labels()
    frames = oracle.make_stack(n=30)
    sums, maps = level_sums(backend, frames, static, dynamic)
    auto = nm.normalize(backend, sums, maps, compiled=None)
    # on a CPU with numba, None takes the compiled loops
    assert "xpcs_kernels.multitau_normalize_loops" in sys.modules
    check_same(backend, auto, nm.normalize(backend, sums, maps, compiled=True))
    for bad in ("yes", 1, 0, np.True_):
        with pytest.raises(TypeError, match="compiled must be None, True or False"):
            nm.normalize(backend, sums, maps, compiled=bad)  # type: ignore[arg-type]
