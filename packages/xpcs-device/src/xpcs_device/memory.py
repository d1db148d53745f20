"""Opt-in reuse of freed memory by glibc's allocator (:func:`retain_freed_memory`).

On Linux with glibc, every block of 32 MiB or more (one float64 2048 x 2048 map) is fresh
``mmap`` memory, and worker threads allocate from their own arenas, which glibc unmaps
when they empty. The first write to each fresh 4 KiB page is a page fault, and on a small
machine those faults cost more than computing a Q-map or labelling a detector (measured
in ``tools/bench/bench_qmap.py``). NumPy asks the kernel for transparent huge pages; XLA
on CPU does not.

:func:`retain_freed_memory` sets three ``mallopt`` parameters for the whole process:
large blocks come from the heap (``M_MMAP_MAX = 0``), the heap is never trimmed
(``M_TRIM_THRESHOLD`` at its maximum) and every thread shares the main arena
(``M_ARENA_MAX = 1``). Freed memory is then reused without page faults. **The price:**
the process keeps its peak heap for its lifetime (the memory is not returned to the
system), and fragmentation can make that peak larger than the live data. That is a
decision about the whole process (measured: a 2048² Q-map loop grew to 0.9-1.2 GiB for
160 MiB of live maps, 4096² to 2.4-3.9 GiB), so no xpcs package ever takes it: an
application that computes many large maps (a viewer recomputing Q-maps as the beam centre
is dragged) calls :func:`retain_freed_memory` itself, best before the first large
computation (arenas that threads already own are kept). Transparent huge pages for
glibc's heap can be asked for at process start only, with
``GLIBC_TUNABLES=glibc.malloc.hugetlb=1``.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys
import threading

__all__ = ["retain_freed_memory"]

# mallopt parameter numbers (glibc <malloc.h>)
_M_TRIM_THRESHOLD = -1
_M_MMAP_MAX = -4
_M_ARENA_MAX = -8
_INT_MAX = 2**31 - 1

_lock = threading.Lock()
_applied = False


def _glibc() -> ctypes.CDLL | None:
    """The C library when it is glibc on Linux (it has ``mallopt``), else None."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        version = libc.gnu_get_libc_version  # glibc only (musl has no such symbol)
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return None
    version.restype = ctypes.c_char_p
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    mallopt.restype = ctypes.c_int
    return libc


def retain_freed_memory() -> bool:
    """Make glibc keep and reuse freed memory for the rest of the process (see the module
    docstring for the trade-off). Returns True once applied (later calls do nothing and
    return True), False where the C library is not glibc (nothing changed)."""
    global _applied
    with _lock:
        if _applied:
            return True
        libc = _glibc()
        if libc is None:
            return False
        settings = ((_M_MMAP_MAX, 0), (_M_TRIM_THRESHOLD, _INT_MAX), (_M_ARENA_MAX, 1))
        if not all(libc.mallopt(param, value) == 1 for param, value in settings):
            raise RuntimeError("glibc refused a mallopt setting; the allocator is left as far as it got")
        _applied = True
        return True
