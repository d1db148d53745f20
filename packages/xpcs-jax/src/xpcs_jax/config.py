"""One-time JAX configuration, applied when the JAX backend is first constructed.

Nothing here runs at import: importing :mod:`xpcs_jax` leaves JAX (and every other
JAX user in the process) untouched until a :class:`~xpcs_jax.JAXBackend` is made.
"""

from __future__ import annotations

import os
import sys
import threading
import warnings
from dataclasses import dataclass
from typing import Any

__all__ = ["JaxConfiguration", "configure_jax", "jax_configuration", "jax_client_started"]

_MEM_FRACTION_ENV = "XLA_PYTHON_CLIENT_MEM_FRACTION"


@dataclass(frozen=True)
class JaxConfiguration:
    """What :func:`configure_jax` applied, and how many times it ran (at most once)."""

    enable_x64: bool
    memory_fraction: float | None
    memory_fraction_applied: bool
    times_configured: int


_lock = threading.Lock()
_state: JaxConfiguration | None = None
_times_configured = 0


def jax_client_started() -> bool:
    """True once JAX has created its XLA client (settings read at start-up are then fixed)."""
    if "jax" not in sys.modules:
        return False
    try:
        from jax._src import xla_bridge
    except ImportError:  # pragma: no cover - layout of a future JAX
        return True
    started = getattr(xla_bridge, "backends_are_initialized", None)
    return bool(started()) if started is not None else True


def _validate_fraction(memory_fraction: Any) -> float | None:
    if memory_fraction is None:
        return None
    value = float(memory_fraction)
    if not 0.0 < value <= 1.0:
        raise ValueError(f"memory_fraction must be in (0, 1], got {memory_fraction!r}")
    return value


def configure_jax(memory_fraction: float | None = None) -> JaxConfiguration:
    """Enable float64 and set the GPU memory fraction, once per process, thread-safely.

    ``memory_fraction`` (0 < f <= 1) becomes ``XLA_PYTHON_CLIENT_MEM_FRACTION``. It only
    takes effect before JAX creates its client; if the client already exists, or JAX was
    configured earlier with another value, a ``RuntimeWarning`` says the setting came too late.
    """
    global _state, _times_configured
    fraction = _validate_fraction(memory_fraction)
    with _lock:
        if _state is not None:
            if fraction is not None and fraction != _state.memory_fraction:
                warnings.warn(
                    f"JAX was already configured (GPU memory fraction {_state.memory_fraction}); "
                    f"the fraction {fraction} takes effect only in a new process",
                    RuntimeWarning,
                    stacklevel=2,
                )
            return _state
        applied = False
        if fraction is not None:
            if jax_client_started():
                warnings.warn(
                    "XPCS_GPU_MEMORY_FRACTION came too late: JAX already created its client in "
                    "this process, so the GPU memory fraction is unchanged. Set it before the "
                    "first JAX computation (or select the backend first).",
                    RuntimeWarning,
                    stacklevel=2,
                )
            else:
                os.environ[_MEM_FRACTION_ENV] = repr(fraction)
                applied = True
        import jax

        jax_config: Any = jax.config  # its update() is untyped
        jax_config.update("jax_enable_x64", True)
        _times_configured += 1
        _state = JaxConfiguration(
            enable_x64=True,
            memory_fraction=fraction,
            memory_fraction_applied=applied,
            times_configured=_times_configured,
        )
        return _state


def jax_configuration() -> JaxConfiguration | None:
    """The configuration applied in this process, or None if JAX was not configured yet."""
    return _state
