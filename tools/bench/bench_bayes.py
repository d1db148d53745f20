"""NUTS posterior of every q bin: xpcs_fit.bayes.fit_g2_bayes against numpyro.infer.MCMC.

Not a test: a script that prints a table. The data set is ``--bins`` q bins x ``--delays``
log-spaced delays of simulated Siegert data (``--model``, known parameters, absolute
noise ``--noise``). Both sides sample the same joint NumPyro model of all bins (the
priors of :mod:`xpcs_fit.bayes`, ``g2_model`` of :mod:`xpcs_fit.models`), warm-started at
the same least-squares values with ``init_to_value``, ``--warmup`` + ``--samples`` draws
per chain, chains one after the other:

- ``xpcs``: :func:`xpcs_fit.bayes.fit_g2_bayes` (least-squares warm start, one compiled
  program for initialisation, warmup and sampling, diagnostics included);
- ``numpyro MCMC``: ``numpyro.infer.MCMC(NUTS(...), chain_method="sequential")``, the usual
  way (given the least-squares values, so its time excludes the least-squares fit);
- ``xpcs, 2 host devices`` (with ``--chains`` >= 2): ``fit_g2_bayes`` with
  ``XLA_FLAGS=--xla_force_host_platform_device_count=<chains>``, chains in parallel
  (``pmap``), one per CPU device.

Every measurement runs in a fresh interpreter with JAX's persistent compilation cache off
(``XPCS_JAX_CACHE_DIR=off``), so ``first`` includes all compilation; ``second`` is a call
on a new data set of the same shape in the same process (compiled code reused), and
``first - second`` estimates the compilation. The ``xpcs, cache warm`` row runs in a fresh
process whose persistent cache a previous process filled (what a user sees from the
second session on). Medians over ``--repeats`` processes. Run from the repository root:

    python tools/bench/bench_bayes.py [--model single] [--bins 50] [--delays 60]
        [--warmup 500] [--samples 1000] [--chains 1 2] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Any

import numpy as np

MODELS = ("single", "stretched", "double")


def simulate(model: str, n_bins: int, n_delay: int, noise: float, seed: int) -> tuple[Any, Any, Any]:
    """``(delay (n_delay,), g2 (n_delay, n_bins), g2_err)``: relaxation times log-spaced over
    the delay window like a diffusive tau ∝ q^-2 over a decade of q."""
    delay = np.logspace(-5, 1, n_delay)
    tau = np.logspace(-3.5, 0.5, n_bins)[None, :]
    t = delay[:, None]
    if model == "single":
        g2 = 1.0 + 0.2 * np.exp(-2 * t / tau)
    elif model == "stretched":
        g2 = 1.0 + 0.2 * np.exp(-2 * (t / tau) ** 0.8)
    else:  # well separated components: a decade apart, equal weights
        g2 = 1.0 + 0.2 * (0.5 * np.exp(-t / (tau / 3)) + 0.5 * np.exp(-t / (tau * 3))) ** 2
    rng = np.random.default_rng(seed)
    return delay, g2 + rng.normal(scale=noise, size=g2.shape), np.full(g2.shape, noise)


def _xpcs(args: argparse.Namespace, data: list[tuple[Any, Any, Any]]) -> dict[str, Any]:
    import xpcs_device
    from xpcs_fit.bayes import fit_g2_bayes
    from xpcs_fit.leastsq import fit_g2

    xpcs_device.set_backend("jax")
    out: dict[str, Any] = {}
    for label, (delay, g2, err) in zip(("first", "second"), data, strict=True):
        start = time.perf_counter()
        post = fit_g2_bayes(
            delay, g2, err, model=args.model, num_warmup=args.warmup, num_samples=args.samples,
            num_chains=args.chains, seed=0,
        )  # fmt: skip
        out[label] = time.perf_counter() - start
    with xpcs_device.use_backend("numpy"):  # where fit_g2_bayes runs its warm start
        start = time.perf_counter()
        fit_g2(delay, g2, err, model=args.model)
        out["lsq_s"] = time.perf_counter() - start
    out.update(
        chain_method=post.chain_method,
        r_hat_max=float(np.nanmax(post.r_hat)),
        ess_bulk_min=float(np.nanmin(post.ess_bulk)),
        divergences=int(post.divergences.sum()),
        bfmi_min=float(post.bfmi.min()),
        steps=float(post.mean_num_steps.mean()),
        failed_lsq=sum(not s.startswith("least squares") for s in post.init_source),
    )
    return out


def _numpyro(args: argparse.Namespace, data: list[tuple[Any, Any, Any]]) -> dict[str, Any]:
    import jax
    import jax.numpy as jnp
    import numpyro
    import numpyro.distributions as dist
    from numpyro.infer import MCMC, NUTS, init_to_value

    import xpcs_device
    from xpcs_fit.leastsq import fit_g2
    from xpcs_fit.models import DEFAULT_BOUNDS, PARAM_NAMES, g2_model

    b = xpcs_device.set_backend("jax")
    names = PARAM_NAMES[args.model]
    bounds = DEFAULT_BOUNDS[args.model]

    def model(delay: Any, g2: Any, err: Any) -> None:
        with numpyro.plate("q", g2.shape[0]):
            cols = [
                numpyro.sample(n, (dist.LogUniform if n.startswith("tau") else dist.Uniform)(*bounds[n]))
                for n in names
            ]
            mu = g2_model(b, args.model, delay, jnp.stack(cols, axis=-1))
            numpyro.sample("g2", dist.Normal(mu, err).to_event(1), obs=g2)

    out: dict[str, Any] = {}
    for label, (delay, g2, err) in zip(("first", "second"), data, strict=True):
        with xpcs_device.use_backend("numpy"):
            lsq = fit_g2(delay, g2, err, model=args.model)
        init = {n: jnp.asarray(np.clip(lsq.params[:, k], *bounds[n])) for k, n in enumerate(names)}
        start = time.perf_counter()
        mcmc = MCMC(
            NUTS(model, init_strategy=init_to_value(values=init)),
            num_warmup=args.warmup, num_samples=args.samples, num_chains=args.chains,
            chain_method="sequential", progress_bar=False,
        )  # fmt: skip
        mcmc.run(jax.random.PRNGKey(0), jnp.asarray(delay), jnp.asarray(g2.T), jnp.asarray(err.T))
        b.block_until_ready(mcmc.get_samples())
        out[label] = time.perf_counter() - start
    return out


def child(args: argparse.Namespace) -> None:
    """One measurement in this fresh process, printed as one JSON line."""
    data = [simulate(args.model, args.bins, args.delays, args.noise, seed) for seed in (1, 2)]
    out = _numpyro(args, data) if args.child == "numpyro" else _xpcs(args, data)
    out["load"] = os.getloadavg()[0]
    print(json.dumps(out))


def run_child(args: argparse.Namespace, which: str, chains: int, env: dict[str, str]) -> dict[str, Any]:
    command = [sys.executable, __file__, "--child", which, "--model", args.model, "--bins", str(args.bins)]
    command += ["--delays", str(args.delays), "--warmup", str(args.warmup), "--samples", str(args.samples)]
    command += ["--chains", str(chains), "--noise", str(args.noise)]
    done = subprocess.run(command, capture_output=True, text=True, check=False, env={**os.environ, **env})
    if done.returncode != 0:
        raise SystemExit(f"{which} child failed:\n{done.stdout}\n{done.stderr}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", choices=MODELS, default="single")
    parser.add_argument("--bins", type=int, default=50)
    parser.add_argument("--delays", type=int, default=60)
    parser.add_argument("--noise", type=float, default=0.005, help="absolute g2 noise (one sigma)")
    parser.add_argument("--warmup", type=int, default=500)
    parser.add_argument("--samples", type=int, default=1000)
    parser.add_argument("--chains", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--repeats", type=int, default=3, help="fresh processes per row")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        args.chains = args.chains[0]
        child(args)
        return

    cold = {"XPCS_JAX_CACHE_DIR": "off"}
    print(
        f"NUTS, {args.model} model, {args.bins} q x {args.delays} delays, {args.warmup} + {args.samples} "
        f"draws per chain; medians of {args.repeats} fresh processes (s); first call includes compilation"
    )
    header = "| chains | sampler | first s | second s | compile s (first - second) | numpyro MCMC / xpcs |"
    print(header)
    print("|" + "---|" * (header.count("|") - 1))
    for chains in args.chains:
        rows: dict[str, list[dict[str, Any]]] = {}
        for _ in range(args.repeats):
            rows.setdefault("xpcs", []).append(run_child(args, "xpcs", chains, cold))
            rows.setdefault("numpyro MCMC", []).append(run_child(args, "numpyro", chains, cold))
            with tempfile.TemporaryDirectory() as cache:
                run_child(args, "xpcs", chains, {"XPCS_JAX_CACHE_DIR": cache})  # fills the cache
                rows.setdefault("xpcs, cache warm", []).append(
                    run_child(args, "xpcs", chains, {"XPCS_JAX_CACHE_DIR": cache})
                )
            if chains > 1:
                flags = f"--xla_force_host_platform_device_count={chains}"
                rows.setdefault(f"xpcs, {chains} host devices", []).append(
                    run_child(args, "xpcs", chains, {**cold, "XLA_FLAGS": flags})
                )
        med = {
            name: {key: statistics.median(x[key] for x in r) for key in ("first", "second", "load")}
            for name, r in rows.items()
        }
        ref = med["numpyro MCMC"]["first"]
        for name, m in med.items():
            print(
                f"| {chains} | {name} | {m['first']:.2f} | {m['second']:.2f} | "
                f"{m['first'] - m['second']:.2f} | {ref / m['first']:.1f}x |"
            )
        x = rows["xpcs"][-1]
        print(
            f"|   | xpcs diagnostics (last run) | chain method {x['chain_method']}, r_hat max "
            f"{x['r_hat_max']:.3f}, ESS bulk min {x['ess_bulk_min']:.0f}, divergences {x['divergences']}, "
            f"BFMI min {x['bfmi_min']:.2f}, mean leapfrog steps {x['steps']:.1f}, least-squares warm "
            f"start {x['lsq_s'] * 1e3:.0f} ms, bins started at the prior median {x['failed_lsq']}; "
            f"load average {statistics.median(r['load'] for rs in rows.values() for r in rs):.1f} | | | |"
        )


if __name__ == "__main__":
    main()
