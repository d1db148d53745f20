"""pytest helpers for tests that run on every installed backend (needs pytest).

Loaded as a plugin (``pytest_plugins = ["xpcs_device.testing"]`` in the root
``conftest.py``), it provides the fixtures

- ``backend``: each installed backend in turn (``numpy``, then ``jax`` where it is
  installed), active for the test's thread;
- ``fresh_backend``: no backend selected before and after the test (use it in a module with
  ``pytestmark = pytest.mark.usefixtures("fresh_backend")``);

and, for parametrising by hand, :data:`BACKENDS`, :data:`HAS_JAX` and :data:`needs_jax`.
Checking for JAX never imports it, so the NumPy test environment stays free of JAX.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator
from typing import Any

import pytest

from xpcs_device.registry import available_backends
from xpcs_device.selection import reset_backend, use_backend

__all__ = ["BACKENDS", "HAS_JAX", "backend", "fresh_backend", "needs_jax"]

HAS_JAX: bool = importlib.util.find_spec("jax") is not None and "jax" in available_backends()
"""Whether the JAX backend (jax and xpcs-jax) is installed."""

needs_jax: list[pytest.MarkDecorator] = [
    pytest.mark.jax,
    pytest.mark.skipif(not HAS_JAX, reason="JAX (xpcs-jax) not installed"),
]
"""Marks of a test (or parameter) that needs the JAX backend: skipped where it is missing."""

BACKENDS: list[Any] = [pytest.param("numpy", id="numpy"), pytest.param("jax", id="jax", marks=needs_jax)]
"""``pytest.mark.parametrize`` values naming each backend."""


@pytest.fixture
def fresh_backend() -> Iterator[None]:
    """No backend selected when the test starts, none left behind when it ends."""
    reset_backend()
    yield
    reset_backend()


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> Iterator[Any]:
    """Each installed backend in turn, active (``use_backend``) for the test's thread."""
    reset_backend()
    with use_backend(request.param) as instance:
        yield instance
    reset_backend()
