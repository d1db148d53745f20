"""Conversion statistics and the base class every adapter shares.

:class:`ConversionStats` is the one monitoring implementation: a lock-protected counter
of conversions, their total time and the slowest one. :class:`BoundaryAdapter` gives each
adapter its two directions (``_to_numpy`` towards the library, ``_to_backend`` back to
the active backend) and records them in its own :class:`ConversionStats` when monitoring
is on. With monitoring off a conversion costs one boolean check more than the bare call.
"""

from __future__ import annotations

import threading
from time import perf_counter
from typing import Any, TypedDict

import numpy as np

from xpcs_adapters.conversion import ensure_numpy
from xpcs_device import place_on_device

__all__ = ["BoundaryAdapter", "ConversionStats", "StatsDict"]


class StatsDict(TypedDict):
    """What ``get_stats()`` returns (a plain ``dict`` at run time); times are in seconds."""

    adapter: str
    """The adapter's class name."""
    monitoring: bool
    """Whether this adapter records conversions; when False every other value stays zero."""
    conversions: int
    """Conversions recorded, both directions; ``to_matplotlib(x, y)`` counts two."""
    total_time_s: float
    """Sum of the conversion times."""
    average_time_s: float
    """``total_time_s / conversions``; 0.0 before the first conversion."""
    slowest_time_s: float
    """Time of the slowest conversion; 0.0 before the first conversion."""
    slowest_shape: tuple[int, ...] | None
    """Shape of the array of the slowest conversion; None before the first conversion."""


class ConversionStats:
    """Count, total time and slowest conversion, safe to update from many threads."""

    __slots__ = ("_count", "_lock", "_slowest_shape", "_slowest_time", "_total_time")

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._count = 0
        self._total_time = 0.0
        self._slowest_time = 0.0
        self._slowest_shape: tuple[int, ...] | None = None

    def record(self, seconds: float, shape: tuple[int, ...]) -> None:
        """Add one conversion that took ``seconds`` on an array of ``shape``."""
        with self._lock:
            self._count += 1
            self._total_time += seconds
            if self._slowest_shape is None or seconds > self._slowest_time:
                self._slowest_time = seconds
                self._slowest_shape = tuple(shape)

    def reset(self) -> None:
        """Forget every recorded conversion."""
        with self._lock:
            self._count = 0
            self._total_time = 0.0
            self._slowest_time = 0.0
            self._slowest_shape = None

    def snapshot(self, adapter: str, *, monitoring: bool) -> StatsDict:
        """The statistics as a plain dict (see :class:`StatsDict`), read consistently."""
        with self._lock:
            count, total = self._count, self._total_time
            slowest_time, slowest_shape = self._slowest_time, self._slowest_shape
        return {
            "adapter": adapter,
            "monitoring": monitoring,
            "conversions": count,
            "total_time_s": total,
            "average_time_s": total / count if count else 0.0,
            "slowest_time_s": slowest_time,
            "slowest_shape": slowest_shape,
        }


class BoundaryAdapter:
    """Base of the adapters: converts in both directions and keeps the statistics.

    ``enable_monitoring=True`` records every conversion (see :meth:`get_stats`). The
    adapters hold no backend of their own: they follow the active backend
    (``xpcs_device.get_backend()``, ``use_backend`` included) at each call.
    """

    __slots__ = ("_monitoring", "_stats")

    def __init__(self, *, enable_monitoring: bool = False) -> None:
        self._monitoring = bool(enable_monitoring)
        self._stats = ConversionStats()

    def __repr__(self) -> str:
        return f"{type(self).__name__}(enable_monitoring={self._monitoring})"

    @property
    def monitoring_enabled(self) -> bool:
        """Whether conversions are recorded."""
        return self._monitoring

    def get_stats(self) -> StatsDict:
        """This adapter's conversion statistics as a plain dict.

        Keys: ``adapter``, ``monitoring``, ``conversions``, ``total_time_s``,
        ``average_time_s``, ``slowest_time_s``, ``slowest_shape`` (see :class:`StatsDict`).
        """
        return self._stats.snapshot(type(self).__name__, monitoring=self._monitoring)

    def reset_stats(self) -> None:
        """Clear the statistics; monitoring stays as it was."""
        self._stats.reset()

    def _to_numpy(self, x: Any) -> np.ndarray[Any, Any]:
        """``ensure_numpy(x)``, timed when monitoring is on."""
        if not self._monitoring:
            return ensure_numpy(x)
        start = perf_counter()
        out = ensure_numpy(x)
        self._stats.record(perf_counter() - start, out.shape)
        return out

    def _to_backend(self, x: Any) -> Any:
        """NumPy data from a library as an array of the active backend, on its device."""
        if not self._monitoring:
            return place_on_device(ensure_numpy(x))
        start = perf_counter()
        data = ensure_numpy(x)
        out = place_on_device(data)
        self._stats.record(perf_counter() - start, data.shape)
        return out
