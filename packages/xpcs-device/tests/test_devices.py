"""DeviceManager: singleton, settings, GPU selection and fallback, real placement."""

from __future__ import annotations

import importlib.util
import threading
import warnings
from dataclasses import dataclass

import numpy as np
import pytest

from xpcs_device import (
    ConfigurationError,
    DeviceManager,
    DeviceUnavailableError,
    get_device,
    list_devices,
    place_on_device,
    set_backend,
)

JAX = importlib.util.find_spec("jax") is not None
needs_jax = pytest.mark.skipif(not JAX, reason="needs JAX")


@pytest.fixture(autouse=True)
def _fresh_manager():
    DeviceManager.reset()
    yield
    DeviceManager.reset()


@dataclass(frozen=True)
class FakeDevice:
    """What DeviceManager reads of a JAX device, for machines we do not have."""

    platform: str
    id: int
    device_kind: str
    bytes_limit: int | None = None

    def memory_stats(self):
        return None if self.bytes_limit is None else {"bytes_limit": self.bytes_limit, "bytes_in_use": 0}


TWO_GPUS = [
    FakeDevice("gpu", 0, "NVIDIA H100 80GB HBM3", 80 * 2**30),
    FakeDevice("gpu", 1, "NVIDIA H100 80GB HBM3", 80 * 2**30),
    FakeDevice("cpu", 0, "cpu"),
]
CPU_ONLY = [FakeDevice("cpu", 0, "cpu")]


def _simulated(devices, monkeypatch, **env):
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    set_backend("jax")
    DeviceManager.reset(device_source=lambda: devices)
    return DeviceManager()


# ------------------------------------------------------------------------- singleton
def test_one_instance_for_32_racing_threads(monkeypatch):
    calls = []
    original = DeviceManager._setup

    def slow_setup(self, settings, source):
        calls.append(1)
        threading.Event().wait(0.01)  # widen the race window
        original(self, settings, source)

    monkeypatch.setattr(DeviceManager, "_setup", slow_setup)
    DeviceManager._instance = None
    barrier = threading.Barrier(32)
    seen = []

    def build():
        barrier.wait()
        seen.append(id(DeviceManager()))

    threads = [threading.Thread(target=build) for _ in range(32)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(seen)) == 1
    assert len(calls) == 1


def test_reset_gives_a_new_instance_reading_the_environment(monkeypatch):
    first = DeviceManager()
    monkeypatch.setenv("XPCS_USE_GPU", "no")
    DeviceManager.reset()
    second = DeviceManager()
    assert second is not first
    assert second.settings.use_gpu is False
    assert DeviceManager() is second


@pytest.mark.parametrize(
    ("var", "value"),
    [("XPCS_USE_GPU", "sometimes"), ("XPCS_GPU_FALLBACK", "2"), ("XPCS_GPU_MEMORY_FRACTION", "0")],
)
def test_invalid_settings_name_the_variable(monkeypatch, var, value):
    monkeypatch.setenv(var, value)
    DeviceManager.reset()
    with pytest.raises(ConfigurationError, match=var):
        DeviceManager()


def test_configure_validates_and_changes_settings():
    manager = DeviceManager()
    with pytest.raises(ValueError, match=r"\(0, 1\]"):
        manager.configure(gpu_memory_fraction=1.5)
    settings = manager.configure(gpu_fallback=False)
    assert settings.gpu_fallback is False
    assert manager.settings.gpu_fallback is False


# ---------------------------------------------------------------------- NumPy backend
def test_numpy_backend_has_one_cpu_device_and_placement_is_identity():
    set_backend("numpy")
    (device,) = list_devices()
    assert (device.kind, device.backend) == ("cpu", "numpy")
    assert get_device() == device
    x = np.arange(3.0)
    assert place_on_device(x) is x
    placed = place_on_device({"a": [1.0, 2.0], "b": (np.ones(2),)})
    # lists and tuples are pytrees, as for jax.device_put: their leaves become arrays
    assert all(isinstance(leaf, np.ndarray) for leaf in placed["a"])
    assert isinstance(placed["b"][0], np.ndarray)


def test_gpu_requested_under_numpy_falls_back_with_one_warning(monkeypatch):
    monkeypatch.setenv("XPCS_USE_GPU", "1")
    set_backend("numpy")
    DeviceManager.reset()
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        place_on_device(np.ones(2))
        place_on_device(np.ones(2))
        get_device()
    assert len(record) == 1
    assert "XPCS_USE_GPU=true but the NumPy backend runs on the CPU" in str(record[0].message)


def test_gpu_requested_under_numpy_without_fallback_is_an_error(monkeypatch):
    monkeypatch.setenv("XPCS_USE_GPU", "true")
    monkeypatch.setenv("XPCS_GPU_FALLBACK", "false")
    set_backend("numpy")
    DeviceManager.reset()
    with pytest.raises(DeviceUnavailableError, match="XPCS_GPU_FALLBACK"):
        place_on_device(np.ones(2))


# ------------------------------------------------------- JAX with simulated devices
@needs_jax
def test_default_device_is_the_first_gpu_with_its_memory(monkeypatch):
    manager = _simulated(TWO_GPUS, monkeypatch)
    devices = manager.devices()
    assert [(d.index, d.kind, d.id) for d in devices] == [(0, "gpu", 0), (1, "gpu", 1), (2, "cpu", 0)]
    assert devices[0].memory_bytes == 80 * 2**30
    assert devices[2].memory_bytes is None
    assert manager.get_device().name == "NVIDIA H100 80GB HBM3"


@needs_jax
def test_use_gpu_false_keeps_work_on_the_cpu(monkeypatch):
    # Whether JAX's CPU-only start-up flag still applies depends on what ran before in this
    # process (fresh processes: test_devices_fresh.py); the selection must not.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        manager = _simulated(TWO_GPUS, monkeypatch, XPCS_USE_GPU="off")
    assert manager.get_device().kind == "cpu"


@needs_jax
def test_select_device_by_index_and_back(monkeypatch):
    manager = _simulated(TWO_GPUS, monkeypatch)
    assert manager.select_device(1).id == 1
    assert manager.get_device().index == 1
    with pytest.raises(DeviceUnavailableError, match=r"no device 5; available devices are 0: gpu:0"):
        manager.select_device(5)
    assert manager.select_device(None).index == 0


@needs_jax
def test_gpu_required_but_absent_falls_back_once(monkeypatch):
    manager = _simulated(CPU_ONLY, monkeypatch, XPCS_USE_GPU="yes")
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        assert manager.get_device().kind == "cpu"
        assert manager.get_device().kind == "cpu"
    assert [str(w.message) for w in record] == [
        "XPCS_USE_GPU=true but JAX sees no GPU (devices: cpu); running on the CPU instead"
    ]


@needs_jax
def test_gpu_required_but_absent_without_fallback_raises(monkeypatch):
    manager = _simulated(CPU_ONLY, monkeypatch, XPCS_USE_GPU="yes", XPCS_GPU_FALLBACK="no")
    with pytest.raises(DeviceUnavailableError, match="JAX sees no GPU"):
        manager.get_device()


@needs_jax
def test_gpu_required_and_present_is_chosen(monkeypatch):
    manager = _simulated(list(reversed(TWO_GPUS)), monkeypatch, XPCS_USE_GPU="true")
    chosen = manager.get_device()
    assert (chosen.kind, chosen.index) == ("gpu", 1)
