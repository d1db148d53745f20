"""Cross-package: kernels-level code written once runs on the selected backend."""

import importlib.util

import numpy as np
import pytest

from xpcs_adapters import ensure_numpy
from xpcs_device import get_backend, place_on_device, reset_backend, set_backend, use_backend

BACKENDS = ["numpy"] + (["jax"] if importlib.util.find_spec("jax") else [])


@pytest.fixture(autouse=True)
def _reset():
    reset_backend()
    yield
    reset_backend()


def mean_per_label(values, labels, n):
    """A tiny kernel in the style of the real ones: pure, backend from get_backend()."""
    b = get_backend()
    sums = b.bincount(labels, values, length=n)
    counts = b.bincount(labels, length=n)
    return b.where(counts > 0, sums / b.maximum(counts, 1), b.full(n, float("nan")))


@pytest.mark.parametrize("name", BACKENDS)
def test_same_kernel_same_numbers_on_every_backend(name):
    rng = np.random.default_rng(0)
    values = rng.normal(size=1000)
    labels = rng.integers(-1, 7, size=1000)
    expected = np.array([values[labels == k].mean() if (labels == k).any() else np.nan for k in range(8)])
    with use_backend(name) as b:
        placed = place_on_device((values, labels))  # as kernels do: the device settings decide
        assert all(b.is_array(a) for a in placed)
        out = mean_per_label(*placed, 8)
        jitted = b.jit(mean_per_label, static_argnums=2)(*placed, 8)
    np.testing.assert_allclose(ensure_numpy(out), expected, rtol=1e-12, equal_nan=True)
    np.testing.assert_allclose(ensure_numpy(jitted), expected, rtol=1e-12, equal_nan=True)


def test_set_backend_switches_for_the_process():
    for name in BACKENDS:
        set_backend(name)
        assert get_backend().name == name
