"""Numerical kernels of xpcs (Q-maps, partitions, reductions, correlators), pure
functions of arrays on the active backend."""

from xpcs_kernels.__about__ import __version__
from xpcs_kernels.constants import HC_KEV_ANGSTROM, wavelength_angstrom, wavenumber_per_angstrom

__all__ = ["HC_KEV_ANGSTROM", "__version__", "wavelength_angstrom", "wavenumber_per_angstrom"]
