"""Input validation for the ``xpcs`` command: HDF5 files, frame datasets, masks, geometry."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from xpcs_kernels.geometry import ReflectionGeometry, TiltedGeometry, TransmissionGeometry
from xpcs_suite.inputs import (
    InputError,
    frames_dataset,
    geometry_from_nexus,
    geometry_from_toml,
    load_mask,
    open_hdf5,
    raw_frame_time,
    resolve_geometry,
)

h5py = pytest.importorskip("h5py", reason="h5py not installed (the test extra has it)")


def _one_line(exc: pytest.ExceptionInfo[BaseException]) -> str:
    text = str(exc.value)
    assert "\n" not in text
    return text


# ------------------------------------------------------------------------- open_hdf5
def test_open_hdf5_reads_a_raw_file_read_only(simulated_raw: tuple[Path, Any]) -> None:
    path, _ = simulated_raw
    with open_hdf5(path) as h5:
        assert h5.mode == "r"
        assert frames_dataset(h5).shape == (240, 48, 56)


@pytest.mark.parametrize("case", ["missing", "folder", "text", "empty", "truncated", "truncated_tiny"])
def test_open_hdf5_bad_files(simulated_raw: tuple[Path, Any], tmp_path: Path, case: str) -> None:
    path = tmp_path / "raw.h5"
    if case == "folder":
        path.mkdir()
    elif case == "text":
        path.write_text("frame,count\n1,2\n")
    elif case == "empty":
        path.write_bytes(b"")
    elif case.startswith("truncated"):
        shutil.copy(simulated_raw[0], path)
        os.truncate(path, path.stat().st_size // 3 if case == "truncated" else 4096)
    expected = {
        "missing": "does not exist",
        "folder": "is a folder",
        "text": "not an HDF5 file",
        "empty": "not an HDF5 file",
        "truncated": "is truncated",
        "truncated_tiny": "is truncated",
    }[case]
    with pytest.raises(InputError, match=expected) as info:
        open_hdf5(path, what="raw file")
    assert _one_line(info).startswith("raw file ")


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0, reason="root reads every file")
def test_open_hdf5_unreadable(simulated_raw: tuple[Path, Any], tmp_path: Path) -> None:
    path = tmp_path / "raw.h5"
    shutil.copy(simulated_raw[0], path)
    path.chmod(0)
    with pytest.raises(InputError, match="permission"):
        open_hdf5(path)


def test_hdf5_with_a_user_block_is_recognised(tmp_path: Path) -> None:
    path = tmp_path / "ub.h5"
    with h5py.File(path, "w", userblock_size=512) as h5:
        h5["/entry/data/data"] = np.zeros((3, 4, 5), dtype=np.uint16)
    with open_hdf5(path) as h5:
        assert frames_dataset(h5).shape == (3, 4, 5)


# -------------------------------------------------------------------- frames_dataset
@pytest.fixture
def odd_file(tmp_path: Path) -> Path:
    path = tmp_path / "odd.h5"
    with h5py.File(path, "w") as h5:
        h5["/exchange/data"] = np.zeros((4, 6, 7), dtype=np.uint32)
        h5["/flat"] = np.zeros((6, 7))
        h5["/labels"] = np.array([b"a", b"b", b"c"] * 4, dtype="S1").reshape(2, 2, 3)
        h5["/one"] = np.zeros((1, 6, 7))
        h5.create_group("/entry/data")
    return path


@pytest.mark.parametrize(
    ("key", "message"),
    [
        (
            "/entry/data/data",
            "has no dataset '/entry/data/data'; 3-D datasets in the file: /exchange/data (4, 6, 7)",
        ),
        ("/entry/data", "is a group, not a dataset"),
        ("/flat", "has shape (6, 7); frames must be 3-D"),
        ("/labels", "not numbers"),
        ("/one", "correlations need at least 2"),
    ],
)
def test_frames_dataset_errors(odd_file: Path, key: str, message: str) -> None:
    with open_hdf5(odd_file) as h5, pytest.raises(InputError, match=re_escape(message)) as info:
        frames_dataset(h5, key)
    _one_line(info)


def test_frames_dataset_other_key(odd_file: Path) -> None:
    with open_hdf5(odd_file) as h5:
        assert frames_dataset(h5, "/exchange/data").dtype == np.uint32


def re_escape(text: str) -> str:
    import re

    return re.escape(text)


# ------------------------------------------------------------------------------ masks
def test_mask_from_npy(tmp_path: Path) -> None:
    values = np.zeros((6, 7))
    values[1:, 2:] = 0.5
    np.save(tmp_path / "m.npy", values)
    mask = load_mask(tmp_path / "m.npy", (6, 7))
    assert mask.dtype == bool
    np.testing.assert_array_equal(mask, values != 0)


def test_mask_from_hdf5_known_key_only_2d_and_explicit_key(build_result: Any, tmp_path: Path) -> None:
    result = build_result(tmp_path / "result.h5")
    with h5py.File(result, "r") as h5:
        expected = h5["/xpcs/qmap/mask"][()] != 0
    np.testing.assert_array_equal(load_mask(result, expected.shape), expected)
    single = tmp_path / "single.h5"
    with h5py.File(single, "w") as h5:
        h5["/some/where"] = np.eye(4, 5, dtype=np.uint8)
        h5["/vector"] = np.ones(3)
    np.testing.assert_array_equal(load_mask(single, (4, 5)), np.eye(4, 5, dtype=bool))
    two = tmp_path / "two.h5"
    with h5py.File(two, "w") as h5:
        h5["/a"] = np.ones((4, 5))
        h5["/b"] = np.eye(4, 5)
    with pytest.raises(InputError, match=re_escape("2-D datasets: /a (4, 5), /b (4, 5)")) as info:
        load_mask(two, (4, 5))
    _one_line(info)
    np.testing.assert_array_equal(load_mask(two, (4, 5), key="/b"), np.eye(4, 5, dtype=bool))
    with pytest.raises(InputError, match="no dataset '/c'"):
        load_mask(two, (4, 5), key="/c")


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("shape", "has shape (6, 7) but the frames are (7, 6)"),
        ("missing", "does not exist"),
        ("text", "neither .npy nor HDF5"),
        ("pickle", "not a readable .npy array"),
        ("nan", "NaN"),
        ("zero", "excludes every pixel"),
        ("strings", "a mask holds numbers"),
    ],
)
def test_mask_errors(tmp_path: Path, case: str, message: str) -> None:
    path = tmp_path / "m.npy"
    if case == "shape":
        np.save(path, np.ones((6, 7)))
    elif case == "text":
        path = tmp_path / "m.txt"
        path.write_text("1 1 1")
    elif case == "pickle":
        np.save(path, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    elif case == "nan":
        values = np.ones((7, 6))
        values[0, 0] = np.nan
        np.save(path, values)
    elif case == "zero":
        np.save(path, np.zeros((7, 6), dtype=np.uint8))
    elif case == "strings":
        np.save(path, np.full((7, 6), "x"))
    with pytest.raises(InputError, match=re_escape(message)) as info:
        load_mask(path, (7, 6))
    _one_line(info)


# --------------------------------------------------------------------------- geometry
TOML = """
energy_kev = 10.0
distance_m = 5.0
pixel_size_m = 75e-6
beam_center_x_px = 120.5
beam_center_y_px = 130.25
frame_time_s = 0.002
"""


def test_toml_geometry(tmp_path: Path) -> None:
    path = tmp_path / "g.toml"
    path.write_text(TOML)
    found = geometry_from_toml(path)
    assert found.geometry == TransmissionGeometry(10.0, 5.0, 75e-6, 120.5, 130.25)
    assert found.frame_time_s == 0.002
    path.write_text(
        "[geometry]\nwavelength_angstrom = 1.0\ndistance_m = 2\npixel_size_m = [55e-6, 75e-6]\n"
        "beam_center_x_px = 1\nbeam_center_y_px = 2\nincidence_angle_deg = 0.2\norientation = 'west'\n"
    )
    grazing = geometry_from_toml(path).geometry
    assert isinstance(grazing, ReflectionGeometry)
    assert grazing.pixel_size_m == (55e-6, 75e-6)
    assert grazing.orientation == "west"
    assert grazing.energy_kev == pytest.approx(12.398419843320026, rel=1e-15)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (TOML + "energy = 3\n", "unknown keys energy"),
        (TOML.replace("distance_m = 5.0\n", ""), "lacks distance_m"),
        (TOML + "wavelength_angstrom = 1.0\n", "exactly one of energy_kev or wavelength_angstrom"),
        (TOML.replace("5.0", "'far'"), "distance_m in .* must be a number"),
        (TOML.replace("5.0", "-5.0"), "distance_m must be a positive"),
        (TOML + "orientation = 'north'\n", "needs incidence_angle_deg"),
        ("energy_kev = = 3", "not valid TOML"),
        (TOML.replace("75e-6", "[1e-4, 2e-4, 3e-4]"), "must be a number or \\[row, column\\]"),
    ],
)
def test_toml_errors(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "g.toml"
    path.write_text(text)
    with pytest.raises(InputError, match=message) as info:
        geometry_from_toml(path)
    _one_line(info)


PONI = """# Nota: C-Order, 1 refers to the Y axis, 2 to the X axis
poni_version: 2.1
Detector: Detector
Detector_config: {"pixel1": 7.5e-05, "pixel2": 7.5e-05, "max_shape": [256, 256], "orientation": 3}
Distance: 5.0
Poni1: 0.0102
Poni2: 0.0091
Rot1: 0.001
Rot2: -0.002
Rot3: 0.0
Wavelength: 1.2398e-10
"""


def test_resolve_geometry_precedence(simulated_raw: tuple[Path, Any], tmp_path: Path) -> None:
    raw_path, sample = simulated_raw
    poni = tmp_path / "cal.poni"
    poni.write_text(PONI)
    toml = tmp_path / "g.toml"
    toml.write_text(TOML)
    with open_hdf5(raw_path) as raw:
        first = resolve_geometry(poni=poni, geometry_file=toml, raw=raw)
        assert isinstance(first.geometry, TiltedGeometry)
        assert first.source.startswith("PONI file")
        assert first.geometry == TiltedGeometry.from_poni(poni)
        second = resolve_geometry(geometry_file=toml, raw=raw)
        assert second.source.startswith("TOML file")
        assert second.frame_time_s == 0.002
        third = resolve_geometry(raw=raw)
        assert third.geometry == sample.parameters.geometry
        assert third.frame_time_s == sample.parameters.frame_time_s
        assert third.source.startswith("NeXus fields")
    with pytest.raises(InputError, match="no geometry"):
        resolve_geometry()


def test_bad_poni_is_one_line(tmp_path: Path) -> None:
    poni = tmp_path / "cal.poni"
    poni.write_text(PONI.replace("Distance: 5.0", "Distance: far"))
    with pytest.raises(InputError, match=r"cal\.poni") as info:
        resolve_geometry(poni=poni)
    _one_line(info)
    with pytest.raises(InputError, match="does not exist"):
        resolve_geometry(poni=tmp_path / "none.poni")


def test_nexus_geometry_units_and_missing_fields(tmp_path: Path) -> None:
    path = tmp_path / "raw.h5"
    with h5py.File(path, "w") as h5:
        det = h5.create_group("/entry/instrument/detector_1")
        for name, value, unit in (
            ("distance", 5000.0, "mm"),
            ("x_pixel_size", 75.0, "um"),
            ("y_pixel_size", 75e-6, None),
            ("beam_center_x", 7.5, "mm"),
            ("beam_center_y", 100.0, "pixel"),
            ("frame_time", 2.0, "ms"),
        ):
            det[name] = value
            if unit:
                det[name].attrs["units"] = unit
        h5["/entry/instrument/incident_beam/incident_energy"] = 10000.0
        h5["/entry/instrument/incident_beam/incident_energy"].attrs["units"] = "eV"
    with open_hdf5(path) as h5:
        geometry = geometry_from_nexus(h5)
        assert raw_frame_time(h5) == pytest.approx(2e-3)
    assert geometry.distance_m == pytest.approx(5.0)
    assert geometry.pixel_size_m == pytest.approx((75e-6, 75e-6))
    assert geometry.beam_center_x_px == pytest.approx(100.0)  # 7.5 mm / 75 µm
    assert geometry.energy_kev == pytest.approx(10.0)
    with h5py.File(path, "r+") as h5:
        h5["/entry/instrument/detector_1/distance"].attrs["units"] = "furlong"
    with open_hdf5(path) as h5, pytest.raises(InputError, match="units 'furlong'"):
        geometry_from_nexus(h5)
    with h5py.File(path, "r+") as h5:
        del h5["/entry/instrument/detector_1/distance"]
    with (
        open_hdf5(path) as h5,
        pytest.raises(InputError, match="lacks /entry/instrument/detector_1/distance") as info,
    ):
        geometry_from_nexus(h5)
    assert "--poni" in _one_line(info)
