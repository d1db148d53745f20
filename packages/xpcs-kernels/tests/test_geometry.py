"""Geometry validation and PONI parsing (no backend needed)."""

import dataclasses
import json
import math

import pytest

from xpcs_kernels import HC_KEV_ANGSTROM
from xpcs_kernels.geometry import (
    PoniFormatError,
    ReflectionGeometry,
    TiltedGeometry,
    TransmissionGeometry,
    energy_kev_from_wavelength_m,
)

PONI_V1 = """# Nota: C-Order, 1 refers to the Y axis, 2 to the X axis
# Calibration done at Mon Jan 11 10:00:00 2021
PixelSize1: 7.5e-05
PixelSize2: 5.5e-05
Distance: 0.5
Poni1: 0.01
Poni2: 0.02
Rot1: 0.05
Rot2: -0.03
Rot3: 0.2
Wavelength: 1e-10
"""

PONI_V2 = """# Nota: C-Order, 1 refers to the Y axis, 2 to the X axis
# Calibration done on Wed Nov 25 14:00:05 2026
poni_version: {version}
Detector: Detector
Detector_config: {config}
Distance: 0.5
Poni1: 0.01
Poni2: 0.02
Rot1: 0.05
Rot2: -0.03
Rot3: 0.2
Wavelength: 1e-10
"""

EXPECTED = TiltedGeometry.from_pyfai(0.5, 0.01, 0.02, 0.05, -0.03, 0.2, 1e-10, 7.5e-5, 5.5e-5)


def test_transmission_fields_and_pixel_pair():
    g = TransmissionGeometry(10.0, 5.0, 75e-6, 100.5, 200.25)
    assert g.pixel_size_m == (75e-6, 75e-6)
    assert TransmissionGeometry(10.0, 5.0, (75e-6, 55e-6), 1, 2).pixel_size_m == (75e-6, 55e-6)
    assert math.isclose(g.wavelength_m, HC_KEV_ANGSTROM / 10.0 * 1e-10, rel_tol=1e-15)
    with pytest.raises(dataclasses.FrozenInstanceError):
        g.distance_m = 1.0  # type: ignore[misc]
    assert g == TransmissionGeometry(10.0, 5.0, 75e-6, 100.5, 200.25)
    assert hash(g) == hash(TransmissionGeometry(10.0, 5.0, 75e-6, 100.5, 200.25))


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"distance_m": 0.0}, "distance_m must be a positive"),
        ({"distance_m": -1.0}, "distance_m must be a positive"),
        ({"energy_kev": 0.0}, "energy_kev must be a positive.*keV"),
        ({"energy_kev": -8.0}, "energy_kev must be a positive"),
        ({"energy_kev": float("inf")}, "energy_kev must be a positive, finite"),
        ({"pixel_size_m": 0.0}, "pixel_size_m must be a positive.*metres"),
        ({"pixel_size_m": (75e-6, -1.0)}, r"pixel_size_m\[1\] \(column\) must be a positive"),
        ({"pixel_size_m": (1.0, 2.0, 3.0)}, "one number .* or a \\(row, column\\) pair"),
        ({"beam_center_x_px": float("nan")}, "beam_center_x_px must be a finite number.*column"),
        ({"beam_center_y_px": float("inf")}, "beam_center_y_px must be a finite number.*row"),
        ({"distance_m": "5"}, "distance_m must be a real number"),
        ({"distance_m": True}, "distance_m must be a real number"),
    ],
)
def test_transmission_validation(kwargs, match):
    args = {"energy_kev": 10.0, "distance_m": 5.0, "pixel_size_m": 75e-6, "beam_center_x_px": 1.0}
    args["beam_center_y_px"] = 2.0
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        TransmissionGeometry(**args)


def test_reflection_validation():
    g = ReflectionGeometry(10.0, 5.0, 75e-6, 10, 20, 0.15)
    assert g.orientation == "north"
    with pytest.raises(ValueError, match="orientation must be one of 'north', 'west', 'south', 'east'"):
        ReflectionGeometry(10.0, 5.0, 75e-6, 10, 20, 0.15, orientation="up")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"incidence_angle_deg must lie in \(-90, 90\)"):
        ReflectionGeometry(10.0, 5.0, 75e-6, 10, 20, 95.0)
    with pytest.raises(ValueError, match="incidence_angle_deg must be a finite"):
        ReflectionGeometry(10.0, 5.0, 75e-6, 10, 20, float("nan"))
    with pytest.raises(ValueError, match="distance_m must be a positive"):
        ReflectionGeometry(10.0, 0.0, 75e-6, 10, 20, 0.1)


