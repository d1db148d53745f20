"""Q-map cost: this project's JAX and NumPy backends against naive NumPy and pyFAI.

Not a test: a script that prints a table. For each square float64 detector it times
|q|, φ, qx, qy, qz (``compute_qmap(..., quantities=...)``) on

- the JAX backend (warm: compiled function reused; results waited for),
- the NumPy backend,
- a naive NumPy implementation (full 2-D index grids, trigonometric 2θ, no separability),
- pyFAI ``qArray()`` + ``chiArray()`` on a new ``AzimuthalIntegrator`` per repetition (so
  no cached arrays are reused),

and reports medians (``time.perf_counter``) and ratios. The first call (trace + compile)
of the JAX backend is timed separately, in a fresh process with an empty persistent
compilation cache and again in a second fresh process with that cache warm.

The ``floor`` columns time merely writing five fresh float64 maps of the same size (JAX:
a compiled function returning five broadcasts; NumPy: five ``np.add`` of broadcast
vectors): no Q-map can be faster. On glibc every allocation of 32 MiB or more is fresh
``mmap`` memory whose page faults cost more than the arithmetic; NumPy asks for
transparent huge pages (``madvise``), XLA does not. ``--retain-freed-memory`` applies
:func:`xpcs_device.memory.retain_freed_memory` in this process before any backend starts
(glibc ``mallopt``: no ``mmap`` for large blocks, no trimming, one arena), so freed memory
is reused without page faults, for every column of the table (pyFAI and NumPy too); the
price is a process that keeps its peak memory. The ``peak RSS`` column shows that price.

Targets on a 2-core machine: JAX ≤ 25 ms at 2048², ≤ 100 ms at 4096², ≥ 5x faster than
pyFAI; the NumPy backend at least as fast as naive NumPy.

    python tools/bench/bench_qmap.py [--sizes 2048 4096] [--repeats 7] [--retain-freed-memory]
"""

from __future__ import annotations

import argparse
import functools
import importlib.util
import json
import logging
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from xpcs_device import use_backend
from xpcs_device.memory import retain_freed_memory
from xpcs_kernels.geometry import TransmissionGeometry
from xpcs_kernels.qmap import compute_qmap

QUANTITIES = ("q_inv_angstrom", "phi_deg", "qx_inv_angstrom", "qy_inv_angstrom", "qz_inv_angstrom")
ENERGY_KEV, DISTANCE_M, PIXEL_M = 10.0, 5.0, 75e-6


def _geometry(n: int) -> TransmissionGeometry:
    return TransmissionGeometry(ENERGY_KEV, DISTANCE_M, PIXEL_M, n * 0.43, n * 0.61)


def _median(fun: Callable[[], Any], repeats: int) -> float:
    fun()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fun()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def naive_numpy(n: int) -> tuple[np.ndarray[Any, Any], ...]:
    """The straightforward implementation: 2-D grids, then each quantity on its own."""
    g = _geometry(n)
    rows, cols = np.meshgrid(np.arange(n, dtype=np.float64), np.arange(n, dtype=np.float64), indexing="ij")
    dx = (cols - g.beam_center_x_px) * PIXEL_M
    dy = -(rows - g.beam_center_y_px) * PIXEL_M
    r = np.sqrt(dx**2 + dy**2)
    big_r = np.sqrt(r**2 + DISTANCE_M**2)
    k0 = 2 * np.pi / (12.398419843320026 / ENERGY_KEV)
    two_theta = np.arctan2(r, DISTANCE_M)
    q = 2 * k0 * np.sin(two_theta / 2)
    phi = np.degrees(np.arctan2(dy, dx))
    return q, phi, k0 * dx / big_r, k0 * dy / big_r, k0 * (DISTANCE_M / big_r - 1)


def _ours(backend: str, n: int) -> Callable[[], Any]:
    def run() -> Any:
        with use_backend(backend) as b:
            return b.block_until_ready(compute_qmap(_geometry(n), (n, n), quantities=QUANTITIES).as_dict())

    return run


def _pyfai(n: int) -> Callable[[], Any] | None:
    if importlib.util.find_spec("pyFAI") is None:
        return None
    logging.getLogger("pyFAI").setLevel(logging.ERROR)  # qArray/chiArray deprecation notices
    from pyFAI.integrator.azimuthal import AzimuthalIntegrator

    g = _geometry(n)

    def run() -> Any:
        ai = AzimuthalIntegrator(
            dist=DISTANCE_M,
            poni1=(g.beam_center_y_px + 0.5) * PIXEL_M,
            poni2=(g.beam_center_x_px + 0.5) * PIXEL_M,
            pixel1=PIXEL_M,
            pixel2=PIXEL_M,
            wavelength=g.wavelength_m,
        )
        return ai.qArray((n, n)), ai.chiArray((n, n))

    return run


