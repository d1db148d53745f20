import numpy as np
import pytest

from xpcs_adapters import HDF5Adapter
from xpcs_device import array_backend_name

DTYPES = ["float32", "float64", "uint8", "uint16", "int64", "bool", "complex128"]


def _sample(dtype: str) -> np.ndarray:
    values = np.arange(-6, 6).reshape(3, 4)
    if dtype == "bool":
        return values % 3 == 0
    if dtype.startswith("complex"):
        return (values + 0.5j * values[::-1]).astype(dtype)
    if dtype.startswith("uint"):
        values = values + 250 if dtype == "uint8" else values + 65530
    if dtype.startswith("float"):
        return (values / 3).astype(dtype)
    return values.astype(dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_round_trip_keeps_values_and_dtype_exactly(backend, h5py, tmp_path, dtype):
    data = _sample(dtype)
    assert data.dtype == np.dtype(dtype)
    source = backend.asarray(data)  # a JAX array under the JAX backend
    adapter = HDF5Adapter()
    out = adapter.to_hdf5(source)
    assert type(out) is np.ndarray

    path = tmp_path / f"{dtype}.h5"
    with h5py.File(path, "w") as f:
        f.create_dataset("frames", data=out)
        adapter.write_dataset(f, "entry/compressed", source, compression="gzip", chunks=True)

    with h5py.File(path, "r") as f:
        for name in ("frames", "entry/compressed"):
            raw = f[name][()]
            assert type(raw) is np.ndarray
            assert raw.dtype == data.dtype
            np.testing.assert_array_equal(raw, data)
        assert f["entry/compressed"].compression == "gzip"
        back = adapter.from_hdf5(f["frames"][()])
        read = adapter.read_dataset(f, "entry/compressed")

    for restored in (back, read):
        assert array_backend_name(restored) == backend.name
        restored_np = np.asarray(restored)
        assert restored_np.dtype == data.dtype
        np.testing.assert_array_equal(restored_np, data)


def test_from_hdf5_under_numpy_returns_the_data_itself(h5py):
    from xpcs_device import use_backend

    data = np.arange(5.0)
    with use_backend("numpy"):
        assert HDF5Adapter().from_hdf5(data) is data


def test_scalar_datasets_and_slices(backend, h5py, tmp_path):
    adapter = HDF5Adapter()
    with h5py.File(tmp_path / "s.h5", "w") as f:
        adapter.write_dataset(f, "exposure", backend.asarray(np.float32(0.25)))
        adapter.write_dataset(f, "frames", backend.reshape(backend.arange(24.0), (2, 3, 4)))
        exposure = adapter.read_dataset(f, "exposure")
        assert exposure.shape == ()
        assert np.asarray(exposure).dtype == np.float32
        first = adapter.from_hdf5(f["frames"][0])
        np.testing.assert_array_equal(np.asarray(first), np.arange(12.0).reshape(3, 4))


def test_read_dataset_refuses_a_group(h5py, tmp_path):
    with h5py.File(tmp_path / "g.h5", "w") as f:
        f.create_group("entry")
        with pytest.raises(TypeError, match="not a dataset"):
            HDF5Adapter().read_dataset(f, "entry")


@pytest.mark.parametrize(
    ("bad", "advice"),
    [
        (np.array(["a", "bc"]), "np.char.encode"),
        (np.array(["2024-01-01"], dtype="datetime64[D]"), "int64"),
        (np.array([3], dtype="timedelta64[s]"), "int64"),
        (np.zeros(2, dtype=[("name", "U4"), ("x", "f8")]), "field 'name'"),
        (np.array([1, "x"], dtype=object), "object dtype"),
    ],
    ids=["unicode", "datetime", "timedelta", "unicode-field", "object"],
)
def test_what_h5py_cannot_store_faithfully_is_refused(bad, advice):
    with pytest.raises(TypeError, match=r"to_hdf5|ensure_numpy") as info:
        HDF5Adapter().to_hdf5(bad)
    assert advice in str(info.value)


def test_bfloat16_is_refused_not_stored_as_bytes(jax_backend, h5py, tmp_path):
    import jax.numpy as jnp

    x = jnp.ones(3, dtype=jnp.bfloat16)
    with pytest.raises(TypeError, match=r"bfloat16.*astype\(np\.float32\)"):
        HDF5Adapter().to_hdf5(x)
    # what the adapter prevents: h5py silently writes opaque bytes, another dtype on reading
    with h5py.File(tmp_path / "bf16.h5", "w") as f:
        f["x"] = np.asarray(x)
        assert f["x"].dtype != np.asarray(x).dtype


def test_storable_odd_dtypes_pass(h5py, tmp_path):
    adapter = HDF5Adapter()
    for data in (
        np.array([b"ab", b"c"]),
        np.zeros(2, dtype=[("a", "<f8"), ("b", "<i4")]),
        np.ones(2, dtype=np.float16),
    ):
        with h5py.File(tmp_path / "odd.h5", "w") as f:
            adapter.write_dataset(f, "x", data)
            assert f["x"].dtype == data.dtype
            np.testing.assert_array_equal(f["x"][()], data)


def test_h5py_receives_numpy_from_jax(jax_backend, h5py, tmp_path):
    # h5py itself accepts JAX arrays through __array__ in current versions; what the
    # adapter guarantees is that h5py is handed a plain ndarray, the same memory, no copy.
    x = jax_backend.linspace(0.0, 1.0, 100)
    out = HDF5Adapter().to_hdf5(x)
    assert type(out) is np.ndarray
    assert out.ctypes.data == x.unsafe_buffer_pointer()
