"""The APS 8-ID-I result file (NeXus/HDF5): writing it, reading it back, adding fits.

The layout is the one the APS XPCS Viewer (``xpcs-viewer``, module ``pyxpcsviewer``) and
boost_corr use; names, shapes and types were checked against the viewer's reader
(``core/file_io/aps_8idi.py``, ``qmap_utils.py``, ``xpcs_file.py``, ``twotime_utils.py``):

- ``/xpcs/qmap``: ``mask``, ``{dynamic,static}_roi_map`` (H, W) int32 labels (0 = none);
  ``{dynamic,static}_v_list_dim0`` (n_q,) q-bin centres and ``_dim1`` (n_phi,) φ-bin
  centres; ``{dynamic,static}_index_mapping`` (K,) int64 zero-based grid index of each
  occupied label; ``{dynamic,static}_num_pts`` = ``[n_q, n_phi]`` (the **grid shape**, which
  the viewer reshapes with, not pixel counts); ``beam_center_x``/``_y`` (pixels),
  ``detector_distance`` and ``pixel_size`` (metres); ``map_names`` ``[b"q", b"phi"]`` and
  ``map_units``; the group attribute ``hash`` (the viewer caches q-maps by it).
- ``/xpcs/multitau``: ``normalized_g2`` and ``normalized_g2_err`` (n_delay, K),
  ``delay_list`` (n_delay,) **in frames** (the viewer multiplies by ``frame_time ·
  stride_frame · avg_frame``), ``config/stride_frame``, ``config/avg_frame``, optionally
  ``unnormalized_G2`` and (this project's addition, ignored by the viewer)
  ``normalized_g2_static`` (n_delay, K_static), the g2 of every static bin, of which each
  dynamic bin's g2 is the mean: ``xpcs fit`` takes the error of D from it.
- ``/xpcs/temporal_mean``: ``scattering_2d`` (1, H, W), ``scattering_1d`` (1, K_static),
  ``scattering_1d_segments`` (n_segments, K_static); ``/xpcs/spatial_mean/intensity_vs_time``
  (2, N).
- ``/xpcs/twotime`` (optional): ``correlation_map/c2_00001 ...`` (N, N), numbered in the
  order of ``processed_bins`` (1-based dynamic labels) and stored as the **upper triangle**
  (the viewer rebuilds the matrix as ``c2 + c2.T`` with the diagonal halved);
  ``normalized_g2`` (n_delay, n_bins), optionally ``normalized_g2_segments`` and
  ``delay_list``; ``config/stride_frame``, ``config/avg_frame``.
- ``/entry/instrument/detector_1/{frame_time, count_time}`` (s), ``{x_pixel_size,
  y_pixel_size, distance}`` (m), ``{beam_center_x, beam_center_y}`` (pixels),
  ``/entry/instrument/incident_beam/incident_energy`` (keV), ``/entry/start_time`` (bytes,
  ISO 8601), and the group ``/entry/instrument/bluesky/metadata`` by which the viewer
  recognises the NeXus format.
- Fits (this project's addition, ignored by the viewer): ``/xpcs/fit/<name>`` groups, see
  :func:`write_fit` for the names the plots and ``xpcs fit`` use.

Every array goes through :class:`xpcs_adapters.HDF5Adapter` (JAX arrays are converted at
that boundary). Writes are atomic: a temporary file in the same folder, then ``os.replace``.
"""

from __future__ import annotations

import hashlib
import math
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from xpcs_adapters import HDF5Adapter
from xpcs_suite.__about__ import __version__
from xpcs_suite.atomic import atomic_output, atomic_update
from xpcs_suite.inputs import InputError, open_hdf5

if TYPE_CHECKING:
    from xpcs_kernels.geometry import ReflectionGeometry, TiltedGeometry, TransmissionGeometry
    from xpcs_kernels.partitions import Partition
    from xpcs_kernels.reductions import Reductions

__all__ = [
    "FIT_ROOT",
    "FitGroup",
    "InstrumentFields",
    "MultitauFields",
    "QMapFields",
    "ReductionsFields",
    "ResultFile",
    "TwotimeFields",
    "read_result",
    "write_fit",
    "write_result",
]

FIT_ROOT = "/xpcs/fit"
"""Parent group of the fit groups written by :func:`write_fit`."""
NEXUS_MARKER = "/entry/instrument/bluesky/metadata"

