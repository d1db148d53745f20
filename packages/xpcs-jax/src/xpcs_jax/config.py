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

__all__ = [
    "CACHE_DIR_ENV",
    "JaxConfiguration",
    "compilation_cache_dir",
    "configure_jax",
    "jax_configuration",
    "jax_client_started",
]

_MEM_FRACTION_ENV = "XLA_PYTHON_CLIENT_MEM_FRACTION"
CACHE_DIR_ENV = "XPCS_JAX_CACHE_DIR"
_CACHE_OFF = frozenset({"off", "0", "false", "no", "none"})


@dataclass(frozen=True)
class JaxConfiguration:
    """What :func:`configure_jax` applied, and how many times it ran (at most once)."""

    enable_x64: bool
    memory_fraction: float | None
    memory_fraction_applied: bool
    cpu_only: bool
    cpu_only_applied: bool
    times_configured: int
    compilation_cache_dir: str | None = None
    """Directory of JAX's persistent compilation cache, or None where it is off."""


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


def compilation_cache_dir() -> str | None:
    """Where compiled XLA programs are kept between processes, from ``XPCS_JAX_CACHE_DIR``.

    Unset or empty: ``$XDG_CACHE_HOME/xpcs/jax``, else ``~/.cache/xpcs/jax``; ``off``, ``0``,
    ``false`` (any case) turn the cache off (None).
    """
    value = os.environ.get(CACHE_DIR_ENV, "").strip()
    if value.lower() in _CACHE_OFF:
        return None
    if value:
        return os.path.abspath(os.path.expanduser(value))
    base = os.environ.get("XDG_CACHE_HOME", "").strip() or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "xpcs", "jax")


def _enable_compilation_cache(jax_config: Any) -> str | None:
    """Turn on JAX's persistent compilation cache for every program, however small or quick."""
    directory = compilation_cache_dir()
    if directory is None:
        return None
    try:
        os.makedirs(directory, exist_ok=True)
    except OSError as exc:
        warnings.warn(
            f"JAX's compilation cache is off: cannot create {directory!r} ({exc.strerror or exc}); "
            f"set {CACHE_DIR_ENV} to a writable directory, or to 'off'",
            RuntimeWarning,
            stacklevel=3,
        )
        return None
    jax_config.update("jax_compilation_cache_dir", directory)
    # xpcs kernels compile in well under JAX's default thresholds (1 s); cache them all.
    jax_config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    jax_config.update("jax_persistent_cache_min_entry_size_bytes", 0)
    return directory


def configure_jax(memory_fraction: float | None = None, cpu_only: bool = False) -> JaxConfiguration:
    """Enable float64, set the GPU memory fraction and the platforms, once per process,
    thread-safely.

    ``memory_fraction`` (0 < f <= 1) becomes ``XLA_PYTHON_CLIENT_MEM_FRACTION``; ``cpu_only``
    restricts JAX to the CPU platform (no GPU client, no GPU memory taken). Both only take
    effect before JAX creates its client; if the client already exists, or JAX was configured
    earlier with other values, a ``RuntimeWarning`` says the setting came too late.

    JAX's persistent compilation cache is turned on in :func:`compilation_cache_dir`
    (``XPCS_JAX_CACHE_DIR``), so a new process loads compiled kernels instead of compiling.
    """
    global _state, _times_configured
    fraction = _validate_fraction(memory_fraction)
    with _lock:
        if _state is not None:
            if fraction is not None and fraction != _state.memory_fraction:
                _too_late(
                    f"the GPU memory fraction {fraction} (JAX was configured with {_state.memory_fraction})"
                )
            if cpu_only and not _state.cpu_only:
                _too_late("the CPU-only setting (JAX was configured with every platform)")
            return _state
        started = jax_client_started()
        applied = False
        if fraction is not None:
            if started:
                _too_late("XPCS_GPU_MEMORY_FRACTION")
            else:
                os.environ[_MEM_FRACTION_ENV] = repr(fraction)
                applied = True
        import jax

        jax_config: Any = jax.config  # its update() is untyped
        jax_config.update("jax_enable_x64", True)
        cpu_applied = False
        if cpu_only:
            if started:
                _too_late("XPCS_USE_GPU=false (CPU only)")
            else:
                jax_config.update("jax_platforms", "cpu")
                cpu_applied = True
        cache_dir = _enable_compilation_cache(jax_config)
        _times_configured += 1
        _state = JaxConfiguration(
            enable_x64=True,
            memory_fraction=fraction,
            memory_fraction_applied=applied,
            cpu_only=cpu_only,
            cpu_only_applied=cpu_applied,
            times_configured=_times_configured,
            compilation_cache_dir=cache_dir,
        )
        return _state


def _too_late(setting: str) -> None:
    warnings.warn(
        f"{setting} came too late: JAX already started in this process, so it has no effect. "
        "Set it before the first JAX computation (select the backend first), or restart.",
        RuntimeWarning,
        stacklevel=3,
    )


def jax_configuration() -> JaxConfiguration | None:
    """The configuration applied in this process, or None if JAX was not configured yet."""
    return _state
