"""Array-agnostic type aliases used by :class:`~xpcs_protocol.BackendProtocol`.

Pure typing: nothing here imports numpy or jax, so the protocol can be imported in
any environment and checked by mypy against every backend.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypeAlias

__all__ = [
    "Array",
    "ArrayLike",
    "Axis",
    "DTypeLike",
    "Key",
    "PyTree",
    "Shape",
]


Array: TypeAlias = Any
"""A backend array (``numpy.ndarray``, ``jax.Array``, a tracer under ``jit``).

Deliberately ``Any`` to the type checker: NumPy's and JAX's stubs disagree on almost
every operator, so a narrower structural type would only force casts in kernels. The
protocol's static checks still cover member names, parameter names and kinds, static
sizes and the non-array types (tuples, bools, callables).
"""

ArrayLike: TypeAlias = Any
"""Anything a backend accepts as array input: arrays, Python scalars, nested sequences
(``Any`` to the type checker, for the reason given under :data:`Array`)."""

DTypeLike: TypeAlias = Any
"""A dtype or its name (``"float64"``, ``numpy.float32``); ``None`` means the default."""

Shape: TypeAlias = int | Sequence[int]
"""An array shape; an int ``n`` means ``(n,)``."""

Axis: TypeAlias = int | tuple[int, ...] | None
"""One axis, several axes, or ``None`` for all axes."""

Key: TypeAlias = Array
"""An explicit random-number key: produced by ``random_key``, split by ``random_split``."""

PyTree: TypeAlias = Any
"""A nest of tuples, lists and dicts (keys sorted) with arrays or scalars as leaves."""
