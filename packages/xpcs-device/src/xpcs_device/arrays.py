"""Which backend an array belongs to, decided without importing JAX."""

from __future__ import annotations

import sys
from typing import Any

import numpy as np

__all__ = ["MixedBackendError", "array_backend_name", "common_backend_name"]


class MixedBackendError(TypeError):
    """Arrays of different backends were combined; convert them explicitly first."""


def array_backend_name(x: Any) -> str | None:
    """``"jax"`` for JAX arrays and tracers, ``"numpy"`` for NumPy arrays and scalars,
    None for anything else (Python numbers, lists). Never imports JAX."""
    # A JAX array can only exist once JAX is imported, so sys.modules decides cheaply.
    jax = sys.modules.get("jax")
    if jax is not None and isinstance(x, jax.Array):
        return "jax"
    if isinstance(x, np.ndarray | np.generic):
        return "numpy"
    return None


def common_backend_name(*arrays: Any) -> str | None:
    """The one backend all array arguments belong to (None if none is an array).

    Raises :class:`MixedBackendError` when NumPy and JAX arrays are mixed, naming the
    arguments, since that usually means a missed conversion.
    """
    seen: dict[str, int] = {}
    for position, value in enumerate(arrays):
        name = array_backend_name(value)
        if name is not None:
            seen.setdefault(name, position)
    if len(seen) > 1:
        where = ", ".join(f"argument {pos} is a {name} array" for name, pos in seen.items())
        raise MixedBackendError(
            f"arrays of different backends were mixed ({where}); convert explicitly with "
            "get_backend().asarray(x) or xpcs_adapters.ensure_numpy(x)"
        )
    return next(iter(seen), None)
