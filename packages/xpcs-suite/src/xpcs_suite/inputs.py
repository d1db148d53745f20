"""Reading what a user hands the ``xpcs`` command, with one-line errors that say what to fix.

Every problem raises :class:`InputError` (a ``ValueError``) whose message is a single line
naming the file, the problem and the fix: a missing or unreadable file, a file that is
not HDF5 or is truncated, a missing dataset (the message lists the datasets that exist),
frames that are not 3-D, a mask of the wrong shape, a missing or malformed geometry.
Files are opened read-only.

Geometry comes from, in this order of precedence: a pyFAI PONI file, a TOML geometry file,
or the NeXus fields of the raw file (:func:`resolve_geometry`).

**TOML geometry file** (all lengths in metres, angles in degrees; the keys are the field
names of :class:`~xpcs_kernels.geometry.TransmissionGeometry`; they may sit at the top
level or in a ``[geometry]`` table)::

    energy_kev = 10.0            # or wavelength_angstrom = 1.2398
    distance_m = 5.0             # sample to detector
    pixel_size_m = 75e-6         # or [row, column]
    beam_center_x_px = 120.3     # column index of the direct beam (pixel i centred at i)
    beam_center_y_px = 135.7     # row index of the direct beam
    # optional
    incidence_angle_deg = 0.15   # grazing incidence: a ReflectionGeometry
    orientation = "north"        # with incidence_angle_deg: north, west, south or east
    frame_time_s = 0.001         # used when the raw file gives none

**NeXus fields of a raw file** (``/entry/instrument/``): ``detector_1/distance``,
``detector_1/x_pixel_size`` and ``y_pixel_size`` (``units`` attribute m, mm, um or µm;
metres when absent), ``detector_1/beam_center_x`` and ``beam_center_y`` (pixels, or a
length when ``units`` says so), ``incident_beam/incident_energy`` (keV or eV; keV when
absent); ``detector_1/frame_time`` (s, ms, us) for the frame time.
"""

from __future__ import annotations

import math
import os
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from xpcs_kernels.constants import HC_KEV_ANGSTROM
from xpcs_kernels.geometry import PoniFormatError, ReflectionGeometry, TiltedGeometry, TransmissionGeometry

__all__ = [
    "DEFAULT_FRAMES_KEY",
    "MASK_KEYS",
    "GeometrySource",
    "InputError",
    "frames_dataset",
    "geometry_from_nexus",
    "geometry_from_poni",
    "geometry_from_toml",
    "load_mask",
    "open_hdf5",
    "raw_frame_time",
    "raw_mask",
    "resolve_geometry",
]

DEFAULT_FRAMES_KEY = "/entry/data/data"
MASK_KEYS: tuple[str, ...] = (
    "/xpcs/qmap/mask",
    "/qmap/mask",
    "/entry/instrument/detector_1/mask",
    "/mask",
)
"""Where :func:`load_mask` looks in an HDF5 file when no key is given (nonzero = valid)."""

_HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"
_DETECTOR = "/entry/instrument/detector_1"
_ENERGY = "/entry/instrument/incident_beam/incident_energy"
_LENGTH_UNITS = {"m": 1.0, "metre": 1.0, "meter": 1.0, "mm": 1e-3, "um": 1e-6, "µm": 1e-6, "micron": 1e-6}
_TIME_UNITS = {"s": 1.0, "second": 1.0, "ms": 1e-3, "us": 1e-6, "µs": 1e-6, "ns": 1e-9}
_ENERGY_UNITS = {"kev": 1.0, "ev": 1e-3}
_TOML_KEYS = (
    "energy_kev",
    "wavelength_angstrom",
    "distance_m",
    "pixel_size_m",
    "beam_center_x_px",
    "beam_center_y_px",
    "incidence_angle_deg",
    "orientation",
    "frame_time_s",
)


class InputError(ValueError):
    """Input the command cannot use; the message is one line naming the problem and the fix."""


def _quoted(path: str | os.PathLike[str]) -> str:
    return repr(os.fspath(path))


