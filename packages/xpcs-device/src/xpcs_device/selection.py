"""Which backend is active: a lazily chosen, thread-safe, resettable singleton.

Order of precedence: :func:`use_backend` (scoped to the current thread or asyncio
task), then :func:`set_backend`, then ``XPCS_USE_JAX``, then auto (JAX if it can be
used, otherwise NumPy, without error). The environment is read at the first
:func:`get_backend` after start or after :func:`reset_backend`.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Literal

from xpcs_device.environment import DeviceSettings
from xpcs_device.registry import available_backends, create_backend
from xpcs_protocol import BackendProtocol

__all__ = [
    "BackendSelection",
    "backend_selection",
    "get_backend",
    "reset_backend",
    "set_backend",
    "use_backend",
]

Source = Literal["use_backend", "set_backend", "environment", "auto"]


@dataclass(frozen=True)
class BackendSelection:
    """The active backend, how it was chosen (``source``) and why, in words (``reason``)."""

    backend: BackendProtocol
    source: Source
    reason: str

    @property
    def name(self) -> str:
        return self.backend.name


_lock = threading.RLock()
_instances: dict[str, BackendProtocol] = {}
_selected: BackendSelection | None = None
_scoped: ContextVar[BackendSelection | None] = ContextVar("xpcs_backend_scope", default=None)


def _settings() -> DeviceSettings:
    # The DeviceManager holds the settings (environment, then configure()); it imports this
    # module, hence the late import.
    from xpcs_device.devices import DeviceManager

    return DeviceManager().settings


def _instance(name: str, settings: DeviceSettings) -> BackendProtocol:
    # Callers hold _lock: one instance per name, constructed (and JAX configured) once.
    backend = _instances.get(name)
    if backend is None:
        backend = create_backend(
            name, memory_fraction=settings.gpu_memory_fraction, cpu_only=settings.use_gpu is False
        )
        _instances[name] = backend
    return backend


def _resolve(backend: str | BackendProtocol, settings: DeviceSettings) -> BackendProtocol:
    if isinstance(backend, str):
        return _instance(backend.strip().lower(), settings)
    # A class has every member name too, so the runtime protocol check alone would accept it.
    if isinstance(backend, type) or not isinstance(backend, BackendProtocol):
        what = f"the class {backend.__name__}" if isinstance(backend, type) else type(backend).__name__
        raise TypeError(
            f"expected a backend name or a BackendProtocol instance, got {what}; "
            "pass a registered name such as 'numpy' or an instance such as NumPyBackend()"
        )
    # Instances are used as given and never registered: a scoped instance must not leak
    # into other threads' selections or make its name selectable.
    return backend


def _select_from_environment() -> BackendSelection:
    settings = _settings()
    if settings.use_jax is not None:
        name = "jax" if settings.use_jax else "numpy"
        return BackendSelection(_instance(name, settings), "environment", f"XPCS_USE_JAX selects {name}")
    if "jax" in available_backends():
        try:
            return BackendSelection(_instance("jax", settings), "auto", "JAX is installed and usable")
        except Exception as exc:  # auto mode never fails because of JAX
            why = f"JAX is not usable ({type(exc).__name__}: {exc}), using NumPy"
    else:
        why = "the JAX backend (xpcs-jax) is not installed, using NumPy"
    return BackendSelection(_instance("numpy", settings), "auto", why)


def backend_selection() -> BackendSelection:
    """The active backend with the source and reason of its selection."""
    global _selected
    scoped = _scoped.get()
    if scoped is not None:
        return scoped
    selected = _selected
    if selected is not None:
        return selected
    with _lock:
        if _selected is None:
            _selected = _select_from_environment()
        return _selected


def get_backend() -> BackendProtocol:
    """The active backend (a cached singleton; see the module docstring for the order)."""
    return backend_selection().backend


def set_backend(backend: str | BackendProtocol) -> BackendProtocol:
    """Select ``backend`` (a registered name or an instance) for the whole process."""
    global _selected
    with _lock:
        instance = _resolve(backend, _settings())
        label = backend if isinstance(backend, str) else type(backend).__name__
        _selected = BackendSelection(instance, "set_backend", f"set_backend({label!r})")
        return instance


def reset_backend() -> None:
    """Forget the selection, the backend instances and the device settings; the next call
    reads the environment and selects again."""
    global _selected
    from xpcs_device.devices import DeviceManager

    with _lock:
        _selected = None
        _instances.clear()
        DeviceManager.reset()


@contextmanager
def use_backend(backend: str | BackendProtocol) -> Iterator[BackendProtocol]:
    """Use ``backend`` inside the ``with`` block, for this thread or asyncio task only."""
    with _lock:
        instance = _resolve(backend, _settings())
    label = backend if isinstance(backend, str) else type(backend).__name__
    token = _scoped.set(BackendSelection(instance, "use_backend", f"use_backend({label!r})"))
    try:
        yield instance
    finally:
        _scoped.reset(token)
