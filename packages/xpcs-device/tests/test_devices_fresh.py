"""Device settings in fresh interpreters, where JAX has not started yet: the settings
really decide where work runs."""

from __future__ import annotations

import importlib.util

import pytest

pytestmark = pytest.mark.skipif(importlib.util.find_spec("jax") is None, reason="needs JAX")


def test_selected_device_is_where_results_live(run_python):
    result = run_python(
        """
        import numpy as np
        from xpcs_device import DeviceManager, get_backend, place_on_device
        b = get_backend()
        manager = DeviceManager()
        default = b.sum(place_on_device(np.ones(4)) * 2.0)
        manager.select_device(1)
        chosen = b.sum(place_on_device(np.ones(4)) * 2.0)
        emit({"devices": [[d.kind, d.id] for d in manager.devices()],
              "default": sorted(d.id for d in default.devices()),
              "chosen": sorted(d.id for d in chosen.devices()),
              "value": float(chosen)})
        """,
        env={"XLA_FLAGS": "--xla_force_host_platform_device_count=2"},
    )
    assert result == {"devices": [["cpu", 0], ["cpu", 1]], "default": [0], "chosen": [1], "value": 8.0}


def test_use_gpu_false_starts_jax_on_the_cpu_only(run_python):
    result = run_python(
        """
        import jax
        from xpcs_device import get_backend, get_device
        from xpcs_jax import jax_configuration
        get_backend()
        state = jax_configuration()
        emit({"applied": state.cpu_only_applied, "platforms": jax.config.jax_platforms,
              "device": get_device().kind})
        """,
        env={"XPCS_USE_GPU": "false"},
    )
    assert result == {"applied": True, "platforms": "cpu", "device": "cpu"}


def test_gpu_required_on_a_machine_without_one(run_python):
    result = run_python(
        """
        import warnings
        import numpy as np
        from xpcs_device import DeviceManager, DeviceUnavailableError, place_on_device
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            placed = [place_on_device(np.ones(2)) for _ in range(3)]
        fallback = {"warnings": [str(w.message) for w in caught],
                    "device": sorted(d.platform for d in placed[0].devices())}
        DeviceManager().configure(gpu_fallback=False)
        try:
            place_on_device(np.ones(2))
            strict = "no error"
        except DeviceUnavailableError as exc:
            strict = str(exc)
        emit({"fallback": fallback, "strict": strict})
        """,
        env={"XPCS_USE_GPU": "1"},
    )
    assert result["fallback"]["device"] == ["cpu"]
    assert len(result["fallback"]["warnings"]) == 1
    assert "running on the CPU instead" in result["fallback"]["warnings"][0]
    assert "XPCS_GPU_FALLBACK" in result["strict"]


def test_memory_fraction_set_through_configure_before_jax_starts(run_python):
    result = run_python(
        """
        import os
        from xpcs_device import DeviceManager, get_backend
        DeviceManager().configure(gpu_memory_fraction=0.3)
        get_backend()  # selecting JAX now applies the fraction before its client starts
        from xpcs_jax import jax_configuration
        emit({"env": os.environ.get("XLA_PYTHON_CLIENT_MEM_FRACTION"),
              "applied": jax_configuration().memory_fraction_applied})
        """
    )
    assert result == {"env": "0.3", "applied": True}