def _check_readable_file(path: str | os.PathLike[str], what: str) -> Path:
    source = Path(path)
    if not source.exists():
        raise InputError(f"{what} {_quoted(source)} does not exist; check the path")
    if source.is_dir():
        raise InputError(f"{what} {_quoted(source)} is a folder; give the file inside it")
    if not os.access(source, os.R_OK):
        raise InputError(f"{what} {_quoted(source)} is not readable (permission denied); fix its permissions")
    return source


def _has_hdf5_signature(path: Path) -> bool:
    # The signature sits at byte 0, or at 512, 1024, 2048, ... after a user block.
    size = path.stat().st_size
    offset = 0
    with path.open("rb") as fh:
        while offset + len(_HDF5_SIGNATURE) <= size:
            fh.seek(offset)
            if fh.read(len(_HDF5_SIGNATURE)) == _HDF5_SIGNATURE:
                return True
            offset = 512 if offset == 0 else offset * 2
    return False


def open_hdf5(path: str | os.PathLike[str], *, what: str = "HDF5 file") -> Any:
    """``h5py.File(path, "r")`` (use it as a context manager), or an :class:`InputError` for a
    missing, unreadable, non-HDF5 or truncated file."""
    import h5py

    source = _check_readable_file(path, what)
    if not _has_hdf5_signature(source):
        raise InputError(
            f"{what} {_quoted(source)} is not an HDF5 file (no HDF5 signature); give an .h5/.hdf/.nxs file"
        )
    try:
        return h5py.File(source, "r")
    except OSError as exc:
        text = str(exc)
        if "truncated" in text:
            raise InputError(
                f"{what} {_quoted(source)} is truncated ({source.stat().st_size} bytes; the file says it "
                "is longer): it was not copied or written completely; copy it again"
            ) from None
        raise InputError(f"{what} {_quoted(source)} cannot be opened as HDF5: {text}") from None


def _datasets(h5: Any, *, ndim: int | None = None, limit: int = 12) -> list[str]:
    import h5py

    found: list[str] = []

    def visit(name: str, obj: Any) -> None:
        if isinstance(obj, h5py.Dataset) and (ndim is None or obj.ndim == ndim):
            found.append(f"/{name} {tuple(obj.shape)}")

    h5.visititems(visit)
    if len(found) > limit:
        return [*found[:limit], f"... ({len(found) - limit} more)"]
    return found


def _describe(found: list[str]) -> str:
    return ", ".join(found) if found else "none"


def frames_dataset(h5: Any, key: str = DEFAULT_FRAMES_KEY) -> Any:
    """The frame stack ``h5[key]`` (an ``h5py.Dataset`` of shape ``(N, H, W)`` and a real
    number type), or an :class:`InputError` naming what the file holds instead."""
    import h5py

    name = h5.filename
    if key not in h5:
        raise InputError(
            f"{name!r} has no dataset {key!r}; 3-D datasets in the file: "
            f"{_describe(_datasets(h5, ndim=3))}; pass --frames-key KEY"
        )
    obj = h5[key]
    if not isinstance(obj, h5py.Dataset):
        raise InputError(
            f"{key!r} in {name!r} is a group, not a dataset; 3-D datasets in the file: "
            f"{_describe(_datasets(h5, ndim=3))}; pass --frames-key KEY"
        )
    if obj.ndim != 3:
        raise InputError(
            f"{key!r} in {name!r} has shape {tuple(obj.shape)}; frames must be 3-D (frames, rows, columns); "
            f"3-D datasets in the file: {_describe(_datasets(h5, ndim=3))}"
        )
    if obj.dtype.kind not in "uif":
        raise InputError(
            f"{key!r} in {name!r} holds {obj.dtype}, not numbers; frames must be integer or float counts"
        )
    if obj.shape[0] < 2:
        raise InputError(f"{key!r} in {name!r} has {obj.shape[0]} frame(s); correlations need at least 2")
    return obj


def _units(dataset: Any) -> str | None:
    units = dataset.attrs.get("units")
    if units is None:
        return None
    if isinstance(units, bytes):
        units = units.decode("utf-8", "replace")
    return str(np.asarray(units).ravel()[0] if np.ndim(units) else units).strip()


