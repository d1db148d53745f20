"""``ensure_numpy``: the one conversion every I/O boundary goes through."""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["ensure_numpy"]


def ensure_numpy(x: Any) -> np.ndarray[Any, Any]:
    """``x`` as a NumPy array, for h5py, pyqtgraph, matplotlib and other NumPy-only code.

    NumPy arrays pass through unchanged (no copy). JAX arrays on the CPU become NumPy
    views of the same memory (read-only) where JAX allows it; arrays on a device are
    transferred. Objects exposing ``__array__`` and nested sequences of numbers are
    converted. Object dtypes, ragged sequences and non-array inputs raise ``TypeError``.
    """
    if isinstance(x, np.ndarray):
        out = x
    elif isinstance(x, str | bytes | dict | set) or x is None:
        raise TypeError(f"ensure_numpy needs an array, got {type(x).__name__}")
    else:
        try:
            out = np.asarray(x)
        except ValueError as exc:  # ragged nested sequences
            raise TypeError(
                f"ensure_numpy cannot make a regular array from {type(x).__name__}: {exc}"
            ) from exc
    if out.dtype == object:
        raise TypeError(
            f"ensure_numpy got {type(x).__name__} of object dtype (ragged or non-numeric data); "
            "pass a numeric array"
        )
    return out
