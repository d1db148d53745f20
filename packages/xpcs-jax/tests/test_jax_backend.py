import numpy as np
import pytest

jax = pytest.importorskip("jax")

from xpcs_jax import JAXBackend, configure_jax  # noqa: E402


def test_import_does_not_import_or_configure_jax(run_fresh):
    result = run_fresh(
        """
        import json, sys
        import xpcs_jax
        before = "jax" in sys.modules
        b = xpcs_jax.JAXBackend()
        import jax
        print(json.dumps({"before": before, "x64": bool(jax.config.jax_enable_x64),
                          "dtype": str(b.zeros(2).dtype)}))
        """
    )
    assert result == {"before": False, "x64": True, "dtype": "float64"}


def test_configured_once_under_32_threads_and_memory_fraction_applied(run_fresh):
    result = run_fresh(
        """
        import json, os, threading
        from xpcs_jax import JAXBackend, jax_configuration
        barrier = threading.Barrier(32)
        def make():
            barrier.wait()
            JAXBackend(memory_fraction=0.25)
        threads = [threading.Thread(target=make) for _ in range(32)]
        [t.start() for t in threads]
        [t.join() for t in threads]
        state = jax_configuration()
        print(json.dumps({"times": state.times_configured, "applied": state.memory_fraction_applied,
                          "env": os.environ.get("XLA_PYTHON_CLIENT_MEM_FRACTION")}))
        """
    )
    assert result == {"times": 1, "applied": True, "env": "0.25"}


def test_memory_fraction_after_the_client_started_warns(run_fresh):
    result = run_fresh(
        """
        import json, warnings
        import jax.numpy as jnp
        jnp.zeros(1)  # starts the XLA client
        from xpcs_jax import JAXBackend, jax_configuration
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            JAXBackend(memory_fraction=0.5)
        print(json.dumps({"warned": any("too late" in str(w.message) for w in caught),
                          "applied": jax_configuration().memory_fraction_applied}))
        """
    )
    assert result == {"warned": True, "applied": False}


def test_invalid_memory_fraction_is_refused():
    for bad in (0.0, 1.5, float("nan")):
        with pytest.raises(ValueError, match=r"\(0, 1\]"):
            configure_jax(bad)


def test_jit_compiles_and_catches_python_control_flow_on_traced_values():
    b = JAXBackend()

    def branchy(x):
        if x.sum() > 0:  # Python control flow on a traced value
            return x
        return -x

    assert hasattr(b.jit(lambda x: x), "lower")
    with pytest.raises(jax.errors.TracerBoolConversionError):
        b.jit(branchy)(np.ones(3))
    fixed = b.jit(lambda x: b.cond(b.sum(x) > 0, lambda v: v, lambda v: -v, x))
    np.testing.assert_array_equal(np.asarray(fixed(-np.ones(3))), np.ones(3))


def test_bincount_never_counts_negative_labels_in_bin_zero():
    # jnp.bincount clips negatives into bin 0; the backend must not.
    b = JAXBackend()
    counts = np.asarray(b.bincount(np.array([-1, -1, 0, 2]), length=3))
    np.testing.assert_array_equal(counts, [1, 0, 1])


def test_cpu_arrays_convert_to_numpy_without_copy():
    b = JAXBackend()
    x = b.arange(1024.0)
    out = b.to_numpy(x)
    assert isinstance(out, np.ndarray)
    assert out.ctypes.data == x.unsafe_buffer_pointer()
