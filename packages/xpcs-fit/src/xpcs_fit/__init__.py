"""g2 models and fits of xpcs (least squares on both backends, NumPyro NUTS on JAX)."""

from xpcs_fit.__about__ import __version__

__all__ = ["__version__"]
