"""The APS 8-ID-I result file: round trip, the exact APS layout, fits, atomicity, and the
real APS viewer's reader (``pyxpcsviewer``) opening what we write."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from xpcs_suite.atomic import OutputExistsError
from xpcs_suite.inputs import InputError
from xpcs_suite.results import (
    InstrumentFields,
    MultitauFields,
    ReductionsFields,
    read_result,
    write_fit,
    write_result,
)

h5py = pytest.importorskip("h5py", reason="h5py not installed (the test extra has it)")

# Every key the APS viewer reads (pyxpcsviewer/core/file_io/aps_8idi.py, "nexus"), except
# the optional partial-g2 keys; twotime keys only in a two-time file.
APS_KEYS = [
    "/xpcs/qmap/mask",
    "/xpcs/qmap/dynamic_roi_map",
    "/xpcs/qmap/static_roi_map",
    "/xpcs/qmap/dynamic_v_list_dim0",
    "/xpcs/qmap/static_v_list_dim0",
    "/xpcs/qmap/dynamic_v_list_dim1",
    "/xpcs/qmap/static_v_list_dim1",
    "/xpcs/qmap/beam_center_y",
    "/xpcs/qmap/beam_center_x",
    "/xpcs/qmap/detector_distance",
    "/xpcs/qmap/pixel_size",
    "/xpcs/qmap/static_index_mapping",
    "/xpcs/qmap/dynamic_index_mapping",
    "/xpcs/qmap/static_num_pts",
    "/xpcs/qmap/dynamic_num_pts",
    "/entry/start_time",
    "/xpcs/qmap/map_names",
    "/xpcs/qmap/map_units",
    "/xpcs/spatial_mean/intensity_vs_time",
    "/xpcs/multitau/delay_list",
    "/xpcs/multitau/normalized_g2",
    "/xpcs/multitau/config/stride_frame",
    "/xpcs/multitau/config/avg_frame",
    "/xpcs/multitau/normalized_g2_err",
    "/xpcs/temporal_mean/scattering_2d",
    "/xpcs/temporal_mean/scattering_1d",
    "/xpcs/temporal_mean/scattering_1d_segments",
    "/entry/instrument/detector_1/frame_time",
    "/entry/instrument/detector_1/count_time",
    "/entry/instrument/incident_beam/incident_energy",
    "/entry/instrument/detector_1/x_pixel_size",
    "/entry/instrument/detector_1/y_pixel_size",
]
TWOTIME_KEYS = [
    "/xpcs/twotime/normalized_g2",
    "/xpcs/twotime/correlation_map",
    "/xpcs/twotime/processed_bins",
    "/xpcs/twotime/config/stride_frame",
    "/xpcs/twotime/config/avg_frame",
]


@pytest.fixture(scope="module")
def result_pair(build_result: Any, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("results")
    return build_result(folder / "plain.h5"), build_result(folder / "twotime.h5", twotime=True, n_phi=2)


def test_layout_has_every_key_the_aps_viewer_reads(result_pair: tuple[Path, Path]) -> None:
    plain, two = result_pair
    with h5py.File(plain, "r") as h5:
        missing = [key for key in APS_KEYS if key not in h5]
        assert missing == []
        assert "/entry/instrument/bluesky/metadata/" in h5  # the viewer's NeXus test, verbatim
        assert "/xpcs/twotime" not in h5
        assert isinstance(h5["/xpcs/qmap"].attrs["hash"], str)
        assert [bytes(x) for x in h5["/xpcs/qmap/map_names"][()]] == [b"q", b"phi"]
        assert h5["/xpcs/temporal_mean/scattering_2d"].shape == (1, 48, 56)
        assert h5["/xpcs/temporal_mean/scattering_1d"].ndim == 2
        assert h5["/xpcs/temporal_mean/scattering_1d"].shape[0] == 1
        assert h5["/xpcs/qmap/dynamic_index_mapping"].dtype.kind == "i"
        assert h5["/xpcs/qmap/dynamic_num_pts"][()].tolist() == [4, 1]  # grid shape
        assert h5["/xpcs/qmap/static_num_pts"][()].tolist() == [16, 1]
        g2 = h5["/xpcs/multitau/normalized_g2"]
        assert g2.shape == (
            h5["/xpcs/multitau/delay_list"].shape[0],
            h5["/xpcs/qmap/dynamic_index_mapping"].size,
        )
    with h5py.File(two, "r") as h5:
        assert [key for key in TWOTIME_KEYS if key not in h5] == []
        assert h5["/xpcs/qmap/dynamic_num_pts"][()].tolist() == [4, 2]
        c2 = h5["/xpcs/twotime/correlation_map/c2_00001"][()]
        assert np.all(np.tril(c2, -1) == 0)  # upper half only, as the viewer expects


def test_round_trip(result_pair: tuple[Path, Path], simulated_raw: tuple[Path, Any]) -> None:
    _, sample = simulated_raw
    plain, two = result_pair
    r = read_result(plain)
    params = sample.parameters
    assert r.frame_time_s == params.frame_time_s
    assert r.count_time_s == params.frame_time_s
    assert r.energy_kev == params.energy_kev
    assert r.start_time == "2025-01-01T00:00:00+00:00"
    np.testing.assert_array_equal(r.mask, sample.mask.astype(np.int32))
    assert r.saxs_2d.shape == params.shape
    assert r.g2 is not None
    assert r.delays_s is not None
    assert r.g2_err is not None
    assert r.g2.shape == (20, 4)
    np.testing.assert_allclose(r.delays_s, r.delay_list * params.frame_time_s)
    # q of each dynamic label: the centre of its q bin, increasing, inside the data range
    assert np.all(np.diff(r.q_dynamic) > 0)
    assert r.q_dynamic.size == 4
    assert r.saxs_1d.size == r.q_static.size == 16
    assert r.twotime_maps == {}
    assert r.fits == {}
    r2 = read_result(two)
    assert r2.n_dynamic == 8
    assert r2.dynamic_num_pts == (4, 2)
    np.testing.assert_array_equal(np.unique(r2.q_dynamic).size, 4)
    assert sorted(r2.twotime_maps) == list(range(1, 9))
    c2 = r2.twotime_maps[3]
    np.testing.assert_allclose(c2, c2.T)  # full matrix rebuilt from the upper half
    with h5py.File(two, "r") as h5:
        half = h5["/xpcs/twotime/correlation_map/c2_00003"][()]
    np.testing.assert_array_equal(np.triu(c2), half)


def test_read_result_ignores_a_dangling_external_link(result_pair: tuple[Path, Path], tmp_path: Path) -> None:
    # APS files link unnormalized_G2 to a separate *_G2.hdf file that is often not copied along.
    path = tmp_path / "linked.h5"
    shutil.copy(result_pair[0], path)
    with h5py.File(path, "r+") as h5:
        h5["/xpcs/multitau/unnormalized_G2"] = h5py.ExternalLink("gone_G2.hdf", "/G2IPIF")
    assert read_result(path).g2 is not None


def test_write_fit_adds_a_group_and_leaves_the_rest(result_pair: tuple[Path, Path], tmp_path: Path) -> None:
    path = tmp_path / "fit.h5"
    shutil.copy(result_pair[0], path)
    before = _snapshot(path)
    group = write_fit(
        path,
        "single",
        {"tau_s": np.array([1.0, 2.0, 3.0, 4.0]), "params": np.ones((4, 4))},
        {"model": "single", "diffusion_a2_per_s": 2.0e6},
    )
    assert group == "/xpcs/fit/single"
    after = _snapshot(path)
    assert {k: v for k, v in after.items() if not k.startswith("/xpcs/fit")} == before
    fit = read_result(path).fits["single"]
    np.testing.assert_array_equal(fit.datasets["tau_s"], [1.0, 2.0, 3.0, 4.0])
    assert fit.attrs["model"] == "single"
    assert fit.attrs["diffusion_a2_per_s"] == 2.0e6
    with pytest.raises(FileExistsError, match="overwrite"):
        write_fit(path, "single", {"tau_s": np.zeros(4)})
    write_fit(path, "single", {"tau_s": np.zeros(4)}, overwrite=True)
    assert set(read_result(path).fits["single"].datasets) == {"tau_s"}
    with pytest.raises(ValueError, match="fit group name"):
        write_fit(path, "../evil", {"x": np.zeros(1)})


def test_write_fit_failure_leaves_the_file_unchanged(result_pair: tuple[Path, Path], tmp_path: Path) -> None:
    path = tmp_path / "fit.h5"
    shutil.copy(result_pair[0], path)
    data = path.read_bytes()
    with pytest.raises(TypeError):
        write_fit(path, "bad", {"ok": np.zeros(3), "text": np.array(["no unicode"])})
    assert path.read_bytes() == data
    assert sorted(os.listdir(tmp_path)) == ["fit.h5"]


def _snapshot(path: Path) -> dict[str, Any]:
    out: dict[str, Any] = {}

    def visit(name: str, obj: Any) -> None:
        if isinstance(obj, h5py.Dataset):
            value = obj[()]
            out["/" + name] = value.tobytes() if isinstance(value, np.ndarray) else value

    with h5py.File(path, "r") as h5:
        h5.visititems(visit)
    return out


@pytest.fixture
def minimal_fields(two_bin_fields: Callable[..., dict[str, Any]]) -> dict[str, Any]:
    roi = np.zeros((6, 5), dtype=np.int32)
    roi[:3] = 1
    roi[3:] = 2
    return two_bin_fields(roi)


def test_existing_result_is_not_replaced_without_overwrite(
    tmp_path: Path, minimal_fields: dict[str, Any]
) -> None:
    path = tmp_path / "r.h5"
    write_result(path, **minimal_fields)
    data = path.read_bytes()
    with pytest.raises(OutputExistsError, match="overwrite"):
        write_result(path, **minimal_fields)
    assert path.read_bytes() == data
    write_result(path, **minimal_fields, overwrite=True)
    assert read_result(path).g2 is not None


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"multitau": MultitauFields(np.ones((3, 5)), np.ones((3, 5)), [1, 2, 3])}, "n_dynamic_labels"),
        ({"multitau": MultitauFields(np.ones((4, 2)), np.ones((4, 2)), [1, 2, 3])}, "n_delay"),
        ({"multitau": None}, "multitau or twotime"),
        (
            {"reductions": ReductionsFields(np.ones((3, 3)), np.ones(2), np.ones((2, 2)), np.ones((2, 4)))},
            "scattering_2d",
        ),
        (
            {"reductions": ReductionsFields(np.ones((6, 5)), np.ones(3), np.ones((2, 2)), np.ones((2, 4)))},
            "static label",
        ),
        ({"instrument": InstrumentFields(0.0, 10.0, 75e-6, 75e-6, 5.0, 1.0, 2.0)}, "frame_time_s"),
    ],
)
def test_inconsistent_sections_write_nothing(
    tmp_path: Path, minimal_fields: dict[str, Any], change: dict[str, Any], message: str
) -> None:
    fields = {**minimal_fields, **change}
    with pytest.raises(ValueError, match=message):
        write_result(tmp_path / "r.h5", **fields)
    assert os.listdir(tmp_path) == []


@pytest.mark.jax
def test_jax_arrays_are_written_through_the_adapter(tmp_path: Path, minimal_fields: dict[str, Any]) -> None:
    jnp = pytest.importorskip("jax.numpy", reason="JAX not installed")
    fields = dict(minimal_fields)
    fields["multitau"] = MultitauFields(jnp.full((3, 2), 1.5), jnp.zeros((3, 2)), jnp.arange(1, 4))
    write_result(tmp_path / "r.h5", **fields)
    r = read_result(tmp_path / "r.h5")
    np.testing.assert_array_equal(r.g2, np.full((3, 2), 1.5))


@pytest.mark.parametrize("case", ["missing", "not_hdf5", "truncated", "not_a_result"])
def test_read_result_bad_files_are_one_line_errors(
    result_pair: tuple[Path, Path], tmp_path: Path, case: str
) -> None:
    path = tmp_path / "r.h5"
    if case == "not_hdf5":
        path.write_text("hello")
    elif case == "truncated":
        shutil.copy(result_pair[0], path)
        os.truncate(path, path.stat().st_size // 2)
    elif case == "not_a_result":
        with h5py.File(path, "w") as h5:
            h5["x"] = 1
    expected = {
        "missing": "does not exist",
        "not_hdf5": "not an HDF5",
        "truncated": "truncated",
        "not_a_result": "lacks",
    }
    with pytest.raises(InputError, match=expected[case]) as info:
        read_result(path)
    assert "\n" not in str(info.value)


# --------------------------------------------------------------------- the APS viewer
_VIEWER_SCRIPT = r"""
import json, sys
from pyxpcsviewer.core.file_io.ftype_utils import get_ftype
from pyxpcsviewer.core.file_io.qmap_utils import QMapManager
from pyxpcsviewer.core.xpcs_file import XpcsFile
path = sys.argv[1]
xf = XpcsFile(path, qmap_manager=QMapManager())
out = {
    "ftype": get_ftype(path),
    "atype": list(xf.atype),
    "g2": xf.g2.tolist(),
    "t_el": xf.t_el.tolist(),
    "dqlist": [float(v) for v in xf.dqlist],
    "labels": [xf.get_qbin_label(k + 1) for k in range(xf.g2.shape[1])],
    "saxs_2d_shape": list(xf.saxs_2d.shape),
    "saxs_1d_q": [float(v) for v in xf.saxs_1d["q"]],
}
fit = xf.fit_g2(bounds=[[0.04, 1e-5, 0.5, 0.95], [0.8, 100.0, 2.0, 1.05]], fit_func="single")
out["fit_val"] = fit["fit_val"].tolist()
qbins, qvalues = xf.qmap.get_qbin_in_qrange(None)
out["qvalues"] = [float(v) for v in qvalues]
if "Twotime" in xf.atype:
    from pyxpcsviewer.core.twotime_utils import get_single_c2_from_hdf
    c2 = get_single_c2_from_hdf(path, selection=0, max_size=10000, t0=xf.t0, correct_diag=False)
    out["c2_00001"] = c2["c2_mat"].tolist()
