"""Cost of ``xpcs_adapters.ensure_numpy`` at the I/O boundary, against copying the data.

Not a test: a script that prints a table. For each square float64 array it times

- ``ensure_numpy`` on a NumPy array (a pass-through),
- ``ensure_numpy`` on a CPU JAX array (a read-only view of the same memory), each
  repetition on a new JAX array, since JAX caches an array's NumPy view after the first
  conversion and the first one is what an I/O boundary pays,
- ``np.array(x, copy=True)`` of the same NumPy data, what a conversion that copies costs,

and reports medians over the repetitions (``time.perf_counter``). The goal it checks:
a 4096x4096 CPU JAX array converts at least 20x faster than copying it. JAX is used only
where it is installed.

    python tools/bench/bench_conversion.py [--sizes 100 1024 4096] [--repeats 25]
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import sys
from collections.abc import Callable
from time import perf_counter
from typing import Any

import numpy as np

from xpcs_adapters import ensure_numpy

GOAL_SIZE = 4096
GOAL_RATIO = 20.0


def _median_seconds(prepare: Callable[[], Any], convert: Callable[[Any], Any], repeats: int) -> float:
    """Median time of ``convert(prepare())`` over ``repeats`` runs, ``prepare`` untimed."""
    times = []
    for _ in range(repeats):
        value = prepare()
        start = perf_counter()
        convert(value)
        times.append(perf_counter() - start)
    return statistics.median(times)


def _jax_backend() -> Any | None:
    if importlib.util.find_spec("jax") is None:
        return None
    from xpcs_device import create_backend

    return create_backend("jax")  # configures JAX (float64 enabled) as xpcs uses it


def _fresh_jax(backend: Any, data: np.ndarray[Any, Any]) -> Callable[[], Any]:
    def make() -> Any:
        return backend.asarray(data).block_until_ready()

    return make


def _constant(data: np.ndarray[Any, Any]) -> Callable[[], np.ndarray[Any, Any]]:
    return lambda: data


def _copy(x: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    return np.array(x, copy=True)


def _ms(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds * 1e3:.4f}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument(
        "--sizes", type=int, nargs="+", default=[100, 1024, 4096], help="edge of the n x n arrays"
    )
    parser.add_argument(
        "--repeats", type=int, default=25, help="timed repetitions per cell (median reported)"
    )
    parser.add_argument("--no-jax", action="store_true", help="leave JAX out even where it is installed")
    args = parser.parse_args(argv)

    backend = None if args.no_jax else _jax_backend()
    if backend is not None:
        jax = sys.modules["jax"]
        print(f"JAX {jax.__version__}, device {jax.devices()[0]}")
    else:
        print("JAX not used: only the NumPy columns are measured")
    print(f"NumPy {np.__version__}; medians of {args.repeats} repetitions, milliseconds\n")

    header = ("size", "NumPy ensure_numpy", "CPU JAX ensure_numpy", "np.array copy", "copy / JAX", "no copy")
    rows: list[tuple[str, ...]] = []
    goal_ratio: float | None = None
    for n in args.sizes:
        data = np.random.default_rng(n).random((n, n))
        numpy_t = _median_seconds(_constant(data), ensure_numpy, args.repeats)
        copy_t = _median_seconds(_constant(data), _copy, args.repeats)
        jax_t: float | None = None
        ratio = "-"
        shared = "-"
        if backend is not None:
            jax_t = _median_seconds(_fresh_jax(backend, data), ensure_numpy, args.repeats)
            probe = _fresh_jax(backend, data)()
            shared = "yes" if ensure_numpy(probe).ctypes.data == probe.unsafe_buffer_pointer() else "NO"
            ratio_value = copy_t / jax_t
            ratio = f"{ratio_value:.1f}x" if ratio_value < 10 else f"{ratio_value:.0f}x"
            if n == GOAL_SIZE:
                goal_ratio = ratio_value
        rows.append((f"{n}x{n}", _ms(numpy_t), _ms(jax_t), _ms(copy_t), ratio, shared))

    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    print("| " + " | ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)) + " |")
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for row in rows:
        print("| " + " | ".join(c.rjust(w) for c, w in zip(row, widths, strict=True)) + " |")

    goal = f"goal: a {GOAL_SIZE}x{GOAL_SIZE} CPU JAX array converts >= {GOAL_RATIO:.0f}x faster than a copy"
    if goal_ratio is None:
        print(f"\n{goal}: not measured (needs JAX and size {GOAL_SIZE})")
        return 0
    met = goal_ratio >= GOAL_RATIO
    print(f"\n{goal}: {'met' if met else 'NOT met'} ({goal_ratio:.0f}x)")
    return 0 if met else 1


if __name__ == "__main__":
    raise SystemExit(main())
