"""``ensure_numpy``: the one conversion every I/O boundary goes through."""

from __future__ import annotations

import sys
from typing import Any

import numpy as np

__all__ = ["ensure_numpy"]

_ARRAY_HINT = "a NumPy or JAX array, or a nested list of numbers"

# Inputs that NumPy would silently turn into a 0-d string or object array.
_REFUSED: dict[type, str] = {
    str: "pass an array of numbers; text is not array data",
    bytes: "pass an array of numbers; to read raw bytes use np.frombuffer(data, dtype=...)",
    dict: "pass the values as an array, e.g. np.asarray(list(mapping.values()))",
    set: "sets have no order; pass a sorted list or an array",
    frozenset: "sets have no order; pass a sorted list or an array",
}


def _is_jax_tracer_error(exc: BaseException) -> bool:
    # Only JAX can raise its own errors, so JAX is already imported if this is one.
    jax = sys.modules.get("jax")
    errors = getattr(jax, "errors", None)
    tracer_error = getattr(errors, "TracerArrayConversionError", None)
    return isinstance(tracer_error, type) and isinstance(exc, tracer_error)


def ensure_numpy(x: Any) -> np.ndarray[Any, Any]:
    """``x`` as a NumPy array, for h5py, pyqtgraph, matplotlib and other NumPy-only code.

    - NumPy arrays (subclasses included) are returned as they are: the same object, no copy.
    - JAX arrays on the CPU become **read-only** NumPy views of the same memory, no copy
      (``out.ctypes.data == x.unsafe_buffer_pointer()``); copy the result
      (``out.copy()``) before writing into it.
    - JAX arrays on another device (GPU) are transferred to host memory; that copy is
      the cost of the conversion (milliseconds for large images). The result is read-only.
    - Other objects exposing ``__array__`` and regular nested sequences of numbers are
      converted with :func:`numpy.asarray`; NumPy scalars and Python numbers give 0-d arrays.

    Raises ``TypeError``, saying what to pass instead, for JAX tracers (the function was
    called inside ``jax.jit``, ``grad`` or ``vmap``, where no concrete values exist), for
    ``None``, ``str``, ``bytes``, ``dict`` and sets, for ragged sequences and for anything
    that would give an object-dtype array.

    JAX is never imported here: a JAX array can only exist once JAX is imported, so its
    types are looked up in ``sys.modules``.
    """
    if isinstance(x, np.ndarray):
        out = x
    else:
        if x is None:
            raise TypeError(
                f"ensure_numpy got None; pass {_ARRAY_HINT} (did a function return None instead of "
                "its result?)"
            )
        hint = next((msg for kind, msg in _REFUSED.items() if isinstance(x, kind)), None)
        if hint is not None:
            raise TypeError(f"ensure_numpy cannot convert a {type(x).__name__}; {hint}")
        try:
            out = np.asarray(x)
        except ValueError as exc:  # ragged nested sequences
            raise TypeError(
                f"ensure_numpy cannot make a regular array from this {type(x).__name__} (ragged "
                f"nesting or mixed shapes: {exc}); pass sequences of equal length, or one "
                "array per item"
            ) from exc
        except TypeError as exc:
            if _is_jax_tracer_error(exc):
                raise TypeError(
                    "ensure_numpy cannot convert a JAX tracer: it was called inside jax.jit "
                    "(or grad, vmap), where arrays have no values yet. Call ensure_numpy "
                    "outside the jitted function, on the array it returns"
                ) from exc
            raise
    if out.dtype.hasobject:
        raise TypeError(
            f"ensure_numpy got a {type(x).__name__} of object dtype (ragged, mixed or non-numeric "
            f"items); pass {_ARRAY_HINT} with a numeric dtype"
        )
    return out
