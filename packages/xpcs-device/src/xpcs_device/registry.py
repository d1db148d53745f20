"""Backends registered under the ``xpcs.backends`` entry-point group.

A third-party package plugs in by declaring, in its ``pyproject.toml``::

    [project.entry-points."xpcs.backends"]
    mybackend = "my_package:MyBackend"

where ``MyBackend()`` implements :class:`~xpcs_protocol.BackendProtocol`. A class whose
constructor accepts ``memory_fraction`` receives ``XPCS_GPU_MEMORY_FRACTION``, and one
that accepts ``cpu_only`` receives True under ``XPCS_USE_GPU=false``.
"""

from __future__ import annotations

import inspect
from importlib.metadata import EntryPoint, entry_points

from xpcs_protocol import ENTRY_POINT_GROUP, BackendProtocol

__all__ = ["BackendNotAvailableError", "available_backends", "create_backend"]

_INSTALL_HINTS = {
    "numpy": "pip install xpcs-numpy",
    "jax": "pip install 'xpcs-device[jax]'",
}


class BackendNotAvailableError(ImportError):
    """The requested backend is not installed or not registered."""


def available_backends() -> dict[str, EntryPoint]:
    """Registered backend names and their entry points (nothing is imported)."""
    return {ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP)}


def create_backend(
    name: str, *, memory_fraction: float | None = None, cpu_only: bool = False
) -> BackendProtocol:
    """A new instance of the backend registered as ``name``.

    The start-up options are passed to a constructor that accepts them by name
    (``memory_fraction``: XPCS_GPU_MEMORY_FRACTION; ``cpu_only``: XPCS_USE_GPU=false).
    """
    registered = available_backends()
    if name not in registered:
        hint = _INSTALL_HINTS.get(name, f"install the package that provides the {name!r} backend")
        known = ", ".join(sorted(registered)) or "none"
        raise BackendNotAvailableError(
            f"backend {name!r} is not installed (registered backends: {known}); {hint}"
        )
    try:
        factory = registered[name].load()
    except ImportError as exc:
        hint = _INSTALL_HINTS.get(name, f"reinstall the package that provides the {name!r} backend")
        raise BackendNotAvailableError(
            f"backend {name!r} is registered but cannot be imported ({exc}); {hint}"
        ) from exc
    try:
        accepted = set(inspect.signature(factory).parameters)
    except (TypeError, ValueError):
        accepted = set()
    options = {"memory_fraction": memory_fraction, "cpu_only": cpu_only}
    try:
        backend = factory(**{k: v for k, v in options.items() if k in accepted})
    except ImportError as exc:  # e.g. xpcs-jax installed but jax itself missing or broken
        hint = _INSTALL_HINTS.get(name, f"install what the {name!r} backend needs")
        raise BackendNotAvailableError(f"backend {name!r} cannot start ({exc}); {hint}") from exc
    if not isinstance(backend, BackendProtocol):
        raise TypeError(f"the {name!r} backend ({registered[name].value}) does not implement BackendProtocol")
    return backend
