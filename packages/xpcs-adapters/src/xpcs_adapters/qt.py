"""``PyQtGraphAdapter``: arrays to and from pyqtgraph (``ImageItem``, ``PlotDataItem``)."""

from __future__ import annotations

from typing import Any

import numpy as np

from xpcs_adapters.monitoring import BoundaryAdapter

__all__ = ["PyQtGraphAdapter"]


class PyQtGraphAdapter(BoundaryAdapter):
    """Feeds pyqtgraph NumPy arrays and brings its data back to the active backend.

    pyqtgraph only understands NumPy: given a JAX array it may draw nothing or fail deep
    inside Qt. ``item.setImage(adapter.to_pyqtgraph(image))`` is always safe. pyqtgraph
    itself is not imported; bring it and a Qt binding (PySide6, PyQt6, ...) yourself.
    """

    __slots__ = ()

    def to_pyqtgraph(self, array: Any) -> np.ndarray[Any, Any]:
        """``array`` as a NumPy array for pyqtgraph (:func:`~xpcs_adapters.ensure_numpy`).

        CPU JAX arrays give a read-only view without a copy; pyqtgraph only reads it.
        """
        return self._to_numpy(array)

    def from_pyqtgraph(self, array: Any) -> Any:
        """NumPy data taken from pyqtgraph (``item.image``, ``item.getData()[1]``, ROI
        regions) as an array of the active backend, on the selected device."""
        return self._to_backend(array)
