"""Backend and device selection for xpcs: ``get_backend``, ``set_backend``,
``reset_backend``, ``use_backend`` and the ``XPCS_*`` environment."""

from xpcs_device.__about__ import __version__
from xpcs_device.arrays import MixedBackendError, array_backend_name, common_backend_name
from xpcs_device.devices import (
    DeviceInfo,
    DeviceManager,
    DeviceUnavailableError,
    get_device,
    list_devices,
    place_on_device,
)
from xpcs_device.environment import ConfigurationError, DeviceSettings, read_settings
from xpcs_device.registry import BackendNotAvailableError, available_backends, create_backend
from xpcs_device.selection import (
    BackendSelection,
    backend_selection,
    get_backend,
    reset_backend,
    set_backend,
    use_backend,
)

__all__ = [
    "BackendNotAvailableError",
    "BackendSelection",
    "ConfigurationError",
    "DeviceInfo",
    "DeviceManager",
    "DeviceSettings",
    "DeviceUnavailableError",
    "MixedBackendError",
    "__version__",
    "array_backend_name",
    "available_backends",
    "backend_selection",
    "common_backend_name",
    "create_backend",
    "get_backend",
    "get_device",
    "list_devices",
    "place_on_device",
    "read_settings",
    "reset_backend",
    "set_backend",
    "use_backend",
]
