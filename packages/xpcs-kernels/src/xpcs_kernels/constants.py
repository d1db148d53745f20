"""Physical constants and unit conversions shared by the kernels."""

from __future__ import annotations

import math

__all__ = ["HC_KEV_ANGSTROM", "wavelength_angstrom", "wavenumber_per_angstrom"]

HC_KEV_ANGSTROM = 12.398419843320026
"""h·c in keV·Å from the exact SI values of h, c and e (CODATA 2018)."""


def wavelength_angstrom(energy_kev: float) -> float:
    """X-ray wavelength λ in Å for a photon energy in keV."""
    if not math.isfinite(energy_kev) or energy_kev <= 0:
        raise ValueError(f"photon energy must be a positive number of keV, got {energy_kev!r}")
    return HC_KEV_ANGSTROM / energy_kev


def wavenumber_per_angstrom(energy_kev: float) -> float:
    """Wavenumber k0 = 2π/λ in Å⁻¹ for a photon energy in keV."""
    return 2.0 * math.pi / wavelength_angstrom(energy_kev)