_Array = np.ndarray[Any, Any]
_ADAPTER = HDF5Adapter()
# Arrays above this many elements are stored gzip-compressed (level 1: fast).
_COMPRESS_ABOVE = 8192
_FIT_NAME = re.compile(r"^[A-Za-z0-9_.\-]+$")


# ----------------------------------------------------------------------- sections
def _np(value: Any, dtype: Any = None) -> _Array:
    """``value`` through the HDF5 adapter (JAX arrays become NumPy here), then cast."""
    out = _ADAPTER.to_hdf5(value)
    return out if dtype is None else out.astype(dtype, copy=False)


def _scalar(value: float) -> _Array:
    """A 0-d float64 array (h5py stores it as a scalar dataset)."""
    return np.asarray(value, dtype=np.float64)


def _float(name: str, value: Any) -> float:
    x = float(_np(value).reshape(()))
    if not math.isfinite(x):
        raise ValueError(f"{name} must be finite, got {x}")
    return x


@dataclass(frozen=True, eq=False)
class QMapFields:
    """``/xpcs/qmap``: the mask, the static and dynamic partitions and the geometry.

    ``*_num_pts`` is the partition grid ``(n_q, n_phi)``. ``pixel_size_m`` is the column
    (x) pixel size: the APS file has a single one.
    """

    mask: Any
    dynamic_roi_map: Any
    static_roi_map: Any
    dynamic_v_list_dim0: Any
    dynamic_v_list_dim1: Any
    static_v_list_dim0: Any
    static_v_list_dim1: Any
    dynamic_index_mapping: Any
    static_index_mapping: Any
    dynamic_num_pts: tuple[int, int]
    static_num_pts: tuple[int, int]
    beam_center_x_px: float
    beam_center_y_px: float
    detector_distance_m: float
    pixel_size_m: float
    map_names: tuple[str, str] = ("q", "phi")
    map_units: tuple[str, str] = ("1/A", "deg")

    @classmethod
    def from_partitions(
        cls,
        static: Partition,
        dynamic: Partition,
        mask: Any,
        geometry: TransmissionGeometry | TiltedGeometry | ReflectionGeometry,
    ) -> QMapFields:
        """From the ``(static, dynamic)`` pair of :func:`xpcs_kernels.partitions.make_partitions`."""
        from xpcs_kernels.geometry import TiltedGeometry

        if isinstance(geometry, TiltedGeometry):
            bcx, bcy = geometry.beam_center_px()
        else:
            bcx, bcy = geometry.beam_center_x_px, geometry.beam_center_y_px
        return cls(
            mask=mask,
            dynamic_roi_map=dynamic.roi_map,
            static_roi_map=static.roi_map,
            dynamic_v_list_dim0=dynamic.v_list_dim0,
            dynamic_v_list_dim1=dynamic.v_list_dim1,
            static_v_list_dim0=static.v_list_dim0,
            static_v_list_dim1=static.v_list_dim1,
            dynamic_index_mapping=dynamic.index_mapping,
            static_index_mapping=static.index_mapping,
            dynamic_num_pts=(dynamic.n_q, dynamic.n_phi),
            static_num_pts=(static.n_q, static.n_phi),
            beam_center_x_px=bcx,
            beam_center_y_px=bcy,
            detector_distance_m=geometry.distance_m,
            pixel_size_m=geometry.pixel_size_m[1],
        )

    def arrays(self) -> dict[str, _Array]:
        """The datasets of ``/xpcs/qmap``, checked for consistent shapes."""
        out: dict[str, _Array] = {"mask": _np(self.mask, np.int32)}
        shape = out["mask"].shape
        if len(shape) != 2:
            raise ValueError(f"mask must be 2-D (rows, columns), got shape {shape}")
        for kind in ("dynamic", "static"):
            roi = _np(getattr(self, f"{kind}_roi_map"), np.int32)
            if roi.shape != shape:
                raise ValueError(f"{kind}_roi_map has shape {roi.shape}, the mask {shape}; they must match")
            dim0 = _np(getattr(self, f"{kind}_v_list_dim0"), np.float64).ravel()
            dim1 = _np(getattr(self, f"{kind}_v_list_dim1"), np.float64).ravel()
            mapping = _np(getattr(self, f"{kind}_index_mapping"), np.int64).ravel()
            n_q, n_phi = (int(n) for n in getattr(self, f"{kind}_num_pts"))
            if (dim0.size, dim1.size) != (n_q, n_phi):
                raise ValueError(
                    f"{kind}_num_pts is ({n_q}, {n_phi}) but the v lists have {dim0.size} and "
                    f"{dim1.size} values"
                )
            n_labels = int(roi.max(initial=0))
            if mapping.size != n_labels or (
                mapping.size and (mapping.min() < 0 or mapping.max() >= n_q * n_phi)
            ):
                raise ValueError(
                    f"{kind}_index_mapping must give one grid index in [0, {n_q * n_phi}) for each of the "
                    f"{n_labels} labels of {kind}_roi_map; got {mapping.size} values"
                )
            out[f"{kind}_roi_map"] = roi
            out[f"{kind}_v_list_dim0"] = dim0
            out[f"{kind}_v_list_dim1"] = dim1
            out[f"{kind}_index_mapping"] = mapping
            out[f"{kind}_num_pts"] = np.asarray([n_q, n_phi], dtype=np.int64)
        out["beam_center_x"] = _scalar(_float("beam_center_x_px", self.beam_center_x_px))
        out["beam_center_y"] = _scalar(_float("beam_center_y_px", self.beam_center_y_px))
        out["detector_distance"] = _scalar(_float("detector_distance_m", self.detector_distance_m))
        out["pixel_size"] = _scalar(_float("pixel_size_m", self.pixel_size_m))
        out["map_names"] = np.asarray([s.encode() for s in self.map_names])
        out["map_units"] = np.asarray([s.encode() for s in self.map_units])
        return out


