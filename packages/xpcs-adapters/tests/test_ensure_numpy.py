import importlib.util

import numpy as np
import pytest

from xpcs_adapters import ensure_numpy


def test_numpy_arrays_pass_through_without_copy():
    x = np.arange(6.0).reshape(2, 3)
    assert ensure_numpy(x) is x


def test_sequences_and_array_protocol_objects_convert():
    class Wrapped:
        def __array__(self, dtype=None, copy=None):
            return np.arange(3, dtype=dtype)

    np.testing.assert_array_equal(ensure_numpy([[1, 2], [3, 4]]), [[1, 2], [3, 4]])
    np.testing.assert_array_equal(ensure_numpy(Wrapped()), [0, 1, 2])


@pytest.mark.parametrize(
    "bad",
    [None, "text", {"a": 1}, np.array([{"a": 1}], dtype=object), [[1, 2], [3]]],
    ids=["none", "str", "dict", "object-dtype", "ragged"],
)
def test_non_arrays_are_refused(bad):
    with pytest.raises(TypeError, match="ensure_numpy"):
        ensure_numpy(bad)


@pytest.mark.skipif(importlib.util.find_spec("jax") is None, reason="JAX not installed")
def test_cpu_jax_arrays_become_read_only_views():
    from xpcs_jax import JAXBackend

    x = JAXBackend().arange(4096.0)
    out = ensure_numpy(x)
    assert type(out) is np.ndarray
    assert out.ctypes.data == x.unsafe_buffer_pointer()
    assert not out.flags.writeable
