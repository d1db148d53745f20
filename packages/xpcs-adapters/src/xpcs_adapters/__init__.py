"""The I/O boundary of xpcs: every array leaving for h5py, pyqtgraph or matplotlib goes
through :func:`ensure_numpy`, usually by way of one of the adapters.

None of h5py, pyqtgraph and matplotlib is imported here: the adapters only need NumPy.
"""

from xpcs_adapters.__about__ import __version__
from xpcs_adapters.conversion import ensure_numpy
from xpcs_adapters.hdf5 import HDF5Adapter
from xpcs_adapters.monitoring import BoundaryAdapter, ConversionStats, StatsDict
from xpcs_adapters.plot import MatplotlibAdapter
from xpcs_adapters.qt import PyQtGraphAdapter

__all__ = [
    "__version__",
    "ensure_numpy",
    "PyQtGraphAdapter",
    "HDF5Adapter",
    "MatplotlibAdapter",
    "BoundaryAdapter",
    "ConversionStats",
    "StatsDict",
]
