"""Where work runs: the devices the active backend sees, the one selected, and placement.

:class:`DeviceManager` is a thread-safe singleton configured from ``XPCS_USE_GPU``,
``XPCS_GPU_FALLBACK`` and ``XPCS_GPU_MEMORY_FRACTION`` (parsed by
:mod:`xpcs_device.environment`). Kernels and fits call :func:`place_on_device` on their
inputs, so these settings decide where the computation happens: under JAX, operations run
on the device their inputs live on.
"""

from __future__ import annotations

import sys
import threading
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any, ClassVar

import numpy as np

from xpcs_device.environment import DeviceSettings, read_settings
from xpcs_device.selection import get_backend
from xpcs_numpy.pytree import tree_map

__all__ = [
    "DeviceInfo",
    "DeviceManager",
    "DeviceUnavailableError",
    "get_device",
    "list_devices",
    "place_on_device",
]

DeviceSource = Callable[[], Sequence[Any]]
"""Returns the JAX device objects to choose from (tests substitute simulated lists)."""


class DeviceUnavailableError(RuntimeError):
    """The requested device does not exist here (and falling back was not allowed)."""


@dataclass(frozen=True)
class DeviceInfo:
    """One device as the active backend sees it."""

    index: int
    """Position in :meth:`DeviceManager.devices`, as accepted by ``select_device``."""
    kind: str
    """``"cpu"``, ``"gpu"`` (CUDA or ROCm) or another platform name (``"tpu"``)."""
    id: int
    """The platform's own device id."""
    name: str
    """Model name where the platform reports one (``"NVIDIA H100 80GB HBM3"``), else the kind."""
    memory_bytes: int | None
    """Memory the platform makes available to the backend, None where not reported (CPU)."""
    backend: str
    """The backend the device belongs to (``"numpy"`` or ``"jax"``)."""


def _jax_device_source() -> Sequence[Any]:
    jax = sys.modules["jax"]  # the JAX backend imported it
    default = list(jax.devices())
    try:
        cpus = list(jax.devices("cpu"))
    except RuntimeError:  # CPU platform disabled by JAX_PLATFORMS
        cpus = []
    return default + [d for d in cpus if d not in default]


def _describe(index: int, device: Any) -> DeviceInfo:
    platform = str(getattr(device, "platform", "cpu"))
    memory: int | None = None
    stats_fn = getattr(device, "memory_stats", None)
    if stats_fn is not None:
        try:
            stats = stats_fn()
        except Exception:  # some platforms raise instead of returning None
            stats = None
        if stats and "bytes_limit" in stats:
            memory = int(stats["bytes_limit"])
    return DeviceInfo(
        index=index,
        kind=platform,
        id=int(getattr(device, "id", index)),
        name=str(getattr(device, "device_kind", platform)),
        memory_bytes=memory,
        backend="jax",
    )


_NUMPY_CPU = DeviceInfo(index=0, kind="cpu", id=0, name="cpu", memory_bytes=None, backend="numpy")