def _number(h5: Any, key: str) -> tuple[float, str | None] | None:
    if key not in h5:
        return None
    dataset = h5[key]
    try:
        values = np.asarray(dataset[()], dtype=np.float64).ravel()
    except (TypeError, ValueError):
        raise InputError(f"{key!r} in {h5.filename!r} is not a number") from None
    if values.size != 1 or not math.isfinite(values[0]):
        raise InputError(f"{key!r} in {h5.filename!r} must hold one finite number, got {values[:4]}")
    return float(values[0]), _units(dataset)


def _scaled(h5: Any, key: str, table: dict[str, float], default_unit: str) -> float | None:
    found = _number(h5, key)
    if found is None:
        return None
    value, unit = found
    unit = unit if unit else default_unit
    scale = table.get(unit) if unit in table else table.get(unit.lower())
    if scale is None:
        raise InputError(f"{key!r} in {h5.filename!r} has units {unit!r}; expected one of {', '.join(table)}")
    return value * scale


def raw_frame_time(h5: Any) -> float | None:
    """``/entry/instrument/detector_1/frame_time`` in seconds, or None when absent."""
    value = _scaled(h5, f"{_DETECTOR}/frame_time", _TIME_UNITS, "s")
    if value is not None and value <= 0:
        raise InputError(f"frame_time in {h5.filename!r} is {value} s; it must be positive")
    return value


def raw_mask(h5: Any) -> np.ndarray[Any, Any] | None:
    """The raw file's own mask as booleans (True = valid), or None: ``detector_1/mask``
    (nonzero = valid, as written by ``xpcs simulate``) or the NeXus ``detector_1/pixel_mask``
    (0 = good, any bit set = bad)."""
    for name, valid_when_nonzero in (("mask", True), ("pixel_mask", False)):
        key = f"{_DETECTOR}/{name}"
        if key in h5:
            values = np.asarray(h5[key][()])
            valid: np.ndarray[Any, Any] = values != 0 if valid_when_nonzero else values == 0
            return valid
    return None


def geometry_from_nexus(h5: Any) -> TransmissionGeometry:
    """A flat-detector geometry from the raw file's NeXus fields (see the module docstring)."""
    names = {
        "distance": f"{_DETECTOR}/distance",
        "x_pixel_size": f"{_DETECTOR}/x_pixel_size",
        "y_pixel_size": f"{_DETECTOR}/y_pixel_size",
        "beam_center_x": f"{_DETECTOR}/beam_center_x",
        "beam_center_y": f"{_DETECTOR}/beam_center_y",
        "incident_energy": _ENERGY,
    }
    missing = [key for key in names.values() if key not in h5]
    if missing:
        raise InputError(
            f"no geometry: {h5.filename!r} lacks {', '.join(missing)}; pass --poni FILE (pyFAI) or "
            "--geometry FILE (TOML with energy_kev, distance_m, pixel_size_m, beam_center_x_px, "
            "beam_center_y_px)"
        )
    distance = _scaled(h5, names["distance"], _LENGTH_UNITS, "m")
    px = _scaled(h5, names["x_pixel_size"], _LENGTH_UNITS, "m")
    py = _scaled(h5, names["y_pixel_size"], _LENGTH_UNITS, "m")
    energy = _scaled(h5, names["incident_energy"], _ENERGY_UNITS, "keV")
    assert distance is not None
    assert px is not None
    assert py is not None
    assert energy is not None
    centre = []
    for axis, size in (("x", px), ("y", py)):
        value, unit = _number(h5, names[f"beam_center_{axis}"])  # type: ignore[misc]
        if unit and unit.lower() not in ("pixel", "pixels", "px"):
            scale = _LENGTH_UNITS.get(unit) or _LENGTH_UNITS.get(unit.lower())
            if scale is None:
                raise InputError(
                    f"beam_center_{axis} in {h5.filename!r} has units {unit!r}; expected pixel or a length"
                )
            value = value * scale / size
        centre.append(value)
    try:
        return TransmissionGeometry(energy, distance, (py, px), centre[0], centre[1])
    except ValueError as exc:
        raise InputError(f"geometry in {h5.filename!r}: {exc}") from None


