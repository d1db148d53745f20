"""Batched bounded g2 fits against a scipy ``curve_fit`` loop (what the APS viewer runs).

Not a test: a script that prints a table. For each model (single, stretched, double) it
simulates ``--bins`` q bins x ``--delays`` delays of Siegert g2 with noise (relaxation
times spread over the bins as tau ~ q^-2, inside the delay window), then times, in the same
run and on the same data:

- ``scipy``: a Python loop of ``scipy.optimize.curve_fit`` over the bins with the same
  bounds, sigma and starting values (its defaults otherwise: TRF, 2-point Jacobian);
- ``numpy``: ``xpcs_fit.leastsq.fit_g2`` on the NumPy backend (median of ``--repeats``);
- ``jax warm``: the same on the JAX backend once compiled (median of ``--repeats``);
- ``jax first``: the first call in a fresh interpreter with an empty persistent
  compilation cache (tracing and XLA compilation, JAX start-up excluded), and the first
  call of a fresh interpreter that finds the compiled program in the on-disk cache;
  ``cpu`` is the CPU time of that first call, which other processes on a busy machine
  inflate less than the wall time (the compile ran on one thread in our runs: wall and
  CPU time agree when the machine is idle).

It also prints the largest relative difference between the fitted parameters and
scipy's (scipy stops at its default tolerances, so expect ~1e-6, not 1e-12).
Run from the repository root:

    python tools/bench/bench_fit.py [--bins 50] [--delays 60] [--repeats 20] [--models ...]
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import importlib.util
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from typing import Any

import numpy as np

MODELS = ("single", "stretched", "double")


def np_model(model: str, t: np.ndarray[Any, Any], *p: float) -> np.ndarray[Any, Any]:
    if model == "single":
        a, tau, d = p
        return d + a * np.exp(-2 * t / tau)
    if model == "stretched":
        a, tau, c, d = p
        return d + a * np.exp(-2 * (t / tau) ** c)
    a, t1, c1, t2, c2, f, d = p
    return d + a * (f * np.exp(-((t / t1) ** c1)) + (1 - f) * np.exp(-((t / t2) ** c2))) ** 2


def simulate(
    model: str, n_bins: int, n_delays: int, seed: int = 0
) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any], np.ndarray[Any, Any]]:
    """``(delay, g2 (n_delays, n_bins), err)``: multi-tau-like delays from 1 µs to 10 s."""
    rng = np.random.default_rng(seed)
    delay = np.logspace(-6, 1, n_delays)
    q = np.linspace(1.0, 4.0, n_bins)
    tau = 0.2 / q**2  # 12 ms .. 0.2 s
    rows: dict[str, list[tuple[float, ...]]] = {
        "single": [(0.25, t, 1.0) for t in tau],
        "stretched": [(0.25, t, 0.8, 1.0) for t in tau],
        "double": [(0.25, t / 30, 1.0, t, 1.0, 0.4, 1.0) for t in tau],
    }
    clean = np.stack([np_model(model, delay, *row) for row in rows[model]], axis=1)
    err = 2e-3 * (1 + np.linspace(0, 2, n_delays))[:, None] * np.ones((1, n_bins))
    return delay, clean + err * rng.standard_normal(clean.shape), err


def _median_time(fn: Any, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def scipy_loop(model: str, delay: Any, g2: Any, err: Any, p0: Any) -> np.ndarray[Any, Any]:
    from scipy.optimize import curve_fit

    from xpcs_fit.models import DEFAULT_BOUNDS, PARAM_NAMES

    lo = [DEFAULT_BOUNDS[model][n][0] for n in PARAM_NAMES[model]]
    hi = [DEFAULT_BOUNDS[model][n][1] for n in PARAM_NAMES[model]]
    out = np.full((g2.shape[1], len(lo)), np.nan)
    for k in range(g2.shape[1]):
        with contextlib.suppress(RuntimeError, ValueError):  # a failed bin stays NaN
            out[k], _ = curve_fit(
                lambda t, *p: np_model(model, t, *p),
                delay,
                g2[:, k],
                p0=p0[k],
                sigma=err[:, k],
                bounds=(lo, hi),
            )
    return out


def first_call_child(args: argparse.Namespace) -> None:
    """One model's first call on JAX in this fresh interpreter, printed as JSON."""
    import xpcs_device
    from xpcs_fit.leastsq import fit_g2

    delay, g2, err = simulate(args.child, args.bins, args.delays)
    with xpcs_device.use_backend("jax") as b:
        b.block_until_ready(b.sum(b.ones(3)))  # JAX start-up is not the fit's cost
        start, cpu = time.perf_counter(), time.process_time()
        fit_g2(delay, g2, err, args.child)
        print(json.dumps({"first_s": time.perf_counter() - start, "cpu_s": time.process_time() - cpu}))


