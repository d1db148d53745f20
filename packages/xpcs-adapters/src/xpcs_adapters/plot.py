"""``MatplotlibAdapter``: arrays for matplotlib's static plots."""

from __future__ import annotations

from typing import Any, overload

import numpy as np

from xpcs_adapters.monitoring import BoundaryAdapter

__all__ = ["MatplotlibAdapter"]


class MatplotlibAdapter(BoundaryAdapter):
    """Hands matplotlib NumPy arrays.

    ``ax.imshow(adapter.to_matplotlib(image))`` for one array,
    ``ax.plot(*adapter.to_matplotlib(tau, g2))`` for several. There is no way back:
    matplotlib produces figures, not data. matplotlib itself is not imported.
    """

    __slots__ = ()

    @overload
    def to_matplotlib(self, array: Any, /) -> np.ndarray[Any, Any]: ...

    @overload
    def to_matplotlib(self, first: Any, second: Any, /, *arrays: Any) -> tuple[np.ndarray[Any, Any], ...]: ...

    def to_matplotlib(self, *arrays: Any) -> np.ndarray[Any, Any] | tuple[np.ndarray[Any, Any], ...]:
        """Each argument as a NumPy array (:func:`~xpcs_adapters.ensure_numpy`).

        One argument gives the array itself; two or more give a tuple in the same order,
        so ``x, y = adapter.to_matplotlib(x, y)`` unpacks. Each array counts as one
        conversion in the statistics. No argument is a ``TypeError``.
        """
        if not arrays:
            raise TypeError("to_matplotlib needs at least one array")
        if len(arrays) == 1:
            return self._to_numpy(arrays[0])
        return tuple(self._to_numpy(a) for a in arrays)
