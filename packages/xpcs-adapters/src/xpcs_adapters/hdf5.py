"""``HDF5Adapter``: arrays to and from h5py, with the dtype kept exactly."""

from __future__ import annotations

from typing import Any

import numpy as np

from xpcs_adapters.monitoring import BoundaryAdapter

__all__ = ["HDF5Adapter"]


_KIND_ADVICE = {
    "U": "h5py has no Unicode array type; encode first, e.g. np.char.encode(a, 'utf-8')",
    "M": "h5py has no date/time type; store a.astype('int64') and write the unit in an attribute",
    "m": "h5py has no date/time type; store a.astype('int64') and write the unit in an attribute",
}


def _unfaithful(dtype: np.dtype[Any]) -> str | None:
    """Why h5py cannot store ``dtype`` as itself (with what to do instead), or None."""
    if dtype.fields is not None:  # structured: every field must be storable
        problems = (
            f"field {name!r}: {why}"
            for name, (field, *_) in dtype.fields.items()
            if (why := _unfaithful(field)) is not None
        )
        return next(problems, None)
    if dtype.subdtype is not None:
        return _unfaithful(dtype.subdtype[0])
    if dtype.kind == "V" and dtype.type is not np.void:
        # ml_dtypes types such as JAX's bfloat16 would be written as opaque bytes.
        return "h5py would write it as opaque bytes; convert first, e.g. a.astype(np.float32)"
    return _KIND_ADVICE.get(dtype.kind)


class HDF5Adapter(BoundaryAdapter):
    """NumPy arrays for h5py, and data read from HDF5 back on the active backend.

    ``to_hdf5`` keeps the dtype exactly (no casting) and refuses what h5py would store
    as something else or not at all: object dtypes (via ``ensure_numpy``), Unicode
    strings, datetimes and extension types such as ``bfloat16``. h5py itself is not
    imported; the helpers take h5py groups and files as the caller made them.
    """

    __slots__ = ()

    def to_hdf5(self, array: Any) -> np.ndarray[Any, Any]:
        """``array`` as a NumPy array h5py stores with the same dtype and values."""
        out = self._to_numpy(array)
        why = _unfaithful(out.dtype)
        if why is not None:
            raise TypeError(f"to_hdf5 cannot store dtype {out.dtype} faithfully: {why}")
        return out

    def from_hdf5(self, array: Any) -> Any:
        """Data read with h5py (``dataset[()]``, a slice) as an array of the active backend,
        on the selected device."""
        return self._to_backend(array)

    def write_dataset(self, group: Any, name: str, array: Any, **h5py_kwargs: Any) -> Any:
        """``group.create_dataset(name, data=self.to_hdf5(array), **h5py_kwargs)``; returns
        the new dataset. ``h5py_kwargs`` go to h5py unchanged (``compression``, ``chunks``)."""
        return group.create_dataset(name, data=self.to_hdf5(array), **h5py_kwargs)

    def read_dataset(self, group: Any, path: str) -> Any:
        """The whole dataset at ``path`` under ``group`` (an h5py file or group) as an array
        of the active backend, on the selected device (``from_hdf5(group[path][()])``)."""
        dataset = group[path]
        if not hasattr(dataset, "dtype"):
            raise TypeError(f"{path!r} is a {type(dataset).__name__}, not a dataset; give a dataset's path")
        return self.from_hdf5(dataset[()])
