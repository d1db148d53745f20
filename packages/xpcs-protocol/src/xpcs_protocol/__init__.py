"""Pure typing for xpcs backends: :class:`BackendProtocol` and the array type aliases.

Importing this package imports neither numpy nor jax.
"""

from xpcs_protocol.__about__ import __version__
from xpcs_protocol.backend import BackendProtocol
from xpcs_protocol.types import Array, ArrayLike, Axis, DTypeLike, Key, PyTree, Shape

__all__ = [
    "BACKEND_MEMBERS",
    "ENTRY_POINT_GROUP",
    "Array",
    "ArrayLike",
    "Axis",
    "BackendProtocol",
    "DTypeLike",
    "Key",
    "PyTree",
    "Shape",
    "__version__",
]

ENTRY_POINT_GROUP = "xpcs.backends"
"""Entry-point group under which backend packages register their backend class."""

BACKEND_MEMBERS: frozenset[str] = frozenset(
    name for name in vars(BackendProtocol) if not name.startswith("_")
)
"""Names of every member of :class:`BackendProtocol`."""
