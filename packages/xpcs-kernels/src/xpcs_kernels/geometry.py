"""Scattering geometries: immutable, validated descriptions of where the detector is.

Three kinds, each a frozen dataclass validated on construction (a ``ValueError`` names
the field, the value and what to do instead):

- :class:`TransmissionGeometry`: flat detector normal to the beam (SAXS/XPCS);
- :class:`TiltedGeometry`: a pyFAI calibration (PONI file or its six numbers), detector
  tilted by pyFAI's ``rot1``, ``rot2``, ``rot3``;
- :class:`ReflectionGeometry`: grazing incidence (GISAXS/GIXPCS), flat detector normal
  to the beam, sample surface at ``incidence_angle_deg`` to the beam.

Pixel convention (APS): pixel ``(row i, column j)`` is centred at index ``i``, ``j``, and
``beam_center_x_px`` / ``beam_center_y_px`` are the (fractional) column / row index of the
direct beam. pyFAI puts the centre of pixel ``i`` at ``(i + 0.5) * pixel1`` from the
detector corner, so an untilted pyFAI geometry with ``poni1``, ``poni2`` has the beam at
row ``poni1 / pixel1 - 0.5`` and column ``poni2 / pixel2 - 0.5``
(:meth:`TiltedGeometry.from_transmission` and :meth:`TiltedGeometry.beam_center_px`
convert both ways).

Units are in the field names: metres, keV, degrees (radians only where pyFAI uses them).
"""

from __future__ import annotations

import json
import math
import numbers
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from xpcs_kernels.constants import HC_KEV_ANGSTROM

__all__ = [
    "Orientation",
    "PoniFormatError",
    "ReflectionGeometry",
    "TiltedGeometry",
    "TransmissionGeometry",
    "energy_kev_from_wavelength_m",
    "wavelength_m_from_energy_kev",
]

Orientation = Literal["north", "west", "south", "east"]
_ORIENTATIONS: tuple[str, ...] = ("north", "west", "south", "east")
_Matrix = tuple[tuple[float, float, float], tuple[float, float, float], tuple[float, float, float]]


class PoniFormatError(ValueError):
    """A PONI file that cannot be read: says which file, which line or key, and the fix."""


def energy_kev_from_wavelength_m(wavelength_m: float) -> float:
    """Photon energy in keV for a wavelength in metres (E = hc / λ, λ in Å)."""
    _positive("wavelength_m", wavelength_m, "metres, e.g. 1.0e-10 for 1 Å")
    return HC_KEV_ANGSTROM / (wavelength_m * 1e10)


def wavelength_m_from_energy_kev(energy_kev: float) -> float:
    """Wavelength in metres for a photon energy in keV."""
    _positive("energy_kev", energy_kev, "keV, e.g. 12.0")
    return HC_KEV_ANGSTROM / energy_kev * 1e-10