_FIRST_CALL = """
import json, time
from xpcs_device import use_backend
from xpcs_kernels.geometry import TransmissionGeometry
from xpcs_kernels.qmap import compute_qmap
n = {n}
with use_backend("jax") as b:
    b.block_until_ready(b.zeros(1))
    start = time.perf_counter()
    b.block_until_ready(compute_qmap(TransmissionGeometry(10.0, 5.0, 75e-6, n * 0.43, n * 0.61), (n, n),
                                     quantities={quantities!r}).as_dict())
    print(json.dumps(time.perf_counter() - start))
"""


def _first_call(n: int, cache_dir: str) -> float:
    env = {k: v for k, v in os.environ.items() if not k.startswith("XPCS_")}
    env["XPCS_JAX_CACHE_DIR"] = cache_dir
    out = subprocess.run(
        [sys.executable, "-c", _FIRST_CALL.format(n=n, quantities=QUANTITIES)],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return float(json.loads(out.stdout.strip().splitlines()[-1]))


def _floor_jax(n: int) -> Callable[[], Any]:
    with use_backend("jax") as b:
        row = b.arange(n, dtype="float64")
        write = b.jit(lambda v: [b.broadcast_to(b.expand_dims(v + k, 0), (n, n)) for k in range(5)])
        return lambda: b.block_until_ready(write(row))


def _floor_numpy(n: int) -> Callable[[], Any]:
    row = np.arange(n, dtype=np.float64)
    return lambda: [np.add(row[:, None], float(k) * row[None, :]) for k in range(5)]


def _peak_rss_mib() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def _ms(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds * 1e3:9.1f}"


def _ratio(slow: float | None, fast: float | None) -> str:
    return "-" if slow is None or fast is None else f"{slow / fast:6.1f}x"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument(
        "--sizes", type=int, nargs="+", default=[2048, 4096], help="edge of the n x n detector"
    )
    parser.add_argument("--repeats", type=int, default=7, help="timed repetitions per cell (median reported)")
    parser.add_argument(
        "--retain-freed-memory", action="store_true", help="glibc mallopt: reuse freed memory (see above)"
    )
    args = parser.parse_args(argv)
    retained = retain_freed_memory() if args.retain_freed_memory else False
    if args.retain_freed_memory and not retained:
        raise SystemExit("--retain-freed-memory needs glibc (Linux)")
    has_jax = importlib.util.find_spec("jax") is not None
    memory = "retained (xpcs_device.memory)" if retained else "allocator default"
    print(
        f"|q|, phi, qx, qy, qz float64; medians of {args.repeats} (ms); {os.cpu_count()} CPUs; "
        f"load average {os.getloadavg()[0]:.1f}; freed memory {memory}"
    )
    header = (
        f"{'size':>6} {'jax':>9} {'numpy':>9} {'naive':>9} {'pyFAI':>9} {'pyFAI/jax':>9} "
        f"{'naive/np':>9} {'floor jax':>9} {'floor np':>9} {'compile':>9} {'cached':>9} {'peak RSS':>9}"
    )
    print(header)
    for n in args.sizes:
        jax_s = _median(_ours("jax", n), args.repeats) if has_jax else None
        numpy_s = _median(_ours("numpy", n), args.repeats)
        naive_s = _median(functools.partial(naive_numpy, n), args.repeats)
        pyfai_run = _pyfai(n)
        pyfai_s = None if pyfai_run is None else _median(pyfai_run, max(3, args.repeats // 2))
        floor_jax = _median(_floor_jax(n), args.repeats) if has_jax else None
        floor_np = _median(_floor_numpy(n), args.repeats)
        cold = warm = None
        if has_jax:
            with tempfile.TemporaryDirectory() as cache_dir:
                cold = _first_call(n, cache_dir)
                warm = _first_call(n, cache_dir)
        print(
            f"{n:>6} {_ms(jax_s)} {_ms(numpy_s)} {_ms(naive_s)} {_ms(pyfai_s)} "
            f"{_ratio(pyfai_s, jax_s):>9} {_ratio(naive_s, numpy_s):>9} {_ms(floor_jax)} {_ms(floor_np)} "
            f"{_ms(cold)} {_ms(warm)} {_peak_rss_mib():>5.0f} MiB"
        )
    print("floor: writing five fresh float64 maps of that size, nothing computed")
    print("peak RSS: this process so far (Linux ru_maxrss), all columns included")
    print("compile: first call in a fresh process, empty persistent cache; cached: same, cache warm")
    return 0


if __name__ == "__main__":
    sys.exit(main())
