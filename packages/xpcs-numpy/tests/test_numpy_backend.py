import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from xpcs_numpy import NumPyBackend

B = NumPyBackend()


def test_jit_returns_the_function_unchanged():
    def f(x):
        return x

    assert B.jit(f) is f
    assert B.jit(f, static_argnums=(0,)) is f


def test_grad_error_says_how_to_get_gradients():
    with pytest.raises(NotImplementedError, match=r"XPCS_USE_JAX=1.*supports_grad|set_backend\('jax'\)"):
        B.grad(lambda x: x)


def test_inputs_are_never_modified():
    x = np.arange(5.0)
    B.index_add(x, np.array([0, 0]), 1.0)
    B.index_set(x, np.array([1]), -1.0)
    np.testing.assert_array_equal(x, np.arange(5.0))


def test_random_key_validation():
    with pytest.raises(ValueError, match="one random key"):
        B.random_normal(B.random_split(B.random_key(0), 3), (2,))


def test_vmap_size_zero_is_refused_clearly():
    with pytest.raises(ValueError, match="size 0"):
        B.vmap(lambda x: x)(np.zeros((0, 3)))


def test_scan_of_length_zero_gives_empty_outputs():
    carry, ys = B.scan(lambda c, x: (c + x.sum(), {"y": x * 2}), 1.0, np.zeros((0, 3)))
    assert float(carry) == 1.0
    assert ys["y"].shape == (0, 3)


def test_never_imports_jax():
    code = textwrap.dedent(
        """
        import json, sys
        import numpy as np
        from xpcs_numpy import NumPyBackend
        b = NumPyBackend()
        b.scan(lambda c, x: (c + x, x), 0.0, np.arange(3.0))
        b.vmap(lambda x: x * 2)(np.ones((2, 2)))
        b.random_normal(b.random_key(0), (3,))
        print(json.dumps("jax" in sys.modules))
        """
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout) is False