@dataclass(frozen=True, eq=False)
class MultitauFields:
    """``/xpcs/multitau``: ``g2`` and ``g2_err`` (n_delay, K dynamic labels), ``delay_list``
    (n_delay,) in frames of the correlated series; ``unnormalized_G2`` and ``g2_static``
    (n_delay, K static labels; written as ``normalized_g2_static``) are optional."""

    g2: Any
    g2_err: Any
    delay_list: Any
    stride_frame: int = 1
    avg_frame: int = 1
    unnormalized_G2: Any = None
    g2_static: Any = None

    def arrays(self, n_labels: int, n_static: int | None = None) -> dict[str, _Array]:
        g2 = _np(self.g2)
        err = _np(self.g2_err)
        delays = _np(self.delay_list, np.float64).ravel()
        if g2.ndim != 2 or g2.shape != err.shape:
            raise ValueError(
                f"g2 and g2_err must be 2-D (n_delay, n_bins) of one shape, got {g2.shape}, {err.shape}"
            )
        if g2.shape != (delays.size, n_labels):
            raise ValueError(
                f"g2 has shape {g2.shape}; expected (n_delay, n_dynamic_labels) = ({delays.size}, {n_labels})"
            )
        _positive_int("stride_frame", self.stride_frame)
        _positive_int("avg_frame", self.avg_frame)
        out = {"normalized_g2": g2, "normalized_g2_err": err, "delay_list": delays}
        if self.unnormalized_G2 is not None:
            out["unnormalized_G2"] = _np(self.unnormalized_G2)
        if self.g2_static is not None:
            static = _np(self.g2_static)
            expected = (delays.size, static.shape[-1] if n_static is None else n_static)
            if static.shape != expected:
                raise ValueError(
                    f"g2_static has shape {static.shape}; expected (n_delay, n_static_labels) = {expected}"
                )
            out["normalized_g2_static"] = static
        return out


