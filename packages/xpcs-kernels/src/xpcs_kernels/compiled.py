"""Where a kernel runs a compiled CPU loop (numba) instead of its array formulation.

Some kernels are a few nested loops whose array formulation is slow on a CPU: XLA's CPU
code for the multi-tau lag sums reaches a fifth of the machine's multiply-add rate, its
scatter-adds are slow, and NumPy makes a temporary per operation. For those kernels a
numba loop over cache-sized pixel blocks on every core computes the same sums (exact
integer sums stay exact), and the results are handed back as arrays of the active backend.

``compiled`` arguments of the kernels take:

- ``None`` (default): the compiled loop when numba is installed and the active backend
  places its arrays on a CPU (NumPy, or JAX on its CPU device); the array formulation on
  an accelerator, where XLA's own code is the fast one;
- ``True``: the compiled loop, or ``ValueError`` when it cannot run here;
- ``False``: the backend's array formulation (XLA under ``jit`` on JAX, NumPy otherwise).

Both give the same numbers (the tests compare them); the compiled loops run outside
``jax.jit`` and are not traced, so a kernel meant to be traced passes ``compiled=False``.
"""

from __future__ import annotations

import contextlib
import functools
import importlib.util
import threading
from collections.abc import Iterator
from typing import Any

import numpy as np

import xpcs_device
from xpcs_protocol import Array, BackendProtocol

__all__ = ["compiled_available", "host_array", "parallel_region", "readonly", "use_compiled"]


@functools.cache
def compiled_available() -> bool:
    """Whether numba can be imported (it is a dependency; a platform without its wheels
    falls back to the array formulations)."""
    return importlib.util.find_spec("numba") is not None


def use_compiled(compiled: bool | None) -> bool:
    """Whether a kernel with argument ``compiled`` runs its compiled CPU loop now."""
    if compiled is False:
        return False
    if compiled is not None and compiled is not True:
        raise TypeError(f"compiled must be None, True or False, got {compiled!r}")
    on_cpu = xpcs_device.get_device().kind == "cpu"
    if compiled is None:
        return on_cpu and compiled_available()
    if not compiled_available():
        raise ValueError("compiled=True needs numba (pip install numba); pass compiled=None or False")
    if not on_cpu:
        raise ValueError(
            "compiled=True runs on the CPU only, and the active device is "
            f"{xpcs_device.get_device().kind!r}; pass compiled=None or False"
        )
    return True


def host_array(b: BackendProtocol, x: Array | np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    """``x`` as a NumPy array for a compiled loop (no copy for NumPy arrays and for JAX
    arrays on the CPU; read-only in the latter case)."""
    if isinstance(x, np.ndarray):
        return x
    return np.asarray(b.to_numpy(x))


def readonly(x: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    """A read-only view of ``x``: numba compiles one variant per writeable flag (seconds
    each), and inputs from JAX are read-only, so a loop's inputs are passed read-only
    always."""
    view = x.view()
    view.flags.writeable = False
    return view


_PARALLEL_LOCK = threading.Lock()


@contextlib.contextmanager
def parallel_region() -> Iterator[None]:
    """Held around every launch of a parallel compiled loop: numba's fallback threading
    layer (workqueue, where neither OpenMP nor TBB is installed) terminates the process when
    two Python threads launch parallel loops at once. Each loop uses every core already, so
    serialising them costs little."""
    with _PARALLEL_LOCK:
        yield
