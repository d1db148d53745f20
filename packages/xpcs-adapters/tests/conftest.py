"""Shared fixtures for the xpcs-adapters tests.

The adapters are proven against the real libraries (h5py, pyqtgraph with PySide6,
matplotlib: the ``test`` extra). A test whose library is missing is skipped, and so is
every JAX case where JAX is not installed (the NumPy test environment has none).
Every test starts with no backend selected, no device chosen and no ``XPCS_*`` setting.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

# Qt must not look for a display: set before anything imports a Qt binding.
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import pytest

import xpcs_device
from xpcs_device import available_backends, reset_backend, use_backend

HAS_JAX = importlib.util.find_spec("jax") is not None and "jax" in available_backends()
QT_BINDINGS = ("PySide6", "PyQt6", "PySide2", "PyQt5")


def has_module(name: str) -> bool:
    return importlib.util.find_spec(name) is not None


BACKENDS = [
    pytest.param("numpy", id="numpy"),
    pytest.param(
        "jax",
        id="jax",
        marks=[pytest.mark.jax, pytest.mark.skipif(not HAS_JAX, reason="JAX (xpcs-jax) not installed")],
    ),
]


def _reset_devices() -> None:
    # DeviceManager is a singleton that reads XPCS_USE_GPU once; forget it like the backend.
    manager = getattr(xpcs_device, "DeviceManager", None)
    if manager is not None:
        manager.reset()


@pytest.fixture(autouse=True)
def _clean_state(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name in list(os.environ):
        if name.startswith("XPCS_") and name != "XPCS_TEST_BACKEND":
            monkeypatch.delenv(name)
    reset_backend()
    _reset_devices()
    yield
    reset_backend()
    _reset_devices()


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> Iterator[Any]:
    """Each available backend in turn, active (``use_backend``) for the test's thread."""
    with use_backend(request.param) as instance:
        yield instance


@pytest.fixture
def jax_backend() -> Iterator[Any]:
    """The JAX backend, active for the test's thread; skips where JAX is not installed."""
    if not HAS_JAX:
        pytest.skip("JAX (xpcs-jax) not installed")
    with use_backend("jax") as instance:
        yield instance


@pytest.fixture(scope="session")
def h5py() -> Any:
    return pytest.importorskip("h5py", reason="h5py not installed (the test extra has it)")


@pytest.fixture(scope="session")
def plt() -> Any:
    """matplotlib.pyplot on the Agg (file, no display) backend."""
    matplotlib = pytest.importorskip("matplotlib", reason="matplotlib not installed (the test extra has it)")
    matplotlib.use("Agg")
    from matplotlib import pyplot

    return pyplot


@pytest.fixture(scope="session")
def pg() -> Any:
    """pyqtgraph with its QApplication (offscreen platform)."""
    if not any(has_module(binding) for binding in QT_BINDINGS):
        pytest.skip("no Qt binding installed (the test extra has PySide6)")
    pyqtgraph = pytest.importorskip("pyqtgraph", reason="pyqtgraph not installed (the test extra has it)")
    if pyqtgraph.Qt.QT_LIB == "PySide6" and sys.version_info < (3, 12):
        import PySide6

        if tuple(PySide6.__version_info__[:2]) == (6, 12):
            # PySide6 6.12.0 drops references to None it does not own; on Python 3.11 the
            # interpreter aborts later ("deallocating None"), taking the whole run with it.
            pytest.skip(f"PySide6 {PySide6.__version__} breaks Python 3.11; install PySide6-Essentials<6.12")
    pyqtgraph.mkQApp()
    return pyqtgraph


@pytest.fixture(scope="session")
def child_cwd(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("child-cwd")


@pytest.fixture
def run_python(child_cwd: Path) -> Any:
    """``run_python(code)`` runs ``code`` in a fresh interpreter and returns its last stdout
    line (the child prints one JSON line at the end)."""

    def run(code: str) -> str:
        env = {k: v for k, v in os.environ.items() if not k.startswith("XPCS_")}
        completed = subprocess.run(
            [sys.executable, "-c", textwrap.dedent(code)],
            env=env,
            cwd=child_cwd,
            capture_output=True,
            text=True,
            timeout=180,
            check=False,
        )
        assert completed.returncode == 0, f"child failed\n{completed.stdout}\n{completed.stderr}"
        return completed.stdout.strip().splitlines()[-1]

    return run