class DeviceManager:
    """Thread-safe singleton choosing the device of the active backend.

    ``DeviceManager()`` always returns the same object (double-checked locking);
    :meth:`configure` changes the settings under the lock; :meth:`reset` (for tests)
    forgets the instance, optionally simulating a device list.

    Selection: an index given to :meth:`select_device` wins; otherwise ``XPCS_USE_GPU``:
    true requires a GPU (the first, or falls back to the CPU with one warning when
    ``XPCS_GPU_FALLBACK`` allows, else :class:`DeviceUnavailableError`), false keeps work on
    the CPU, unset takes the backend's default device. The NumPy backend has one device,
    the CPU.
    """

    _instance: ClassVar[DeviceManager | None] = None
    _next_source: ClassVar[DeviceSource | None] = None
    _class_lock: ClassVar[threading.Lock] = threading.Lock()

    _lock: threading.RLock
    _settings: DeviceSettings
    _index: int | None
    _source: DeviceSource | None
    _warned: set[str]

    def __new__(cls) -> DeviceManager:
        instance = cls._instance
        if instance is None:
            with cls._class_lock:
                instance = cls._instance
                if instance is None:
                    instance = super().__new__(cls)
                    instance._setup(read_settings(), cls._next_source)
                    cls._instance = instance
        return instance

    def _setup(self, settings: DeviceSettings, source: DeviceSource | None) -> None:
        self._lock = threading.RLock()
        self._settings = settings
        self._index = None
        self._source = source
        self._warned = set()

    @classmethod
    def reset(cls, *, device_source: DeviceSource | None = None) -> None:
        """Forget the singleton; the next ``DeviceManager()`` re-reads the environment.

        ``device_source`` replaces JAX's device list for the instances made after this call
        until the next reset (tests simulate GPUs with it).
        """
        with cls._class_lock:
            cls._instance = None
            cls._next_source = device_source

    # ----------------------------------------------------------------- settings
    @property
    def settings(self) -> DeviceSettings:
        """The settings in force (from the environment, then :meth:`configure`)."""
        return self._settings

    def configure(
        self,
        *,
        use_gpu: bool | None = None,
        gpu_fallback: bool | None = None,
        gpu_memory_fraction: float | None = None,
    ) -> DeviceSettings:
        """Change settings for this process; None leaves a setting as it is.

        The GPU memory fraction is read by JAX at start-up: it is passed on if the JAX
        backend is selected after this call, and otherwise JAX warns that it came too late.
        """
        if gpu_memory_fraction is not None and not 0.0 < gpu_memory_fraction <= 1.0:
            raise ValueError(f"gpu_memory_fraction must be in (0, 1], got {gpu_memory_fraction!r}")
        with self._lock:
            changes: dict[str, Any] = {}
            if use_gpu is not None:
                changes["use_gpu"] = use_gpu
            if gpu_fallback is not None:
                changes["gpu_fallback"] = gpu_fallback
            if gpu_memory_fraction is not None:
                changes["gpu_memory_fraction"] = gpu_memory_fraction
            self._settings = replace(self._settings, **changes)
            self._warned.clear()
            xpcs_jax = sys.modules.get("xpcs_jax")
            if xpcs_jax is not None and (gpu_memory_fraction is not None or use_gpu is False):
                # JAX reads these at start-up: applied if it has not started, else a warning.
                xpcs_jax.configure_jax(self._settings.gpu_memory_fraction, cpu_only=use_gpu is False)
            return self._settings

    # ------------------------------------------------------------------ devices
    def _jax_devices(self) -> list[Any]:
        source = self._source or _jax_device_source
        return list(source())

    def devices(self) -> list[DeviceInfo]:
        """Every device of the active backend (JAX: its default platform first, then CPUs)."""
        if get_backend().name != "jax":
            return [_NUMPY_CPU]
        return [_describe(i, d) for i, d in enumerate(self._jax_devices())]

    def select_device(self, index: int | None) -> DeviceInfo:
        """Use ``devices()[index]`` from now on (None: back to the settings' choice)."""
        with self._lock:
            if index is not None:
                available = self.devices()
                if not 0 <= index < len(available):
                    listing = ", ".join(f"{d.index}: {d.kind}:{d.id} ({d.name})" for d in available)
                    raise DeviceUnavailableError(f"no device {index}; available devices are {listing}")
            self._index = index
            return self.get_device()

    def _warn_once(self, key: str, message: str) -> None:
        if key not in self._warned:
            self._warned.add(key)
            warnings.warn(message, RuntimeWarning, stacklevel=2)

    def _choose(self) -> tuple[int, Any | None]:
        """Index into the device list and the backend's device object (None for NumPy)."""
        settings = self._settings
        if get_backend().name != "jax":
            if settings.use_gpu:
                self._gpu_missing("the NumPy backend runs on the CPU; select JAX (XPCS_USE_JAX=1)")
            return 0, None
        raw = self._jax_devices()
        if self._index is not None:
            return self._index, raw[self._index]
        kinds = [str(getattr(d, "platform", "cpu")) for d in raw]
        if settings.use_gpu:
            if "gpu" in kinds:
                i = kinds.index("gpu")
                return i, raw[i]
            self._gpu_missing(f"JAX sees no GPU (devices: {', '.join(sorted(set(kinds)))})")
        if settings.use_gpu is not None and "cpu" in kinds:
            i = kinds.index("cpu")
            return i, raw[i]
        return 0, raw[0]

    def _gpu_missing(self, why: str) -> None:
        if not self._settings.gpu_fallback:
            raise DeviceUnavailableError(
                f"XPCS_USE_GPU=true but {why}. Install a GPU build of JAX on a machine with a GPU, "
                "or allow the CPU with XPCS_GPU_FALLBACK=true (the default) or XPCS_USE_GPU=false."
            )
        self._warn_once("gpu-missing", f"XPCS_USE_GPU=true but {why}; running on the CPU instead")

    def get_device(self) -> DeviceInfo:
        """The device work is placed on."""
        with self._lock:
            index, _ = self._choose()
            return self.devices()[index]

    def place_on_device(self, x: Any) -> Any:
        """``x`` (an array or a pytree of arrays) on the selected device.

        JAX: ``jax.device_put`` to the device (a no-op for arrays already there). NumPy:
        NumPy arrays are returned unchanged, other array-likes converted with ``np.asarray``.
        """
        with self._lock:
            _, device = self._choose()
        if device is None:
            return x if isinstance(x, np.ndarray) else tree_map(np.asarray, x)
        return sys.modules["jax"].device_put(x, device)


def list_devices() -> list[DeviceInfo]:
    """Every device of the active backend (see :meth:`DeviceManager.devices`)."""
    return DeviceManager().devices()


def get_device() -> DeviceInfo:
    """The device work is placed on (see :meth:`DeviceManager.get_device`)."""
    return DeviceManager().get_device()


def place_on_device(x: Any) -> Any:
    """``x`` on the selected device of the active backend (see :meth:`DeviceManager.place_on_device`)."""
    return DeviceManager().place_on_device(x)
