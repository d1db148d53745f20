"""The compiled NumPyro NUTS sampler of :func:`xpcs_fit.bayes.fit_g2_bayes` (JAX only).

Imports JAX and NumPyro at module level: only :mod:`xpcs_fit.bayes` imports this module,
after it has checked that the JAX backend is active.

One ``jit``-compiled function per static configuration (model, draws, chains, chain
method, NUTS settings) runs the whole job: the model's initialisation through
:func:`numpyro.infer.init_to_value` (constrained values in, NumPyro maps them to the
unconstrained space), warmup and sampling in one ``lax.scan`` over NumPyro's NUTS
kernel, and the map of the draws back to the constrained space. The data, the bounds and
the initial values are arguments of the compiled function, so a new data set of the same
shape reuses it (and JAX's persistent compilation cache can serve it in a new process).
This is several times faster on CPU than ``numpyro.infer.MCMC``, which compiles again at
every call and runs the model's initialisation op by op.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpyro
import numpyro.distributions as dist
from numpyro.infer import init_to_value
from numpyro.infer.hmc import hmc
from numpyro.infer.util import initialize_model

from xpcs_fit.models import PARAM_NAMES, g2_model

__all__ = ["LOG_UNIFORM", "ChainOutput", "sampler"]

LOG_UNIFORM = frozenset({"tau", "tau1", "tau2"})
"""Parameters with a log-uniform prior (relaxation times); the others are uniform."""


class ChainOutput(NamedTuple):
    """What the compiled sampler returns, each with a leading chain axis."""

    draws: dict[str, Any]
    """name -> ``(n_chains, n_samples, n_bins)`` constrained draws after warmup."""
    start: dict[str, Any]
    """name -> ``(n_chains, n_bins)``: the sampler's initial state mapped to constrained values."""
    valid_start: Any
    """``(n_chains,)`` True where the initial state had a finite potential and gradient."""
    energy: Any
    """``(n_chains, n_samples)`` Hamiltonian energy of each draw."""
    diverging: Any
    """``(n_chains, n_samples)`` True for divergent transitions."""
    num_steps: Any
    """``(n_chains, n_samples)`` leapfrog steps of each transition."""
    accept_prob: Any
    """``(n_chains, n_samples)`` mean acceptance probability of each transition's tree."""
    step_size: Any
    """``(n_chains,)`` adapted step size."""


def _numpyro_model(b: Any, model: str) -> Callable[..., None]:
    names = PARAM_NAMES[model]

    def g2_posterior(delay: Any, g2: Any, g2_err: Any, low: Any, high: Any) -> None:
        with numpyro.plate("q", g2.shape[0]):
            cols = []
            for k, name in enumerate(names):
                prior = dist.LogUniform if name in LOG_UNIFORM else dist.Uniform
                cols.append(numpyro.sample(name, prior(low[k], high[k])))
            mu = g2_model(b, model, delay, jnp.stack(cols, axis=-1))
            numpyro.sample("g2", dist.Normal(mu, g2_err).to_event(1), obs=g2)

    return g2_posterior


_backends: dict[str, Any] = {}


def sampler(
    b: Any,
    model: str,
    num_warmup: int,
    num_samples: int,
    num_chains: int,
    chain_method: str,
    target_accept_prob: float,
    max_tree_depth: int,
) -> Callable[..., ChainOutput]:
    """Compiled ``run(keys (n_chains, 2), delay (n_delay,), g2 (n_bins, n_delay), g2_err,
    low (n_params,), high (n_params,), init {name: (n_bins,)}) -> ChainOutput``.

    ``chain_method``: ``"parallel"`` (``pmap``, one chain per device), ``"sequential"``
    (``lax.map`` inside one program) or ``"vectorized"`` (``vmap``).
    """
    # Backend instances of one class are interchangeable (their operations hold no state):
    # keyed by class, the compiled sampler survives xpcs_device.reset_backend().
    kind = f"{type(b).__module__}.{type(b).__qualname__}"
    _backends.setdefault(kind, b)
    return _sampler(
        kind, model, num_warmup, num_samples, num_chains, chain_method, target_accept_prob, max_tree_depth
    )


@functools.lru_cache(maxsize=32)
def _sampler(
    kind: str,
    model: str,
    num_warmup: int,
    num_samples: int,
    num_chains: int,
    chain_method: str,
    target_accept_prob: float,
    max_tree_depth: int,
) -> Callable[..., ChainOutput]:
    b = _backends[kind]
    g2_posterior = _numpyro_model(b, model)

    def one_chain(key: Any, delay: Any, g2: Any, g2_err: Any, low: Any, high: Any, init: Any) -> ChainOutput:
        key_init, key_run = jax.random.split(key)
        info = initialize_model(
            key_init,
            g2_posterior,
            init_strategy=init_to_value(values=init),
            model_args=(delay, g2, g2_err, low, high),
        )
        init_kernel, sample_kernel = hmc(info.potential_fn, algo="NUTS")
        state = init_kernel(
            info.param_info,
            num_warmup,
            target_accept_prob=target_accept_prob,
            max_tree_depth=max_tree_depth,
            rng_key=key_run,
        )

        # NumPyro's kernel adapts during the first num_warmup calls and samples after, so
        # one scan holds one copy of the (large) NUTS program.
        def step(state: Any, _: None) -> tuple[Any, tuple[Any, ...]]:
            state = sample_kernel(state)
            return state, (state.z, state.energy, state.diverging, state.num_steps, state.accept_prob)

        state, (z, energy, diverging, num_steps, accept) = jax.lax.scan(
            step, state, None, length=num_warmup + num_samples
        )
        z = {name: v[num_warmup:] for name, v in z.items()}
        draws = jax.vmap(info.postprocess_fn)(z)
        start = info.postprocess_fn(info.param_info.z)
        valid = jnp.isfinite(info.param_info.potential_energy) & jnp.all(
            jnp.stack([jnp.all(jnp.isfinite(g)) for g in info.param_info.z_grad.values()])
        )
        return ChainOutput(
            draws={k: v for k, v in draws.items() if k in PARAM_NAMES[model]},
            start={k: v for k, v in start.items() if k in PARAM_NAMES[model]},
            valid_start=valid,
            energy=energy[num_warmup:],
            diverging=diverging[num_warmup:],
            num_steps=num_steps[num_warmup:],
            accept_prob=accept[num_warmup:],
            step_size=state.adapt_state.step_size,
        )

    shared = (None, None, None, None, None, None)
    if chain_method == "parallel":
        run: Callable[..., ChainOutput] = jax.pmap(one_chain, in_axes=(0, *shared))
        return run
    # The NUTS program is large and its run time is loop overhead, not vectorised maths: on
    # CPU, skipping LLVM's expensive passes compiles it ~30 % faster (6-8 s -> 4-6 s on 2
    # loaded cores) at the same sampling speed.
    from xpcs_fit._xla import supported_options

    cpu = jax.default_backend() == "cpu"
    options = supported_options({"xla_llvm_disable_expensive_passes": True} if cpu else None)
    if chain_method == "vectorized":
        return jax.jit(jax.vmap(one_chain, in_axes=(0, *shared)), compiler_options=options)

    def sequential(keys: Any, *args: Any) -> ChainOutput:
        out: ChainOutput = jax.lax.map(lambda key: one_chain(key, *args), keys)
        return out

    return jax.jit(sequential, compiler_options=options)
