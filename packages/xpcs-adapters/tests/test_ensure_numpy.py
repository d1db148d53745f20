import numpy as np
import pytest

from xpcs_adapters import ensure_numpy


def test_numpy_arrays_pass_through_without_copy():
    x = np.arange(6.0).reshape(2, 3)
    assert ensure_numpy(x) is x
    view = x[:, 1]  # non-contiguous views too: no copy, no change
    assert ensure_numpy(view) is view
    masked = np.ma.masked_array([1.0, 2.0], mask=[False, True])  # subclasses are kept as they are
    assert ensure_numpy(masked) is masked


def test_sequences_scalars_and_array_protocol_objects_convert():
    class Wrapped:
        def __array__(self, dtype=None, copy=None):
            return np.arange(3, dtype=dtype)

    nested = ensure_numpy([[1, 2], [3, 4]])
    assert type(nested) is np.ndarray
    np.testing.assert_array_equal(nested, [[1, 2], [3, 4]])
    np.testing.assert_array_equal(ensure_numpy(Wrapped()), [0, 1, 2])
    np.testing.assert_array_equal(ensure_numpy(((1.5, 2.5),)), [[1.5, 2.5]])
    assert ensure_numpy(2.5).shape == ()
    assert ensure_numpy(np.float32(2.5)).dtype == np.float32


@pytest.mark.parametrize(
    ("bad", "advice"),
    [
        (None, "return None"),
        ("text", "array of numbers"),
        (b"bytes", "np.frombuffer"),
        ({"a": 1}, "mapping.values"),
        ({1, 2}, "sorted list"),
        (frozenset({1}), "sorted list"),
        (np.array([{"a": 1}], dtype=object), "numeric dtype"),
        (np.zeros(2, dtype=[("a", "f8"), ("b", "O")]), "numeric dtype"),
        ([[1, 2], [3]], "equal length"),
        ([1, None], "numeric dtype"),
        (iter([1, 2]), "numeric dtype"),
    ],
    ids=[
        "none",
        "str",
        "bytes",
        "dict",
        "set",
        "frozenset",
        "object-dtype",
        "object-field",
        "ragged",
        "with-none",
        "iterator",
    ],
)
def test_non_arrays_are_refused_with_advice(bad, advice):
    with pytest.raises(TypeError, match="ensure_numpy") as info:
        ensure_numpy(bad)
    assert advice in str(info.value)


def test_cpu_jax_arrays_become_read_only_views_without_copy(jax_backend):
    x = jax_backend.reshape(jax_backend.arange(4096.0), (64, 64))
    out = ensure_numpy(x)
    assert type(out) is np.ndarray
    assert out.ctypes.data == x.unsafe_buffer_pointer()  # the same memory: no copy
    assert not out.flags.writeable
    assert out.dtype == np.float64
    np.testing.assert_array_equal(out, np.arange(4096.0).reshape(64, 64))
    with pytest.raises(ValueError, match="read-only"):
        out[0, 0] = 1.0


def test_jax_tracers_are_refused_with_advice(jax_backend):
    import jax

    def inside(y):
        return jax.numpy.sum(ensure_numpy(y))

    with pytest.raises(TypeError, match=r"inside jax\.jit.*outside the jitted function"):
        jax.jit(inside)(jax_backend.ones(3))
    with pytest.raises(TypeError, match="JAX tracer"):
        jax.grad(inside)(jax_backend.ones(3))


def test_jax_arrays_on_an_accelerator_are_transferred(jax_backend):
    import jax

    accelerators = [d for d in jax.devices() if d.platform != "cpu"]
    if not accelerators:
        pytest.skip("JAX sees no GPU or other accelerator here")
    data = np.arange(1024.0).reshape(32, 32)
    x = jax.device_put(data, accelerators[0])
    out = ensure_numpy(x)
    assert type(out) is np.ndarray
    np.testing.assert_array_equal(out, data)


def test_converting_numpy_data_never_imports_jax(run_python):
    result = run_python(
        """
        import json, sys
        import numpy as np
        from xpcs_adapters import ensure_numpy, HDF5Adapter, MatplotlibAdapter, PyQtGraphAdapter
        from xpcs_device import use_backend
        ensure_numpy(np.ones(3)); ensure_numpy([[1.0, 2.0]]); ensure_numpy(3)
        HDF5Adapter().to_hdf5(np.ones(3)); PyQtGraphAdapter().to_pyqtgraph(np.ones(3))
        MatplotlibAdapter(enable_monitoring=True).to_matplotlib(np.ones(3), [1, 2, 3])
        with use_backend("numpy"):
            back = HDF5Adapter().from_hdf5(np.ones(3))
        loaded = [m for m in ("jax", "jaxlib", "h5py", "pyqtgraph", "matplotlib") if m in sys.modules]
        print(json.dumps({"loaded": loaded, "back": type(back).__name__}))
        """
    )
    assert result == '{"loaded": [], "back": "ndarray"}'


def test_package_imports_without_the_libraries(run_python):
    # As if h5py, pyqtgraph, matplotlib, Qt and JAX were not installed at all.
    result = run_python(
        """
        import json, sys

        class Block:
            blocked = ("h5py", "pyqtgraph", "matplotlib", "PySide6", "PyQt6", "jax", "jaxlib")
            def find_spec(self, name, path=None, target=None):
                if name.partition(".")[0] in self.blocked:
                    raise ModuleNotFoundError(f"No module named {name!r}", name=name)
                return None

        sys.meta_path.insert(0, Block())
        import numpy as np
        import xpcs_adapters
        from xpcs_device import use_backend
        with use_backend("numpy"):
            a = xpcs_adapters.HDF5Adapter(enable_monitoring=True)
            a.from_hdf5(a.to_hdf5(np.ones((2, 3))))
        print(json.dumps(a.get_stats()["conversions"]))
        """
    )
    assert result == "2"
