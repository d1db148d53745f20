"""Numerical kernels of xpcs: Q-maps, partitions, reductions, multi-tau and two-time correlation, pure
functions of arrays on the active backend (``xpcs_device.get_backend()``), with inputs
placed on the selected device."""

from xpcs_kernels.__about__ import __version__
from xpcs_kernels.binning import Accumulate, BinMap, bin_means, bin_sums, int32_sum_exact, prepare_bins
from xpcs_kernels.constants import HC_KEV_ANGSTROM, wavelength_angstrom, wavenumber_per_angstrom
from xpcs_kernels.frames import (
    DEFAULT_CHUNK_BYTES,
    FrameSourceError,
    auto_chunk_frames,
    frame_count,
    iter_frame_chunks,
)
from xpcs_kernels.geometry import (
    Orientation,
    PoniFormatError,
    ReflectionGeometry,
    TiltedGeometry,
    TransmissionGeometry,
    energy_kev_from_wavelength_m,
    wavelength_m_from_energy_kev,
)
from xpcs_kernels.multitau import (
    MultitauResult,
    MultitauState,
    delay_list,
    finalize_multitau,
    init_multitau,
    multitau,
    update_multitau,
)
from xpcs_kernels.multitau_sparse import multitau_events
from xpcs_kernels.partitions import (
    Partition,
    PartitionSpec,
    bin_centers,
    bin_edges,
    check_nested,
    fold_phi,
    label_values,
    make_partition,
    make_partitions,
    partition_labels,
    relabel_occupied,
)
from xpcs_kernels.qmap import (
    COMMON_QUANTITIES,
    REFLECTION_QUANTITIES,
    Geometry,
    QMap,
    compute_qmap,
    qmap_cache_clear,
    qmap_cache_info,
)
from xpcs_kernels.reductions import (
    FrameValueError,
    Reductions,
    ReductionState,
    finalize_reductions,
    init_reductions,
    reduce_frames,
    segment_bounds,
    update_reductions,
)
from xpcs_kernels.twotime import (
    TwoTime,
    TwoTimeMemoryError,
    available_memory_bytes,
    twotime,
    twotime_memory_bytes,
)
from xpcs_kernels.twotime_sparse import twotime_events

__all__ = [
    "__version__",
    # constants
    "HC_KEV_ANGSTROM",
    "wavelength_angstrom",
    "wavenumber_per_angstrom",
    # geometry and Q-maps
    "Geometry",
    "Orientation",
    "PoniFormatError",
    "ReflectionGeometry",
    "TiltedGeometry",
    "TransmissionGeometry",
    "energy_kev_from_wavelength_m",
    "wavelength_m_from_energy_kev",
    "COMMON_QUANTITIES",
    "REFLECTION_QUANTITIES",
    "QMap",
    "compute_qmap",
    "qmap_cache_clear",
    "qmap_cache_info",
    # partitions
    "Partition",
    "PartitionSpec",
    "bin_centers",
    "bin_edges",
    "check_nested",
    "fold_phi",
    "label_values",
    "make_partition",
    "make_partitions",
    "partition_labels",
    "relabel_occupied",
    # per-bin sums
    "Accumulate",
    "BinMap",
    "bin_means",
    "bin_sums",
    "prepare_bins",
    "int32_sum_exact",
    # frames and reductions
    "DEFAULT_CHUNK_BYTES",
    "FrameSourceError",
    "auto_chunk_frames",
    "frame_count",
    "iter_frame_chunks",
    "FrameValueError",
    "Reductions",
    "ReductionState",
    "finalize_reductions",
    "init_reductions",
    "reduce_frames",
    "segment_bounds",
    "update_reductions",
    # multi-tau
    "MultitauResult",
    "MultitauState",
    "delay_list",
    "finalize_multitau",
    "init_multitau",
    "multitau",
    "multitau_events",
    "update_multitau",
    # two-time
    "TwoTime",
    "TwoTimeMemoryError",
    "available_memory_bytes",
    "twotime",
    "twotime_events",
    "twotime_memory_bytes",
]