def first_call(model: str, args: argparse.Namespace, cache_dir: str) -> tuple[float, float]:
    env = dict(os.environ, XPCS_JAX_CACHE_DIR=cache_dir)
    cmd = [sys.executable, __file__, "--child", model, "--bins", str(args.bins), "--delays", str(args.delays)]
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True)
    times = json.loads(out.stdout.strip().splitlines()[-1])
    return float(times["first_s"]), float(times["cpu_s"])


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--bins", type=int, default=50)
    parser.add_argument("--delays", type=int, default=60)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--scipy-repeats", type=int, default=3)
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=MODELS)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        first_call_child(args)
        return

    import xpcs_device
    from xpcs_fit.guess import estimate_params
    from xpcs_fit.leastsq import fit_g2
    from xpcs_fit.models import DEFAULT_BOUNDS, PARAM_NAMES

    has_jax = importlib.util.find_spec("jax") is not None
    print(f"{args.bins} q bins x {args.delays} delays, bounded weighted fits; medians of {args.repeats}")
    header = (
        f"{'model':<10}{'scipy loop':>12}{'numpy':>10}{'jax warm':>10}"
        f"{'jax first':>11}{'(cpu)':>8}{'(cached)':>10}"
        f"{'scipy/np':>10}{'scipy/jax':>11}{'ok':>5}{'max |Δp|/p':>12}"
    )
    print(header)
    for model in args.models:
        delay, g2, err = simulate(model, args.bins, args.delays)
        names = PARAM_NAMES[model]
        with xpcs_device.use_backend("numpy") as nb:
            lo = np.array([DEFAULT_BOUNDS[model][n][0] for n in names])
            hi = np.array([DEFAULT_BOUNDS[model][n][1] for n in names])
            p0 = np.asarray(estimate_params(nb, model, delay, g2.T, lo, hi))  # the same start for scipy
            result = fit_g2(delay, g2, err, model)
            numpy_s = _median_time(functools.partial(fit_g2, delay, g2, err, model), args.repeats)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            reference = scipy_loop(model, delay, g2, err, p0)
            scipy_s = _median_time(
                functools.partial(scipy_loop, model, delay, g2, err, p0), args.scipy_repeats
            )
        jax_s = first_s = first_cpu_s = cached_s = float("nan")
        if has_jax:
            with xpcs_device.use_backend("jax") as jb:
                jb.block_until_ready(jb.sum(jb.ones(3)))
                fit_g2(delay, g2, err, model)
                jax_s = _median_time(functools.partial(fit_g2, delay, g2, err, model), args.repeats)
            with tempfile.TemporaryDirectory() as cache:
                first_s, first_cpu_s = first_call(model, args, cache)
                cached_s, _ = first_call(model, args, cache)
        ok = result.success & np.all(np.isfinite(reference), axis=1)
        diff = (
            float(np.max(np.abs(result.params[ok] - reference[ok]) / np.abs(reference[ok])))
            if ok.any()
            else np.nan
        )
        print(
            f"{model:<10}{scipy_s * 1e3:>10.1f}ms{numpy_s * 1e3:>8.1f}ms{jax_s * 1e3:>8.2f}ms"
            f"{first_s:>10.2f}s{first_cpu_s:>7.2f}s{cached_s:>9.2f}s"
            f"{scipy_s / numpy_s:>9.1f}x{scipy_s / jax_s:>10.1f}x"
            f"{int(result.success.sum()):>5}{diff:>12.1e}"
        )


if __name__ == "__main__":
    main()
