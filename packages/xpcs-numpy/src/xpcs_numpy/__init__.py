"""The NumPy backend of xpcs: eager, deterministic, CPU only."""

from xpcs_numpy.__about__ import __version__
from xpcs_numpy.backend import NumPyBackend

__all__ = ["NumPyBackend", "__version__"]