def test_tilted_validation_and_energy():
    assert math.isclose(EXPECTED.energy_kev, HC_KEV_ANGSTROM, rel_tol=1e-15)
    assert math.isclose(energy_kev_from_wavelength_m(2e-10), HC_KEV_ANGSTROM / 2, rel_tol=1e-15)
    with pytest.raises(ValueError, match=r"wavelength_m must be a positive.*metres"):
        TiltedGeometry.from_pyfai(0.5, 0.01, 0.02, 0, 0, 0, 0.0, 7.5e-5, 7.5e-5)
    with pytest.raises(ValueError, match="distance_m must be a positive"):
        TiltedGeometry.from_pyfai(-0.5, 0.01, 0.02, 0, 0, 0, 1e-10, 7.5e-5, 7.5e-5)
    with pytest.raises(ValueError, match="pixel2_m must be a positive"):
        TiltedGeometry.from_pyfai(0.5, 0.01, 0.02, 0, 0, 0, 1e-10, 7.5e-5, 0.0)
    with pytest.raises(ValueError, match="rot2_rad must be a finite"):
        TiltedGeometry.from_pyfai(0.5, 0.01, 0.02, 0, float("nan"), 0, 1e-10, 7.5e-5, 7.5e-5)
    with pytest.raises(ValueError, match="detector_orientation must be pyFAI's orientation"):
        TiltedGeometry.from_pyfai(0.5, 0.01, 0.02, 0, 0, 0, 1e-10, 7.5e-5, 7.5e-5, orientation=7)


def test_transmission_to_tilted_and_back():
    t = TransmissionGeometry(12.0, 3.0, (75e-6, 55e-6), 100.25, 50.5)
    g = TiltedGeometry.from_transmission(t)
    assert math.isclose(g.poni1_m, 51.0 * 75e-6)
    assert math.isclose(g.poni2_m, 100.75 * 55e-6)
    bcx, bcy = g.beam_center_px()
    assert math.isclose(bcx, 100.25, rel_tol=1e-12)
    assert math.isclose(bcy, 50.5, rel_tol=1e-12)


def test_poni_version_1(tmp_path):
    path = tmp_path / "v1.poni"
    path.write_text(PONI_V1)
    assert TiltedGeometry.from_poni(path) == EXPECTED


@pytest.mark.parametrize(
    ("version", "config"),
    [
        ("2", {"pixel1": 7.5e-05, "pixel2": 5.5e-05, "max_shape": None}),
        ("2.1", {"pixel1": 7.5e-05, "pixel2": 5.5e-05, "orientation": 3}),
    ],
)
def test_poni_version_2(tmp_path, version, config):
    path = tmp_path / "v2.poni"
    path.write_text(PONI_V2.format(version=version, config=json.dumps(config)))
    assert TiltedGeometry.from_poni(path) == EXPECTED


def test_poni_orientation_and_pixel_override(tmp_path):
    path = tmp_path / "v21.poni"
    path.write_text(
        PONI_V2.format(version="2.1", config='{"orientation": 2}').replace(
            "Detector: Detector", "Detector: Eiger4M"
        )
    )
    with pytest.raises(PoniFormatError, match=r"no pixel sizes for Eiger4M.*pixel_size_m="):
        TiltedGeometry.from_poni(path)
    g = TiltedGeometry.from_poni(path, pixel_size_m=(7.5e-5, 5.5e-5))
    assert g == dataclasses.replace(EXPECTED, detector_orientation=2)


def test_poni_written_by_pyfai(tmp_path):
    pytest.importorskip("pyFAI")
    from pyFAI.integrator.azimuthal import AzimuthalIntegrator

    ai = AzimuthalIntegrator(
        dist=0.5,
        poni1=0.01,
        poni2=0.02,
        rot1=0.05,
        rot2=-0.03,
        rot3=0.2,
        pixel1=7.5e-5,
        pixel2=5.5e-5,
        wavelength=1e-10,
    )
    path = tmp_path / "pyfai.poni"
    ai.write(str(path))
    assert TiltedGeometry.from_poni(path) == EXPECTED


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("", "holds no 'Key: value' lines"),
        ("just some words\n", r"line 1: expected 'Key: value'"),
        (PONI_V1.split("Rot2", maxsplit=1)[0], "has no Rot2 .*truncated"),
        (PONI_V1.replace("Distance: 0.5", "Distance: half a metre"), "Distance must be a number"),
        (PONI_V1.replace("Distance: 0.5", "Distance: -0.5"), "distance_m must be a positive"),
        (PONI_V1.replace("Wavelength: 1e-10", "Wavelength: None"), "has no Wavelength"),
        (PONI_V1.replace("PixelSize1: 7.5e-05\nPixelSize2: 5.5e-05\n", ""), "no pixel sizes"),
        (PONI_V1 + "SplineFile: /tmp/d.spline\n", "distortion spline"),
        (PONI_V2.format(version="2", config="{pixel1: 1"), "Detector_config is not valid JSON"),
        (PONI_V2.format(version="2", config="[1, 2]"), "Detector_config must be a JSON object"),
        (PONI_V2.format(version="2", config="{}").replace("Detector_config: {}\n", ""), "no Detector_config"),
        (PONI_V2.format(version="7", config="{}"), "PONI version 7 is not supported"),
        (PONI_V2.format(version="two", config="{}"), "poni_version must be a number"),
    ],
)
def test_malformed_poni(tmp_path, text, match):
    path = tmp_path / "bad.poni"
    path.write_text(text)
    with pytest.raises(PoniFormatError, match=match):
        TiltedGeometry.from_poni(path)


def test_missing_or_binary_poni(tmp_path):
    with pytest.raises(PoniFormatError, match="cannot read PONI file"):
        TiltedGeometry.from_poni(tmp_path / "absent.poni")
    path = tmp_path / "binary.poni"
    path.write_bytes(b"\xff\xfe\x00\x81")
    with pytest.raises(PoniFormatError, match="not a text PONI file"):
        TiltedGeometry.from_poni(path)
