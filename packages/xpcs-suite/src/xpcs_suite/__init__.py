"""xpcs: XPCS analysis from raw frames to fitted physics, on NumPy or JAX.

This umbrella distribution installs every xpcs package and owns the ``xpcs`` command.
"""

from xpcs_suite.__about__ import __version__

__all__ = ["__version__"]
