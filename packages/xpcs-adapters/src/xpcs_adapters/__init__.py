"""The I/O boundary of xpcs: every array leaving for h5py, pyqtgraph or matplotlib goes
through :func:`ensure_numpy`."""

from xpcs_adapters.__about__ import __version__
from xpcs_adapters.conversion import ensure_numpy

__all__ = ["__version__", "ensure_numpy"]