# ----------------------------------------------------------------------------- checks
def _number(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(f"{name} must be a real number, got {value!r} ({type(value).__name__})")
    return float(value)


def _positive(name: str, value: Any, unit_hint: str) -> float:
    x = _number(name, value)
    if not math.isfinite(x) or x <= 0.0:
        raise ValueError(f"{name} must be a positive, finite number of {unit_hint}; got {value!r}")
    return x


def _finite(name: str, value: Any, hint: str) -> float:
    x = _number(name, value)
    if not math.isfinite(x):
        raise ValueError(f"{name} must be a finite number ({hint}); got {value!r}")
    return x


def _pixel_pair(value: Any) -> tuple[float, float]:
    """``pixel_size_m`` as ``(row, column)``: a number (square pixels) or a pair."""
    hint = "metres, e.g. 75e-6 for 75 µm pixels"
    if isinstance(value, (tuple, list)):
        if len(value) != 2:
            raise ValueError(
                f"pixel_size_m must be one number (square pixels) or a (row, column) pair, got {value!r}"
            )
        return (
            _positive("pixel_size_m[0] (row)", value[0], hint),
            _positive("pixel_size_m[1] (column)", value[1], hint),
        )
    size = _positive("pixel_size_m", value, hint)
    return (size, size)


# ------------------------------------------------------------------------ geometries
@dataclass(frozen=True)
class TransmissionGeometry:
    """Flat detector normal to the direct beam.

    ``pixel_size_m`` is one number (square pixels) or ``(row, column)``; it is stored as
    the pair. ``beam_center_x_px`` is the column index of the direct beam and
    ``beam_center_y_px`` its row index (pixel ``i`` centred at ``i``; fractions allowed,
    and the beam may lie off the detector).
    """

    energy_kev: float
    distance_m: float
    pixel_size_m: tuple[float, float]
    beam_center_x_px: float
    beam_center_y_px: float

    def __init__(
        self,
        energy_kev: float,
        distance_m: float,
        pixel_size_m: float | tuple[float, float],
        beam_center_x_px: float,
        beam_center_y_px: float,
    ) -> None:
        object.__setattr__(self, "energy_kev", _positive("energy_kev", energy_kev, "keV, e.g. 12.0"))
        object.__setattr__(
            self,
            "distance_m",
            _positive("distance_m", distance_m, "metres from sample to detector, e.g. 5.0"),
        )
        object.__setattr__(self, "pixel_size_m", _pixel_pair(pixel_size_m))
        object.__setattr__(
            self,
            "beam_center_x_px",
            _finite("beam_center_x_px", beam_center_x_px, "the column index of the direct beam"),
        )
        object.__setattr__(
            self,
            "beam_center_y_px",
            _finite("beam_center_y_px", beam_center_y_px, "the row index of the direct beam"),
        )

    @property
    def wavelength_m(self) -> float:
        return wavelength_m_from_energy_kev(self.energy_kev)


@dataclass(frozen=True)
class ReflectionGeometry:
    """Grazing incidence: flat detector normal to the beam, sample surface tilted by
    ``incidence_angle_deg`` (alpha_i) about the horizontal axis.

    ``orientation`` names the detector edge the surface normal points to, in the image
    as stored (row 0 at the top): ``"north"`` (top edge, the default: up is +y),
    ``"west"`` (left edge, column 0), ``"south"`` (bottom edge), ``"east"`` (right edge).
    The detector offsets ``(dx, dy)`` (dx = (column - bcx)·p, dy = -(row - bcy)·p) are
    rotated into the sample frame first, so that the normal is always +y':

    - north: ``(dx', dy') = (dx, dy)``;
    - west: ``(dx', dy') = (dy, -dx)`` (image turned 90° clockwise);
    - south: ``(dx', dy') = (-dx, -dy)``;
    - east: ``(dx', dy') = (-dy, dx)`` (image turned 90° counter-clockwise).
    """

    energy_kev: float
    distance_m: float
    pixel_size_m: tuple[float, float]
    beam_center_x_px: float
    beam_center_y_px: float
    incidence_angle_deg: float
    orientation: Orientation = "north"

    def __init__(
        self,
        energy_kev: float,
        distance_m: float,
        pixel_size_m: float | tuple[float, float],
        beam_center_x_px: float,
        beam_center_y_px: float,
        incidence_angle_deg: float,
        orientation: Orientation = "north",
    ) -> None:
        base = TransmissionGeometry(energy_kev, distance_m, pixel_size_m, beam_center_x_px, beam_center_y_px)
        for name in ("energy_kev", "distance_m", "pixel_size_m", "beam_center_x_px", "beam_center_y_px"):
            object.__setattr__(self, name, getattr(base, name))
        alpha = _finite("incidence_angle_deg", incidence_angle_deg, "degrees")
        if not -90.0 < alpha < 90.0:
            raise ValueError(
                f"incidence_angle_deg must lie in (-90, 90) degrees (grazing angles are a few tenths "
                f"of a degree); got {incidence_angle_deg!r}"
            )
        object.__setattr__(self, "incidence_angle_deg", alpha)
        if orientation not in _ORIENTATIONS:
            raise ValueError(
                f"orientation must be one of {', '.join(map(repr, _ORIENTATIONS))} (the detector edge "
                f"the sample's surface normal points to); got {orientation!r}"
            )
        object.__setattr__(self, "orientation", orientation)

    @property
    def wavelength_m(self) -> float:
        return wavelength_m_from_energy_kev(self.energy_kev)


@dataclass(frozen=True)
class TiltedGeometry:
    """A pyFAI calibration: distance, PONI and the three detector rotations.

    Fields follow pyFAI exactly (metres, radians): ``poni1`` along the rows (slow axis,
    dim 1), ``poni2`` along the columns, measured from the detector corner, pixel ``i``
    centred at ``(i + 0.5)·pixel``; ``rot1``, ``rot2``, ``rot3`` as pyFAI defines them
    (lab position = R3·R2·R1 · (x1 - poni1, x2 - poni2, dist)). ``detector_orientation``
    is pyFAI's detector orientation (0/3: origin as stored, 1: both axes flipped,
    2: rows flipped, 4: columns flipped).
    """

    distance_m: float
    poni1_m: float
    poni2_m: float
    rot1_rad: float
    rot2_rad: float
    rot3_rad: float
    wavelength_m: float
    pixel1_m: float
    pixel2_m: float
    detector_orientation: int = 3

    def __init__(
        self,
        distance_m: float,
        poni1_m: float,
        poni2_m: float,
        rot1_rad: float,
        rot2_rad: float,
        rot3_rad: float,
        wavelength_m: float,
        pixel1_m: float,
        pixel2_m: float,
        detector_orientation: int = 3,
    ) -> None:
        object.__setattr__(
            self, "distance_m", _positive("distance_m", distance_m, "metres (pyFAI's dist), e.g. 0.5")
        )
        for name, value in (("poni1_m", poni1_m), ("poni2_m", poni2_m)):
            object.__setattr__(self, name, _finite(name, value, "metres from the detector corner"))
        for name, value in (("rot1_rad", rot1_rad), ("rot2_rad", rot2_rad), ("rot3_rad", rot3_rad)):
            object.__setattr__(self, name, _finite(name, value, "radians, as pyFAI writes them"))
        object.__setattr__(
            self, "wavelength_m", _positive("wavelength_m", wavelength_m, "metres, e.g. 1.0e-10 for 1 Å")
        )
        hint = "metres, e.g. 75e-6 for 75 µm pixels"
        object.__setattr__(self, "pixel1_m", _positive("pixel1_m", pixel1_m, hint))
        object.__setattr__(self, "pixel2_m", _positive("pixel2_m", pixel2_m, hint))
        if isinstance(detector_orientation, bool) or detector_orientation not in (0, 1, 2, 3, 4):
            raise ValueError(
                f"detector_orientation must be pyFAI's orientation 0, 1, 2, 3 or 4 (3 is pyFAI's default); "
                f"got {detector_orientation!r}"
            )
        object.__setattr__(self, "detector_orientation", int(detector_orientation))

    # ------------------------------------------------------------------ constructors
    @classmethod
    def from_pyfai(
        cls,
        dist: float,
        poni1: float,
        poni2: float,
        rot1: float,
        rot2: float,
        rot3: float,
        wavelength: float,
        pixel1: float,
        pixel2: float,
        *,
        orientation: int = 3,
    ) -> TiltedGeometry:
        """From pyFAI's numbers, in pyFAI's units (metres, radians, wavelength in metres)."""
        return cls(dist, poni1, poni2, rot1, rot2, rot3, wavelength, pixel1, pixel2, orientation)

    @classmethod
    def from_transmission(cls, geometry: TransmissionGeometry) -> TiltedGeometry:
        """The same untilted geometry in pyFAI's terms (PONI = beam centre + half a pixel)."""
        p_row, p_col = geometry.pixel_size_m
        return cls(
            geometry.distance_m,
            (geometry.beam_center_y_px + 0.5) * p_row,
            (geometry.beam_center_x_px + 0.5) * p_col,
            0.0,
            0.0,
            0.0,
            geometry.wavelength_m,
            p_row,
            p_col,
        )

    @classmethod
    def from_poni(
        cls, path: str | Path, *, pixel_size_m: float | tuple[float, float] | None = None
    ) -> TiltedGeometry:
        """Read a pyFAI PONI file (versions 1, 2, 2.1; 3 without parallax correction).

        Version 1 gives the pixel sizes as ``PixelSize1`` / ``PixelSize2``; versions 2 and
        later as ``pixel1`` / ``pixel2`` in the ``Detector_config`` JSON. Where the file
        names a detector without pixel sizes, pass ``pixel_size_m`` (one number or
        ``(row, column)``), which also overrides the file's.
        """
        source = Path(path)
        try:
            text = source.read_text(encoding="utf-8")
        except OSError as exc:
            raise PoniFormatError(f"cannot read PONI file {str(source)!r}: {exc.strerror or exc}") from exc
        except UnicodeDecodeError as exc:
            raise PoniFormatError(
                f"{str(source)!r} is not a text PONI file ({exc.reason}); pass the .poni file that "
                "pyFAI-calib2 wrote"
            ) from exc
        return cls._from_poni_text(text, str(source), pixel_size_m)

    @classmethod
    def _from_poni_text(
        cls, text: str, source: str, pixel_size_m: float | tuple[float, float] | None
    ) -> TiltedGeometry:
        poni = _Poni(source, _poni_entries(text, source))
        version = poni.version()
        if version == 1.0:
            pixels, orientation = poni.detector_v1()
        else:
            pixels, orientation = poni.detector_v2()
        if pixel_size_m is not None:
            pixels = _pixel_pair(pixel_size_m)
        if pixels[0] is None or pixels[1] is None:
            detector = poni.entries.get("detector", "an unnamed detector")
            raise PoniFormatError(
                f"{source} gives no pixel sizes for {detector} (no PixelSize1/PixelSize2 or "
                "Detector_config pixel1/pixel2); pass them: TiltedGeometry.from_poni(path, pixel_size_m=...)"
            )
        distance_key = "distance" if "distance" in poni.entries else "dist"
        try:
            return cls(
                poni.number(distance_key, "Distance"),
                poni.number("poni1", "Poni1"),
                poni.number("poni2", "Poni2"),
                poni.number("rot1", "Rot1"),
                poni.number("rot2", "Rot2"),
                poni.number("rot3", "Rot3"),
                poni.number("wavelength", "Wavelength"),
                pixels[0],
                pixels[1],
                orientation,
            )
        except PoniFormatError:
            raise
        except ValueError as exc:
            raise PoniFormatError(f"{source}: {exc}") from None

    # ---------------------------------------------------------------------- helpers
    @property
    def energy_kev(self) -> float:
        """Photon energy from the wavelength (12.398419843320026 keV·Å / λ)."""
        return energy_kev_from_wavelength_m(self.wavelength_m)

    @property
    def pixel_size_m(self) -> tuple[float, float]:
        """``(row, column)`` pixel size, as in the other geometries."""
        return (self.pixel1_m, self.pixel2_m)

    def rotation_matrix(self) -> _Matrix:
        """pyFAI's R = R3·R2·R1 (rows: lab axes 1, 2, 3; 3 along the beam)."""
        c1, s1 = math.cos(self.rot1_rad), math.sin(self.rot1_rad)
        c2, s2 = math.cos(self.rot2_rad), math.sin(self.rot2_rad)
        c3, s3 = math.cos(self.rot3_rad), math.sin(self.rot3_rad)
        r1: _Matrix = ((1.0, 0.0, 0.0), (0.0, c1, s1), (0.0, -s1, c1))
        r2: _Matrix = ((c2, 0.0, -s2), (0.0, 1.0, 0.0), (s2, 0.0, c2))
        r3: _Matrix = ((c3, -s3, 0.0), (s3, c3, 0.0), (0.0, 0.0, 1.0))
        return _matmul(r3, _matmul(r2, r1))

    def beam_center_px(self) -> tuple[float, float]:
        """``(x = column, y = row)`` where the direct beam hits the detector plane, in the
        APS pixel convention (orientation 0/3; pixel ``i`` centred at ``i``)."""
        # The direct beam is lab axis 3; in detector coordinates it is R^T e3 scaled so
        # that its third component reaches the plane at distance dist.
        rot = self.rotation_matrix()
        d1, d2, d3 = rot[2][0], rot[2][1], rot[2][2]
        # detector point (x1 - poni1, x2 - poni2, dist) ∝ R^T e3 = (d1, d2, d3)
        if d3 <= 0.0:
            raise ValueError("the direct beam does not hit this detector plane (tilt of 90° or more)")
        x1 = self.poni1_m + self.distance_m * d1 / d3
        x2 = self.poni2_m + self.distance_m * d2 / d3
        return (x2 / self.pixel2_m - 0.5, x1 / self.pixel1_m - 0.5)


def _matmul(a: _Matrix, b: _Matrix) -> _Matrix:
    def row(i: int) -> tuple[float, float, float]:
        c0, c1, c2 = (a[i][0] * b[0][k] + a[i][1] * b[1][k] + a[i][2] * b[2][k] for k in range(3))
        return (c0, c1, c2)

    return (row(0), row(1), row(2))


# ----------------------------------------------------------------------- PONI reading
_Pixels = tuple[float | None, float | None]
_SPLINE = (
    "spline-corrected detectors are not supported: calibrate without a spline or apply the "
    "distortion correction first"
)


def _poni_entries(text: str, source: str) -> dict[str, str]:
    """``Key: value`` lines (keys lower-cased), comments (``#``) and blank lines skipped."""
    entries: dict[str, str] = {}
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.partition(":")
        if not sep or not key.strip():
            raise PoniFormatError(
                f"{source}, line {number}: expected 'Key: value', got {raw!r}; a PONI file has one "
                "'Key: value' per line and comments starting with '#'"
            )
        entries[key.strip().lower()] = value.strip()
    if not entries:
        raise PoniFormatError(f"{source} holds no 'Key: value' lines; is it a pyFAI PONI file?")
    return entries


@dataclass(frozen=True)
class _Poni:
    source: str
    entries: dict[str, str]

    def number(self, key: str, label: str) -> float:
        value = self.entries.get(key)
        if value is None or value.lower() in ("", "none"):
            raise PoniFormatError(
                f"{self.source} has no {label} ('{label}: <value>' line); the file looks truncated or is "
                "not a PONI file: re-export it from pyFAI-calib2"
            )
        try:
            return float(value)
        except ValueError:
            raise PoniFormatError(
                f"{self.source}: {label} must be a number, got {value!r}; fix that line"
            ) from None

    def version(self) -> float:
        text = self.entries.get("poni_version", "1")
        try:
            version = float(text)
        except ValueError:
            raise PoniFormatError(
                f"{self.source}: poni_version must be a number (1, 2, 2.1 or 3), got {text!r}"
            ) from None
        if version not in (1.0, 2.0, 2.1, 3.0):
            raise PoniFormatError(
                f"{self.source}: PONI version {text} is not supported (1, 2, 2.1 and 3 are); "
                "re-export it with a pyFAI that writes one of those"
            )
        return version

    def detector_v1(self) -> tuple[_Pixels, int]:
        """Version 1: ``PixelSize1`` / ``PixelSize2`` lines, optional ``SplineFile``."""
        pixels: _Pixels = (None, None)
        if "pixelsize1" in self.entries or "pixelsize2" in self.entries:
            pixels = (self.number("pixelsize1", "PixelSize1"), self.number("pixelsize2", "PixelSize2"))
        spline = self.entries.get("splinefile", "none")
        if spline.lower() != "none":
            raise PoniFormatError(f"{self.source} uses a distortion spline ({spline}); {_SPLINE}")
        return pixels, 3

    def detector_v2(self) -> tuple[_Pixels, int]:
        """Versions 2, 2.1, 3: ``Detector_config`` JSON with ``pixel1``, ``pixel2``, ``orientation``."""
        if "detector_config" not in self.entries:
            raise PoniFormatError(
                f"{self.source} claims PONI version {self.entries.get('poni_version')} but has no "
                "Detector_config line; re-export it from pyFAI-calib2"
            )
        try:
            config = json.loads(self.entries["detector_config"])
        except json.JSONDecodeError as exc:
            raise PoniFormatError(
                f"{self.source}: Detector_config is not valid JSON ({exc.msg}); fix that line"
            ) from None
        if not isinstance(config, dict):
            raise PoniFormatError(f"{self.source}: Detector_config must be a JSON object, got {config!r}")
        if config.get("splinefile") or config.get("splineFile"):
            raise PoniFormatError(f"{self.source} uses a distortion spline; {_SPLINE}")
        if self.entries.get("parallax", "false").strip().lower() == "true":
            raise PoniFormatError(
                f"{self.source} asks for parallax correction, which is not supported; calibrate without it"
            )
        p1, p2 = config.get("pixel1"), config.get("pixel2")
        pixels: _Pixels = (None if p1 is None else float(p1), None if p2 is None else float(p2))
        return pixels, int(config.get("orientation", 3) or 3)