print("JSON" + json.dumps(out))
"""


def _viewer_python() -> str:
    """A Python with pyxpcsviewer: this one, or $XPCS_VIEWER_PYTHON (a throwaway venv with
    ``pip install xpcs-viewer``, which pulls Qt)."""
    import importlib.util

    if importlib.util.find_spec("pyxpcsviewer") is not None:
        return sys.executable
    python = os.environ.get("XPCS_VIEWER_PYTHON")
    if not python and os.environ.get("XPCS_REQUIRE_ORACLES") == "1":
        pytest.fail("XPCS_REQUIRE_ORACLES=1 but no APS viewer: set XPCS_VIEWER_PYTHON (as oracles:test does)")
    if not python:
        pytest.skip("the APS viewer is not installed: set XPCS_VIEWER_PYTHON to a Python with xpcs-viewer")
    return python


@pytest.mark.oracle
@pytest.mark.subprocess
def test_the_aps_viewer_reads_our_file(result_pair: tuple[Path, Path]) -> None:
    python = _viewer_python()
    for path in result_pair:
        run = subprocess.run(
            [python, "-c", _VIEWER_SCRIPT, str(path)],
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        assert run.returncode == 0, run.stderr[-3000:]
        line = next(line for line in run.stdout.splitlines() if line.startswith("JSON"))
        seen = json.loads(line[4:])
        ours = read_result(path)
        assert seen["ftype"] == "nexus"
        assert ours.g2 is not None
        assert ours.delays_s is not None
        np.testing.assert_array_equal(np.asarray(seen["g2"]), ours.g2)
        np.testing.assert_allclose(np.asarray(seen["t_el"]), ours.delays_s, rtol=1e-15)
        np.testing.assert_allclose(seen["saxs_1d_q"], np.unique(ours.q_static))
        assert seen["saxs_2d_shape"] == list(ours.saxs_2d.shape)
        # the q the viewer gives each dynamic bin is the q we read back for it
        np.testing.assert_allclose(seen["qvalues"], ours.q_dynamic)
        assert all(label.startswith("q=") for label in seen["labels"])
        # its own g2 fit runs on our file: (n_q, value/error, a b c d), values inside its bounds
        fit = np.asarray(seen["fit_val"])
        assert fit.shape == (ours.n_dynamic, 2, 4)
        assert np.all(np.isfinite(fit[:, 0]))
        assert np.all((fit[:, 0, 0] >= 0.04) & (fit[:, 0, 0] <= 0.8))
        if path == result_pair[1]:
            assert seen["atype"] == ["Twotime", "Multitau"]
            np.testing.assert_allclose(np.asarray(seen["c2_00001"]), ours.twotime_maps[1], rtol=1e-12)