@dataclass(frozen=True, eq=False)
class ReductionsFields:
    """``/xpcs/temporal_mean`` and ``/xpcs/spatial_mean``: mean image (H, W), I(q) per static
    label (K_static,), I(q) per segment (n_segments, K_static), intensity vs time (2, N)."""

    scattering_2d: Any
    scattering_1d: Any
    scattering_1d_segments: Any
    intensity_vs_time: Any

    @classmethod
    def from_reductions(cls, reductions: Reductions) -> ReductionsFields:
        """From :class:`xpcs_kernels.reductions.Reductions` (run with the static labels)."""
        return cls(reductions.mean_image, reductions.iq, reductions.iq_segments, reductions.intensity_vs_time)

    def arrays(self, shape: tuple[int, ...], n_static: int) -> dict[str, _Array]:
        image = _np(self.scattering_2d)
        if image.shape != shape:
            raise ValueError(f"scattering_2d has shape {image.shape}, the detector {shape}")
        iq = _np(self.scattering_1d).ravel()
        segments = _np(self.scattering_1d_segments)
        if iq.size != n_static or segments.ndim != 2 or segments.shape[1] != n_static:
            raise ValueError(
                f"scattering_1d ({iq.size},) and scattering_1d_segments {segments.shape} must have one value "
                f"per static label ({n_static})"
            )
        intensity = _np(self.intensity_vs_time)
        if intensity.ndim != 2 or intensity.shape[0] != 2:
            raise ValueError(f"intensity_vs_time must have shape (2, N), got {intensity.shape}")
        return {
            "scattering_2d": image.reshape(1, *shape),
            "scattering_1d": iq.reshape(1, -1),
            "scattering_1d_segments": segments,
            "intensity_vs_time": intensity,
        }


@dataclass(frozen=True, eq=False)
class TwotimeFields:
    """``/xpcs/twotime``: one full (N, N) map per processed dynamic label (``processed_bins``,
    1-based), ``g2`` (n_delay, n_bins) from the diagonals, ``g2_segments`` (n_delay_segment,
    n_segments, n_bins) from the diagonals of each segment's block (the viewer needs both);
    ``delay_list`` optional."""

    maps: Sequence[Any]
    processed_bins: Any
    g2: Any
    g2_segments: Any
    delay_list: Any = None
    stride_frame: int = 1
    avg_frame: int = 1

    def arrays(self, n_labels: int) -> tuple[dict[str, _Array], list[_Array]]:
        bins = _np(self.processed_bins, np.int64).ravel()
        if bins.size != len(self.maps) or bins.size == 0:
            raise ValueError(
                f"two-time: {len(self.maps)} maps but {bins.size} processed_bins; give one label per map"
            )
        if bins.min() < 1 or bins.max() > n_labels:
            raise ValueError(
                f"two-time processed_bins must be dynamic labels in 1..{n_labels}, got {bins.tolist()}"
            )
        maps = []
        for label, c2 in zip(bins.tolist(), self.maps, strict=True):
            matrix = _np(c2)
            if matrix.ndim != 2 or matrix.shape[0] != matrix.shape[1]:
                raise ValueError(f"two-time map of label {label} must be square, got shape {matrix.shape}")
            maps.append(np.triu(matrix))
        out = {"normalized_g2": _np(self.g2), "processed_bins": bins}
        if out["normalized_g2"].ndim != 2 or out["normalized_g2"].shape[1] != bins.size:
            raise ValueError(f"two-time g2 must be (n_delay, {bins.size}), got {out['normalized_g2'].shape}")
        segments = _np(self.g2_segments)
        if segments.ndim != 3 or segments.shape[2] != bins.size:
            raise ValueError(
                f"two-time g2_segments must be (n_delay, n_segments, {bins.size}), got {segments.shape}"
            )
        out["normalized_g2_segments"] = segments
        if self.delay_list is not None:
            out["delay_list"] = _np(self.delay_list, np.float64).ravel()
        _positive_int("two-time stride_frame", self.stride_frame)
        _positive_int("two-time avg_frame", self.avg_frame)
        return out, maps


@dataclass(frozen=True)
class InstrumentFields:
    """``/entry/instrument`` and ``/entry/start_time`` (times in s, lengths in m, energy in keV).
    ``start_time`` defaults to now (UTC, ISO 8601); ``metadata`` (strings and numbers) goes to
    the attributes of ``/entry/instrument/bluesky/metadata``."""

    frame_time_s: float
    energy_kev: float
    x_pixel_size_m: float
    y_pixel_size_m: float
    distance_m: float
    beam_center_x_px: float
    beam_center_y_px: float
    count_time_s: float | None = None
    start_time: str | None = None
    metadata: Mapping[str, str | int | float] = field(default_factory=dict)