def geometry_from_poni(path: str | os.PathLike[str]) -> TiltedGeometry:
    """A pyFAI calibration from a PONI file."""
    source = _check_readable_file(path, "PONI file")
    try:
        return TiltedGeometry.from_poni(source)
    except PoniFormatError as exc:
        raise InputError(" ".join(str(exc).split())) from None


@dataclass(frozen=True)
class GeometrySource:
    """A geometry, where it came from (one line), and a frame time if that source has one."""

    geometry: TransmissionGeometry | TiltedGeometry | ReflectionGeometry
    source: str
    frame_time_s: float | None = None


def _toml_number(value: Any, key: str, source: Path) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InputError(f"{key} in {_quoted(source)} must be a number, got {value!r}")
    return float(value)


def _toml_table(source: Path) -> dict[str, Any]:
    try:
        document = tomllib.loads(source.read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        raise InputError(f"geometry file {_quoted(source)} is not a text (TOML) file") from None
    except tomllib.TOMLDecodeError as exc:
        raise InputError(f"geometry file {_quoted(source)} is not valid TOML: {exc}") from None
    table = document.get("geometry", document)
    if not isinstance(table, dict):
        raise InputError(f"[geometry] in {_quoted(source)} must be a table")
    unknown = sorted(set(table) - set(_TOML_KEYS))
    if unknown:
        raise InputError(
            f"geometry file {_quoted(source)} has unknown keys {', '.join(unknown)}; "
            f"known: {', '.join(_TOML_KEYS)}"
        )
    if ("energy_kev" in table) == ("wavelength_angstrom" in table):
        raise InputError(
            f"geometry file {_quoted(source)} needs exactly one of energy_kev or wavelength_angstrom"
        )
    required = ("distance_m", "pixel_size_m", "beam_center_x_px", "beam_center_y_px")
    missing = [key for key in required if key not in table]
    if missing:
        raise InputError(f"geometry file {_quoted(source)} lacks {', '.join(missing)}")
    if "orientation" in table and "incidence_angle_deg" not in table:
        raise InputError(f"orientation in {_quoted(source)} needs incidence_angle_deg (grazing incidence)")
    return table


def _toml_energy(table: dict[str, Any], source: Path) -> float:
    if "energy_kev" in table:
        return _toml_number(table["energy_kev"], "energy_kev", source)
    wavelength = _toml_number(table["wavelength_angstrom"], "wavelength_angstrom", source)
    if wavelength <= 0:
        raise InputError(f"wavelength_angstrom in {_quoted(source)} must be positive, got {wavelength}")
    return HC_KEV_ANGSTROM / wavelength


def _toml_pixel(value: Any, source: Path) -> float | tuple[float, float]:
    if not isinstance(value, list):
        return _toml_number(value, "pixel_size_m", source)
    if len(value) != 2:
        raise InputError(f"pixel_size_m in {_quoted(source)} must be a number or [row, column]")
    return (_toml_number(value[0], "pixel_size_m", source), _toml_number(value[1], "pixel_size_m", source))


def geometry_from_toml(path: str | os.PathLike[str]) -> GeometrySource:
    """A geometry from a TOML file (keys in the module docstring)."""
    source = _check_readable_file(path, "geometry file")
    table = _toml_table(source)
    energy = _toml_energy(table, source)
    pixel_size = _toml_pixel(table["pixel_size_m"], source)
    frame_time = (
        _toml_number(table["frame_time_s"], "frame_time_s", source) if "frame_time_s" in table else None
    )
    if frame_time is not None and frame_time <= 0:
        raise InputError(f"frame_time_s in {_quoted(source)} must be positive, got {frame_time}")
    distance, bcx, bcy = (
        _toml_number(table[key], key, source)
        for key in ("distance_m", "beam_center_x_px", "beam_center_y_px")
    )
    geometry: TransmissionGeometry | ReflectionGeometry
    try:
        if "incidence_angle_deg" in table:
            alpha = _toml_number(table["incidence_angle_deg"], "incidence_angle_deg", source)
            orientation = table.get("orientation", "north")
            geometry = ReflectionGeometry(energy, distance, pixel_size, bcx, bcy, alpha, orientation)
        else:
            geometry = TransmissionGeometry(energy, distance, pixel_size, bcx, bcy)
    except ValueError as exc:
        raise InputError(f"geometry file {_quoted(source)}: {exc}") from None
    return GeometrySource(geometry, f"TOML file {source}", frame_time)


def resolve_geometry(
    *,
    poni: str | os.PathLike[str] | None = None,
    geometry_file: str | os.PathLike[str] | None = None,
    raw: Any = None,
) -> GeometrySource:
    """The geometry from the first source given: ``poni`` (PONI file), ``geometry_file``
    (TOML), then ``raw`` (an open raw HDF5 file: its NeXus fields)."""
    if poni is not None:
        return GeometrySource(geometry_from_poni(poni), f"PONI file {os.fspath(poni)}")
    if geometry_file is not None:
        return geometry_from_toml(geometry_file)
    if raw is not None:
        return GeometrySource(
            geometry_from_nexus(raw), f"NeXus fields of {raw.filename}", raw_frame_time(raw)
        )
    raise InputError(
        "no geometry: pass --poni FILE (pyFAI) or --geometry FILE (TOML), or a raw file with NeXus fields"
    )


def _mask_from_hdf5(source: Path, key: str | None) -> np.ndarray[Any, Any]:
    import h5py

    with open_hdf5(source, what="mask file") as h5:
        if key is None:
            key = next((k for k in MASK_KEYS if k in h5 and isinstance(h5[k], h5py.Dataset)), None)
            if key is None:
                two_d = _datasets(h5, ndim=2)
                if len(two_d) != 1:
                    raise InputError(
                        f"mask file {_quoted(source)} has none of {', '.join(MASK_KEYS)}; 2-D datasets: "
                        f"{_describe(two_d)}; name the dataset (e.g. --mask FILE --mask-key KEY)"
                    )
                key = two_d[0].split(" ")[0]
        if key not in h5 or not isinstance(h5[key], h5py.Dataset):
            raise InputError(
                f"mask file {_quoted(source)} has no dataset {key!r}; "
                f"2-D datasets: {_describe(_datasets(h5, ndim=2))}"
            )
        return np.asarray(h5[key][()])


def load_mask(
    path: str | os.PathLike[str], shape: tuple[int, int], *, key: str | None = None
) -> np.ndarray[Any, Any]:
    """A mask as booleans (True = valid: the file's nonzero values) of the frames' ``shape``.

    ``.npy`` files are read with ``numpy.load`` (no pickles); anything else must be HDF5,
    read at ``key`` or, when None, at the first of :data:`MASK_KEYS` present, or the only
    2-D dataset of the file.
    """
    source = _check_readable_file(path, "mask file")
    if source.suffix.lower() == ".npy":
        try:
            values = np.load(source, allow_pickle=False)
        except (ValueError, OSError) as exc:
            raise InputError(f"mask file {_quoted(source)} is not a readable .npy array: {exc}") from None
    elif _has_hdf5_signature(source):
        values = _mask_from_hdf5(source, key)
    else:
        raise InputError(
            f"mask file {_quoted(source)} is neither .npy nor HDF5; save the mask with numpy.save"
        )
    values = np.asarray(values)
    if values.dtype.kind not in "biuf":
        raise InputError(f"mask in {_quoted(source)} holds {values.dtype}; a mask holds numbers or booleans")
    if values.shape != tuple(shape):
        raise InputError(
            f"mask in {_quoted(source)} has shape {values.shape} but the frames are {tuple(shape)}; "
            "give the mask of this detector"
        )
    if values.dtype.kind == "f" and not np.isfinite(values).all():
        raise InputError(f"mask in {_quoted(source)} contains NaN or infinity; a mask holds 0 and 1")
    mask: np.ndarray[Any, Any] = values != 0
    if not mask.any():
        raise InputError(
            f"mask in {_quoted(source)} excludes every pixel (all zero); nonzero marks valid pixels"
        )
    return mask
