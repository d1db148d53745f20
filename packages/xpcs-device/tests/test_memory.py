"""retain_freed_memory: by default glibc gives large freed blocks back (fresh pages next
time); after the opt-in call it reuses them. The kernel's page-fault counter is the oracle."""

from __future__ import annotations

import platform

import pytest

from xpcs_device.memory import _glibc

GLIBC = platform.system() == "Linux" and _glibc() is not None
needs_glibc = pytest.mark.skipif(not GLIBC, reason="mallopt needs glibc on Linux")


# A 64 MiB block, written, freed and asked for again: with glibc's defaults it is fresh
# mmap memory both times (16384 page faults at the second write), retained it is reused.
_FAULTS = """
import ctypes, resource
import os
from xpcs_device.memory import retain_freed_memory

applied = retain_freed_memory() if os.environ.get("OPT_IN") else False
again = retain_freed_memory() if applied else None
libc = ctypes.CDLL("libc.so.6")
libc.malloc.restype = ctypes.c_void_p
libc.free.argtypes = (ctypes.c_void_p,)
size = 64 << 20
block = libc.malloc(size)
ctypes.memset(block, 1, size)
libc.free(block)
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
block = libc.malloc(size)
ctypes.memset(block, 2, size)
faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before
libc.free(block)
emit({"applied": applied, "again": again, "faults": faults})
"""


@needs_glibc
def test_default_leaves_the_allocator_alone(run_python):
    result = run_python(_FAULTS)
    assert result["applied"] is False
    assert result["faults"] > 8000  # fresh pages: the freed block went back to the system


@needs_glibc
def test_opt_in_reuses_freed_memory(run_python):
    result = run_python(_FAULTS, env={"OPT_IN": "1"})
    assert result["applied"] is True
    assert result["again"] is True  # idempotent
    assert result["faults"] < 100  # the same pages again, no fresh ones