def _positive_int(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


# ------------------------------------------------------------------------- writing
def _dataset(group: Any, name: str, value: Any, units: str | None = None) -> Any:
    options: dict[str, Any] = {}
    if np.size(value) > _COMPRESS_ABOVE:
        options = {"compression": "gzip", "compression_opts": 1}
    dataset = _ADAPTER.write_dataset(group, name, value, **options)
    if units is not None:
        dataset.attrs["units"] = units
    return dataset


def _nx_group(parent: Any, path: str, nx_class: str | None = None) -> Any:
    group = parent.require_group(path)
    if nx_class is not None:
        group.attrs["NX_class"] = nx_class
    return group


def _qmap_hash(arrays: Mapping[str, _Array]) -> str:
    digest = hashlib.sha256()
    for name in sorted(arrays):
        digest.update(name.encode())
        digest.update(np.ascontiguousarray(arrays[name]).tobytes())
    return digest.hexdigest()


def _write_instrument(h5: Any, instrument: InstrumentFields) -> None:
    entry = _nx_group(h5, "entry", "NXentry")
    start = instrument.start_time or datetime.now(UTC).isoformat(timespec="seconds")
    entry.create_dataset("start_time", data=start.encode())
    inst = _nx_group(entry, "instrument", "NXinstrument")
    detector = _nx_group(inst, "detector_1", "NXdetector")
    frame_time = _float("frame_time_s", instrument.frame_time_s)
    if frame_time <= 0:
        raise ValueError(f"frame_time_s must be positive, got {frame_time}")
    count_time = (
        frame_time if instrument.count_time_s is None else _float("count_time_s", instrument.count_time_s)
    )
    for name, value, units in (
        ("frame_time", frame_time, "s"),
        ("count_time", count_time, "s"),
        ("x_pixel_size", instrument.x_pixel_size_m, "m"),
        ("y_pixel_size", instrument.y_pixel_size_m, "m"),
        ("distance", instrument.distance_m, "m"),
        ("beam_center_x", instrument.beam_center_x_px, "pixel"),
        ("beam_center_y", instrument.beam_center_y_px, "pixel"),
    ):
        _dataset(detector, name, np.float64(_float(name, value)), units)
    beam = _nx_group(inst, "incident_beam", "NXbeam")
    _dataset(beam, "incident_energy", np.float64(_float("energy_kev", instrument.energy_kev)), "keV")
    metadata = _nx_group(inst, "bluesky/metadata")
    metadata.attrs["software"] = f"xpcs-suite {__version__}"
    for key, item in instrument.metadata.items():
        if not isinstance(item, str | int | float) or isinstance(item, bool):
            raise TypeError(f"metadata {key!r} must be a string or a number, got {type(item).__name__}")
        metadata.attrs[key] = item


def _write_body(
    h5: Any,
    qmap: QMapFields,
    reductions: ReductionsFields,
    instrument: InstrumentFields,
    multitau: MultitauFields | None,
    twotime: TwotimeFields | None,
) -> None:
    qmap_arrays = qmap.arrays()
    shape = qmap_arrays["mask"].shape
    n_dynamic = int(qmap_arrays["dynamic_index_mapping"].size)
    n_static = int(qmap_arrays["static_index_mapping"].size)
    # Validate every section before writing anything.
    reduction_arrays = reductions.arrays(shape, n_static)
    multitau_arrays = multitau.arrays(n_dynamic, n_static) if multitau is not None else None
    twotime_parts = twotime.arrays(n_dynamic) if twotime is not None else None

    _write_instrument(h5, instrument)
    xpcs = _nx_group(h5, "xpcs")
    group = _nx_group(xpcs, "qmap")
    for name, value in qmap_arrays.items():
        _dataset(group, name, value)
    group.attrs["hash"] = _qmap_hash(qmap_arrays)
    temporal = _nx_group(xpcs, "temporal_mean")
    for name in ("scattering_2d", "scattering_1d", "scattering_1d_segments"):
        _dataset(temporal, name, reduction_arrays[name])
    _dataset(_nx_group(xpcs, "spatial_mean"), "intensity_vs_time", reduction_arrays["intensity_vs_time"])
    if multitau is not None and multitau_arrays is not None:
        group = _nx_group(xpcs, "multitau")
        for name, value in multitau_arrays.items():
            _dataset(group, name, value)
        config = _nx_group(group, "config")
        _dataset(config, "stride_frame", np.int64(multitau.stride_frame))
        _dataset(config, "avg_frame", np.int64(multitau.avg_frame))
    if twotime is not None and twotime_parts is not None:
        arrays, maps = twotime_parts
        group = _nx_group(xpcs, "twotime")
        for name, value in arrays.items():
            _dataset(group, name, value)
        corr = _nx_group(group, "correlation_map")
        for index, matrix in enumerate(maps, start=1):
            _dataset(corr, f"c2_{index:05d}", matrix).attrs["populated_elements"] = "upper_half"
        config = _nx_group(group, "config")
        _dataset(config, "stride_frame", np.int64(twotime.stride_frame))
        _dataset(config, "avg_frame", np.int64(twotime.avg_frame))


def write_result(
    path: str | os.PathLike[str],
    *,
    qmap: QMapFields,
    reductions: ReductionsFields,
    instrument: InstrumentFields,
    multitau: MultitauFields | None = None,
    twotime: TwotimeFields | None = None,
    overwrite: bool = False,
) -> Path:
    """Write an APS 8-ID-I result file atomically and return its path.

    At least one of ``multitau`` and ``twotime`` is needed (the viewer requires one).
    Shapes are checked against each other before anything is written (``ValueError``
    naming the mismatch); an existing ``path`` is refused unless ``overwrite``.
    """
    import h5py

    if multitau is None and twotime is None:
        raise ValueError("a result file needs multitau or twotime results (or both)")
    with atomic_output(path, overwrite=overwrite) as temporary:
        with h5py.File(temporary, "w") as h5:
            _write_body(h5, qmap, reductions, instrument, multitau, twotime)
        return Path(path)


def write_fit(
    path: str | os.PathLike[str],
    group_name: str,
    datasets: Mapping[str, Any],
    attrs: Mapping[str, str | int | float] | None = None,
    *,
    overwrite: bool = False,
) -> str:
    """Add the fit group ``/xpcs/fit/<group_name>`` to an existing result file, atomically
    (copy, write, replace), leaving everything else as it was. Returns the group's path.

    ``datasets`` are arrays (any backend), ``attrs`` strings and numbers. The plots and
    ``xpcs fit`` use these names (K = dynamic labels, P = parameters, M = curve points):

    - attrs ``model`` (single, stretched, double), ``param_names`` (comma-separated);
    - ``params``, ``params_err`` (K, P); ``q`` (K,) in 1/Å;
    - ``fit_delay_s`` (M,) and ``fit_g2`` (M, K): the fitted curves, as drawn;
    - ``tau_s``, ``tau_err_s`` (K,): relaxation times;
    - attrs ``diffusion_a2_per_s`` and ``diffusion_err_a2_per_s``: the τ(q) = 1/(D q²) fit.

    An existing group of that name is refused unless ``overwrite``.
    """
    import h5py

    if not isinstance(group_name, str) or not _FIT_NAME.match(group_name):
        raise ValueError(f"fit group name must be letters, digits, '_', '-' or '.', got {group_name!r}")
    with open_hdf5(path, what="result file") as h5:
        exists = f"{FIT_ROOT}/{group_name}" in h5
        if "/xpcs" not in h5:
            raise InputError(f"{os.fspath(path)!r} is not an XPCS result file (no /xpcs group)")
    if exists and not overwrite:
        raise FileExistsError(
            f"{os.fspath(path)!r} already has the fit {group_name!r}; pass overwrite=True (--overwrite) "
            "to replace it"
        )
    arrays = {name: _np(value) for name, value in datasets.items()}
    with atomic_update(path) as temporary, h5py.File(temporary, "r+") as h5:
        fits = _nx_group(h5, FIT_ROOT, "NXcollection")
        if group_name in fits:
            del fits[group_name]
        group = _nx_group(fits, group_name, "NXprocess")
        group.attrs["software"] = f"xpcs-suite {__version__}"
        for key, item in (attrs or {}).items():
            group.attrs[key] = item
        for name, array in arrays.items():
            _dataset(group, name, array)
    return f"{FIT_ROOT}/{group_name}"


# ------------------------------------------------------------------------- reading
@dataclass(frozen=True)
class FitGroup:
    """One ``/xpcs/fit/<name>`` group: its datasets (NumPy) and attributes."""

    name: str
    datasets: dict[str, _Array]
    attrs: dict[str, Any]


@dataclass(frozen=True, eq=False)
class ResultFile:
    """What the plots and ``xpcs fit`` need from a result file (NumPy arrays).

    ``g2``/``g2_err`` are (n_delay, K) or None (a two-time-only file); ``delays_s`` are the
    delays in seconds (``delay_list · frame_time · stride · avg``); ``q_dynamic`` and
    ``phi_dynamic`` (K,) the centres of the dynamic labels' grid bins; ``saxs_1d``, ``q_static``
    and ``phi_static`` (K_static,); ``twotime_maps`` maps a dynamic label to its full (N, N)
    matrix; ``g2_static`` (n_delay, K_static) is None in files without it (the APS pipeline's).
    """

    path: Path
    frame_time_s: float
    count_time_s: float | None
    energy_kev: float | None
    start_time: str | None
    mask: _Array
    dynamic_roi_map: _Array
    static_roi_map: _Array
    q_dynamic: _Array
    phi_dynamic: _Array
    q_static: _Array
    phi_static: _Array
    dynamic_num_pts: tuple[int, int]
    static_num_pts: tuple[int, int]
    map_names: tuple[str, ...]
    map_units: tuple[str, ...]
    saxs_2d: _Array
    saxs_1d: _Array
    saxs_1d_segments: _Array | None
    intensity_vs_time: _Array | None
    g2: _Array | None
    g2_err: _Array | None
    delay_list: _Array | None
    delays_s: _Array | None
    twotime_maps: dict[int, _Array]
    twotime_g2: _Array | None
    twotime_frame_time_s: float | None
    fits: dict[str, FitGroup]
    g2_static: _Array | None = None

    @property
    def n_dynamic(self) -> int:
        return int(self.q_dynamic.size)


def _text(value: Any) -> str:
    if isinstance(value, bytes | np.bytes_):
        return value.decode("utf-8", "replace")
    if isinstance(value, np.ndarray):
        return _text(value.ravel()[0]) if value.size else ""
    return str(value)


class _Reader:
    def __init__(self, h5: Any, path: Path) -> None:
        self.h5 = h5
        self.path = path

    def required(self, key: str) -> _Array:
        if key not in self.h5:
            raise InputError(
                f"{str(self.path)!r} is not an APS 8-ID-I result file: it lacks {key}; pass a file written "
                "by `xpcs analyze` or the APS pipeline"
            )
        return self.read(key)

    def optional(self, key: str) -> _Array | None:
        if key not in self.h5:
            return None
        try:
            return self.read(key)
        except KeyError:  # e.g. an external link (APS unnormalized_G2) whose file is gone
            return None

    def read(self, key: str) -> _Array:
        return np.asarray(self.h5[key][()])

    def number(self, key: str, required: bool = True) -> float | None:
        value = self.required(key) if required else self.optional(key)
        return None if value is None else float(np.asarray(value, dtype=np.float64).ravel()[0])


def _bin_values(
    mapping: _Array, num_pts: tuple[int, int], dim0: _Array, dim1: _Array
) -> tuple[_Array, _Array]:
    n_phi = max(1, num_pts[1])
    i_q, i_phi = mapping // n_phi, mapping % n_phi
    q = dim0[i_q] if dim0.size else np.full(mapping.shape, np.nan)
    phi = dim1[i_phi] if dim1.size else np.full(mapping.shape, np.nan)
    return np.asarray(q, dtype=np.float64), np.asarray(phi, dtype=np.float64)


def read_result(path: str | os.PathLike[str], *, load_twotime: bool = True) -> ResultFile:
    """Read a result file written by :func:`write_result` or by the APS pipeline.

    Raises :class:`~xpcs_suite.inputs.InputError` (one line) for a missing, non-HDF5 or
    truncated file, or one that lacks the q-map or SAXS datasets. Two-time maps are read
    only with ``load_twotime`` (they are N² per label).
    """
    source = Path(path)
    with open_hdf5(source, what="result file") as h5:
        r = _Reader(h5, source)
        q = "/xpcs/qmap"
        num_pts = {
            kind: tuple(int(n) for n in r.required(f"{q}/{kind}_num_pts").ravel()[:2])
            for kind in ("dynamic", "static")
        }
        values = {}
        for kind in ("dynamic", "static"):
            values[kind] = _bin_values(
                r.required(f"{q}/{kind}_index_mapping").astype(np.int64).ravel(),
                num_pts[kind],  # type: ignore[arg-type]
                r.required(f"{q}/{kind}_v_list_dim0").astype(np.float64).ravel(),
                r.required(f"{q}/{kind}_v_list_dim1").astype(np.float64).ravel(),
            )
        names = r.optional(f"{q}/map_names")
        units = r.optional(f"{q}/map_units")
        saxs_2d = r.required("/xpcs/temporal_mean/scattering_2d")
        if saxs_2d.ndim == 3:
            saxs_2d = saxs_2d[0]
        frame_time = r.number("/entry/instrument/detector_1/frame_time")
        assert frame_time is not None
        g2 = r.optional("/xpcs/multitau/normalized_g2")
        delay_list = r.optional("/xpcs/multitau/delay_list")
        delays_s = None
        if delay_list is not None:
            delay_list = delay_list.astype(np.float64).ravel()
            stride = r.number("/xpcs/multitau/config/stride_frame", required=False) or 1.0
            avg = r.number("/xpcs/multitau/config/avg_frame", required=False) or 1.0
            delays_s = delay_list * frame_time * stride * avg
        twotime_maps: dict[int, _Array] = {}
        twotime_t0 = None
        corr = "/xpcs/twotime/correlation_map"
        if corr in h5:
            stride = r.number("/xpcs/twotime/config/stride_frame", required=False) or 1.0
            avg = r.number("/xpcs/twotime/config/avg_frame", required=False) or 1.0
            twotime_t0 = frame_time * stride * avg
        if load_twotime and corr in h5:
            names_c2 = sorted(h5[corr])
            bins = r.optional("/xpcs/twotime/processed_bins")
            labels = (
                [int(b) for b in bins.ravel()]
                if bins is not None and bins.size == len(names_c2)
                else [int(n.split("_")[-1]) for n in names_c2]
            )
            for label, name in zip(labels, names_c2, strict=True):
                half = r.read(f"{corr}/{name}")
                full = half + half.T
                full[np.diag_indices(full.shape[0])] /= 2
                twotime_maps[label] = full
        fits: dict[str, FitGroup] = {}
        if FIT_ROOT in h5:
            for name, group in h5[FIT_ROOT].items():
                datasets = {
                    key: np.asarray(value[()]) for key, value in group.items() if hasattr(value, "dtype")
                }
                attrs = {
                    key: _text(v) if isinstance(v, bytes | np.bytes_) else v for key, v in group.attrs.items()
                }
                fits[name] = FitGroup(name, datasets, attrs)
        saxs_1d = r.required("/xpcs/temporal_mean/scattering_1d").ravel()
        count_time = r.number("/entry/instrument/detector_1/count_time", required=False)
        energy = r.number("/entry/instrument/incident_beam/incident_energy", required=False)
        start = r.optional("/entry/start_time")
        err = r.optional("/xpcs/multitau/normalized_g2_err")
        return ResultFile(
            path=source,
            frame_time_s=frame_time,
            count_time_s=count_time,
            energy_kev=energy,
            start_time=None if start is None else _text(start[()] if start.ndim == 0 else start),
            mask=r.required(f"{q}/mask"),
            dynamic_roi_map=r.required(f"{q}/dynamic_roi_map"),
            static_roi_map=r.required(f"{q}/static_roi_map"),
            q_dynamic=values["dynamic"][0],
            phi_dynamic=values["dynamic"][1],
            q_static=values["static"][0],
            phi_static=values["static"][1],
            dynamic_num_pts=num_pts["dynamic"],  # type: ignore[arg-type]
            static_num_pts=num_pts["static"],  # type: ignore[arg-type]
            map_names=tuple(_text(n) for n in names) if names is not None else ("q", "phi"),
            map_units=tuple(_text(u) for u in units) if units is not None else ("", ""),
            saxs_2d=saxs_2d,
            saxs_1d=saxs_1d,
            saxs_1d_segments=r.optional("/xpcs/temporal_mean/scattering_1d_segments"),
            intensity_vs_time=r.optional("/xpcs/spatial_mean/intensity_vs_time"),
            g2=g2,
            g2_err=err,
            delay_list=delay_list,
            delays_s=delays_s,
            twotime_maps=twotime_maps,
            twotime_g2=r.optional("/xpcs/twotime/normalized_g2"),
            twotime_frame_time_s=twotime_t0,
            fits=fits,
            g2_static=r.optional("/xpcs/multitau/normalized_g2_static"),
        )
