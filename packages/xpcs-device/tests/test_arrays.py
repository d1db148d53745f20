"""Which backend an array belongs to, and refusing to mix backends silently."""

from __future__ import annotations

import fractions

import numpy as np
import pytest

from xpcs_device import MixedBackendError, array_backend_name, common_backend_name


class NDArraySubclass(np.ndarray):
    pass


# ------------------------------------------------------------------------ array_backend_name
@pytest.mark.parametrize(
    "value",
    [
        np.zeros(3),
        np.arange(4).reshape(2, 2),
        np.array(1.5),  # 0-d array
        np.float64(1.0),
        np.int32(3),
        np.bool_(True),
        np.complex128(1j),
        np.zeros(2).view(NDArraySubclass),
        np.ma.masked_array([1.0, 2.0], mask=[False, True]),
    ],
    ids=lambda v: type(v).__name__,
)
def test_numpy_arrays_and_scalars(value):
    assert array_backend_name(value) == "numpy"


@pytest.mark.parametrize(
    "value",
    [
        1.0,
        2,
        True,
        1j,
        [1.0, 2.0],
        (1, 2),
        None,
        "array",
        b"bytes",
        {"a": 1},
        fractions.Fraction(1, 2),
        np.float64,
    ],
    ids=repr,
)
def test_non_arrays(value):
    assert array_backend_name(value) is None


def test_jax_arrays_and_tracers():
    jax = pytest.importorskip("jax")
    jnp = jax.numpy
    assert array_backend_name(jnp.zeros(3)) == "jax"
    assert array_backend_name(jnp.asarray(1.0)) == "jax"
    assert array_backend_name(jnp.float32(1.0)) == "jax"
    assert array_backend_name(jax.random.PRNGKey(0)) == "jax"

    seen = []

    def record(x):
        seen.append(array_backend_name(x))
        return x * 2

    jax.jit(record)(jnp.ones(2))
    jax.vmap(record)(jnp.ones((3, 2)))
    jax.grad(lambda x: jnp.sum(record(x)))(jnp.ones(2))
    assert seen == ["jax", "jax", "jax"]


def test_jax_objects_that_are_not_arrays():
    """Only arrays and tracers are "jax": a compiled function or a device is not an array."""
    jax = pytest.importorskip("jax")
    compiled = jax.jit(lambda x: x + 1)
    assert array_backend_name(compiled) is None
    assert array_backend_name(jax.devices()[0]) is None
    # e.g. a model function passed along with NumPy data is not "mixing backends"
    assert common_backend_name(compiled, np.zeros(3)) == "numpy"


@pytest.mark.subprocess
def test_array_backend_name_does_not_import_jax(run_python):
    result = run_python(
        """
        import numpy as np

        from xpcs_device import array_backend_name, common_backend_name

        names = [array_backend_name(np.zeros(2)), array_backend_name(1.0), array_backend_name([1])]
        common = common_backend_name(np.zeros(2), np.float64(1.0), 3.0)
        emit({"names": names, "common": common, "jax": "jax" in sys.modules or "jaxlib" in sys.modules})
        """
    )
    assert result == {"names": ["numpy", None, None], "common": "numpy", "jax": False}


# ----------------------------------------------------------------------- common_backend_name
def test_common_backend_of_numpy_arrays():
    assert common_backend_name(np.zeros(2)) == "numpy"
    assert common_backend_name(np.zeros(2), np.ones((2, 2)), np.float64(3.0)) == "numpy"
    # non-arrays in between do not count
    assert common_backend_name(1.0, np.zeros(2), None, [1, 2], "x") == "numpy"


def test_common_backend_without_arrays():
    assert common_backend_name() is None
    assert common_backend_name(1.0, [1, 2], None, (3,)) is None


def test_mixed_backends_name_the_arguments_and_the_fix():
    jax = pytest.importorskip("jax")
    jnp = jax.numpy
    with pytest.raises(MixedBackendError) as info:
        common_backend_name(np.zeros(2), 1.0, jnp.zeros(2), np.ones(2))
    message = str(info.value)
    assert "argument 0" in message
    assert "argument 2" in message
    assert "numpy" in message
    assert "jax" in message
    assert "ensure_numpy" in message
    assert "asarray" in message
    assert isinstance(info.value, TypeError)


def test_mixed_backends_positions_follow_the_first_of_each_backend():
    jax = pytest.importorskip("jax")
    jnp = jax.numpy
    with pytest.raises(MixedBackendError) as info:
        common_backend_name(None, jnp.ones(1), jnp.ones(1), 2.0, np.float64(1.0))
    message = str(info.value)
    assert "argument 1" in message
    assert "argument 4" in message
    assert "argument 0" not in message


def test_all_jax_arrays():
    jax = pytest.importorskip("jax")
    jnp = jax.numpy
    assert common_backend_name(jnp.zeros(2), 1.0, jnp.ones(3)) == "jax"


def test_mixed_backend_error_is_a_type_error():
    assert issubclass(MixedBackendError, TypeError)
