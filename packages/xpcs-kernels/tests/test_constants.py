import math

import pytest

from xpcs_kernels import HC_KEV_ANGSTROM, wavelength_angstrom, wavenumber_per_angstrom

# Exact SI definitions (2019): h, c, e. h*c/e is in eV*m; 1e10 A/m and 1e-3 keV/eV.
H, C, E = 6.62607015e-34, 299792458.0, 1.602176634e-19


def test_hc_from_exact_si_constants():
    assert math.isclose(HC_KEV_ANGSTROM, H * C / E * 1e10 * 1e-3, rel_tol=1e-15)


def test_wavelength_and_wavenumber():
    assert math.isclose(wavelength_angstrom(12.398419843320026), 1.0, rel_tol=1e-15)
    assert math.isclose(wavenumber_per_angstrom(10.0), 2 * math.pi * 10.0 / HC_KEV_ANGSTROM, rel_tol=1e-15)


@pytest.mark.parametrize("bad", [0.0, -8.0, float("nan"), float("inf")])
def test_energy_must_be_positive_and_finite(bad):
    with pytest.raises(ValueError, match="positive number of keV"):
        wavelength_angstrom(bad)
