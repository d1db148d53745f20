"""Bayesian fits of g2 models to every q bin at once with NumPyro's NUTS (JAX backend only).

:func:`fit_g2_bayes` samples the posterior of one g2 model (:mod:`xpcs_fit.models`, the
same parameterisation as the least-squares fit) for all q bins in a single vectorised
NumPyro model: every parameter has a leading bin axis, the bins are independent.

Model, per bin and delay ``τ_i`` (s)::

    g2_i ~ Normal(g2_model(τ_i; θ), g2_err_i)          (g2_err taken as absolute)
    tau, tau1, tau2 ~ LogUniform(low, high)             (density ∝ 1/tau on the bounds)
    contrast, beta*, fraction, baseline ~ Uniform(low, high)

with ``(low, high)`` the bounds (:data:`xpcs_fit.models.DEFAULT_BOUNDS`, or ``bounds``).
Why these priors: they say no more than the bounds the least-squares fit uses, so both
fits answer the same question. Relaxation times are scale parameters whose bounds span
many decades (1e-5 to 100 s by default): a uniform prior would put 99.9 % of its mass
above 0.1 s and pull poorly constrained bins to long times, while the log-uniform
(scale-invariant, Jeffreys) prior is flat per decade, like the log-spaced multi-tau
delays. The other parameters live on short, fixed ranges where flat is neutral. On
well-determined bins the likelihood dominates and the posterior mean agrees with least
squares within the errors.

Warm start: the least-squares fit (:func:`xpcs_fit.leastsq.fit_g2`, same bounds, run on the
NumPy backend, which needs no compilation) gives each chain's initial values through
:func:`numpyro.infer.init_to_value`, in the constrained space (NumPyro maps them to the
unconstrained space; :attr:`G2Posterior.start` records the sampler's initial state mapped
back, which equals :attr:`G2Posterior.init`). A bin whose least squares failed starts at
the prior median (middle of the bounds, geometric middle for the relaxation times); a
value on a bound is moved ``1e-4`` of the range inside (the unconstrained image of a bound
is infinite); :attr:`G2Posterior.init_source` says which.

Double model: the two components can swap (``tau1 ↔ tau2``, ``fraction ↔ 1 - fraction``);
the warm start keeps the chains on the least-squares labelling, but a bin whose two times
are close may switch, which shows as a large ``r_hat``.

Diagnostics (:mod:`xpcs_fit.diagnostics`): rank-normalised split ``r_hat``, bulk and tail
ESS per bin and parameter; divergences, E-BFMI, mean leapfrog steps per chain (these are
properties of the joint trajectory of all bins, hence per chain, not per bin).

Chains: ``chain_method="auto"`` runs them in parallel (``pmap``) where
``jax.local_device_count() >= num_chains`` (several GPUs, or a CPU split with
``XLA_FLAGS=--xla_force_host_platform_device_count=N`` set before JAX starts), else one
after the other inside one compiled program. On a CPU device, one after the other is the
fast choice: ``vmap``-ed chains run their trees in lock step (every chain waits for the
deepest tree), measured 3x slower than sequential for 2 chains of the 50-bin problem on
2 cores.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, cast

import numpy as np

import xpcs_device
from xpcs_fit import diagnostics
from xpcs_fit.leastsq import G2Fit, _as_float_array, _check_delay, fit_g2, resolve_bounds
from xpcs_fit.models import PARAM_NAMES, check_model

__all__ = ["G2Posterior", "JaxBackendRequiredError", "fit_g2_bayes"]

FloatArray = np.ndarray[Any, np.dtype[np.float64]]
ChainMethod = Literal["auto", "parallel", "sequential", "vectorized"]
_CHAIN_METHODS = ("auto", "parallel", "sequential", "vectorized")
_LOG_UNIFORM = frozenset({"tau", "tau1", "tau2"})  # the relaxation times (see _nuts.LOG_UNIFORM)
_INSIDE = 1e-4  # fraction of a bound's range by which an initial value on the bound moves in


class JaxBackendRequiredError(RuntimeError):
    """Raised when a function that needs the JAX backend (NumPyro) runs on another backend."""


@dataclass(frozen=True, eq=False)
class G2Posterior:
    """Posterior summary of one g2 model for ``n_bins`` q bins (NumPy arrays, read-only).

    Per-bin arrays are ``(n_bins, n_params)`` with columns in ``param_names`` order, NaN in
    the rows of bins that were not sampled (``success`` False, see ``reasons``). ``tau*``
    in the unit of the delays (s).
    """

    model: str
    param_names: tuple[str, ...]
    mean: FloatArray
    """Posterior mean."""
    std: FloatArray
    """Posterior standard deviation."""
    median: FloatArray
    """Posterior median."""
    ci68: FloatArray
    """``(n_bins, n_params, 2)`` central 68 % interval (16 % and 84 % quantiles)."""
    ci95: FloatArray
    """``(n_bins, n_params, 2)`` central 95 % interval (2.5 % and 97.5 % quantiles)."""
    r_hat: FloatArray
    """Rank-normalised split R̂ (values above ~1.01: the chains disagree)."""
    ess_bulk: FloatArray
    """Bulk effective sample size (over all chains)."""
    ess_tail: FloatArray
    """Tail effective sample size (5 % and 95 % quantiles)."""
    divergences: np.ndarray[Any, np.dtype[np.int64]]
    """``(n_chains,)`` divergent transitions after warmup."""
    bfmi: FloatArray
    """``(n_chains,)`` energy Bayesian fraction of missing information (below ~0.3: poor)."""
    mean_num_steps: FloatArray
    """``(n_chains,)`` mean leapfrog steps per draw."""
    step_size: FloatArray
    """``(n_chains,)`` adapted NUTS step size (unconstrained space)."""
    init: FloatArray
    """``(n_bins, n_params)`` initial values given to ``init_to_value`` (constrained)."""
    init_source: tuple[str, ...]
    """Per bin: ``"least squares"``, ``"least squares, moved inside the bounds"``,
    ``"given"``, or ``"prior median (...)"`` with why least squares could not be used."""
    start: FloatArray = field(repr=False)
    """``(n_chains, n_bins, n_params)``: the sampler's initial state, mapped from the
    unconstrained space back to parameter values (equals ``init``)."""
    success: np.ndarray[Any, np.dtype[np.bool_]] = field(repr=False)
    """``(n_bins,)`` True where the bin was sampled."""
    reasons: tuple[str | None, ...] = field(repr=False)
    """Per bin: None when sampled, else why not (invalid data)."""
    bounds: dict[str, tuple[float, float]] = field(repr=False)
    """The prior bounds per parameter."""
    priors: dict[str, str] = field(repr=False)
    """The prior of each parameter, in words."""
    lsq: G2Fit | None = field(repr=False)
    """The least-squares fit used for the warm start (None if ``init`` gave every value)."""
    samples: FloatArray | None = field(repr=False)
    """``(n_chains, n_samples, n_bins, n_params)`` draws, or None (``keep_samples=False``)."""
    num_warmup: int = 0
    num_samples: int = 0
    num_chains: int = 0
    chain_method: str = ""
    seed: int = 0

    def value(self, name: str) -> FloatArray:
        """``(n_bins,)`` posterior means of the parameter ``name``."""
        return self.mean[:, self._index(name)]

    def error(self, name: str) -> FloatArray:
        """``(n_bins,)`` posterior standard deviations of the parameter ``name``."""
        return self.std[:, self._index(name)]

    def interval(self, name: str, level: Literal[68, 95] = 68) -> FloatArray:
        """``(n_bins, 2)`` central interval of ``name`` at ``level`` % (68 or 95)."""
        if level not in (68, 95):
            raise ValueError(f"level must be 68 or 95 (per cent), got {level!r}")
        return (self.ci68 if level == 68 else self.ci95)[:, self._index(name)]

    def converged(
        self, max_r_hat: float = 1.01, min_ess: float = 100.0
    ) -> np.ndarray[Any, np.dtype[np.bool_]]:
        """``(n_bins,)`` True where every parameter has ``r_hat <= max_r_hat`` and bulk and
        tail ESS ``>= min_ess`` (divergences and BFMI are per chain: check them apart)."""
        ok = (self.r_hat <= max_r_hat) & (self.ess_bulk >= min_ess) & (self.ess_tail >= min_ess)
        return np.asarray(ok.all(axis=1) & self.success)

    def _index(self, name: str) -> int:
        if name not in self.param_names:
            raise KeyError(f"the {self.model!r} model has no parameter {name!r}; it has {self.param_names}")
        return self.param_names.index(name)


# ------------------------------------------------------------------------- checks
def _require_jax() -> Any:
    backend = xpcs_device.get_backend()
    if backend.name != "jax":
        raise JaxBackendRequiredError(
            f"fit_g2_bayes runs NumPyro, which needs the JAX backend, but the active backend is "
            f"{backend.name!r}. Install it (pip install 'xpcs-fit[jax]') and select it: set "
            "XPCS_USE_JAX=1 before starting Python, or call xpcs_device.set_backend('jax') "
            "(or use `with xpcs_device.use_backend('jax'):`). For a fit on the NumPy backend use "
            "xpcs_fit.leastsq.fit_g2."
        )
    return backend


def _check_data(delay: Any, g2: Any, g2_err: Any) -> tuple[FloatArray, FloatArray, FloatArray]:
    t = _check_delay(delay)
    y = _as_float_array(g2, "g2")
    y = y[:, None] if y.ndim == 1 else y
    if y.ndim != 2 or y.shape[0] != t.size or y.shape[1] == 0:
        raise ValueError(
            f"g2 must have shape (n_delay, n_bins) = ({t.size}, n_bins) to match delay, got {np.shape(g2)}"
        )
    if g2_err is None:
        raise ValueError("g2_err is required: the likelihood is Gaussian with standard deviation g2_err")
    err = _as_float_array(g2_err, "g2_err")
    err = err[:, None] if err.ndim == 1 else err
    if err.shape != y.shape:
        raise ValueError(f"g2_err must have the shape of g2 {np.shape(g2)}, got {np.shape(g2_err)}")
    return t, y, err


def _check_int(value: Any, name: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def _bad_bins(y: FloatArray, err: FloatArray) -> list[str | None]:
    reasons: list[str | None] = []
    for k in range(y.shape[1]):
        parts = []
        n_bad = int((~np.isfinite(y[:, k])).sum())
        if n_bad:
            parts.append(f"g2 has {n_bad} non-finite value(s)")
        n_bad = int((~(np.isfinite(err[:, k]) & (err[:, k] > 0))).sum())
        if n_bad:
            parts.append(f"g2_err has {n_bad} value(s) that are not positive and finite")
        reasons.append("; ".join(parts) or None)
    return reasons


# -------------------------------------------------------------------- initial values
def _prior_median(name: str, low: float, high: float) -> float:
    return math.sqrt(low * high) if name in _LOG_UNIFORM else 0.5 * (low + high)


def _move_inside(name: str, values: FloatArray, low: float, high: float) -> FloatArray:
    """``values`` at least ``_INSIDE`` of the range (in log for relaxation times) from a
    bound; values already that far inside are returned unchanged (bit for bit)."""
    if name in _LOG_UNIFORM:
        lo, hi = math.log(low), math.log(high)
        margin = _INSIDE * (hi - lo)
        moved = np.exp(np.clip(np.log(values), lo + margin, hi - margin))
        inside = (values >= math.exp(lo + margin)) & (values <= math.exp(hi - margin))
    else:
        margin = _INSIDE * (high - low)
        moved = np.clip(values, low + margin, high - margin)
        inside = (values >= low + margin) & (values <= high - margin)
    return np.asarray(np.where(inside, values, moved))


def _given_values(
    model: str, init: Mapping[str, Any], bounds: dict[str, tuple[float, float]], n_bins: int
) -> tuple[FloatArray, np.ndarray[Any, np.dtype[np.bool_]]]:
    """``(values (n_bins, n_params) with NaN where not given, given mask (n_params,))``."""
    names = PARAM_NAMES[model]
    unknown = [k for k in init if k not in names]
    if unknown:
        raise ValueError(
            f"init names unknown parameter(s) {unknown} for the {model!r} model; its parameters "
            f"are {', '.join(names)}"
        )
    values = np.full((n_bins, len(names)), np.nan)
    given = np.zeros(len(names), dtype=bool)
    for name, value in init.items():
        col = _as_float_array(value, f"init[{name!r}]")
        if col.ndim == 0:
            col = np.full(n_bins, float(col))
        if col.shape != (n_bins,):
            raise ValueError(
                f"init[{name!r}] must be a number or one value per bin ({n_bins},), got shape {col.shape}"
            )
        low, high = bounds[name]
        bad = ~(np.isfinite(col) & (col > low) & (col < high))
        if bad.any():
            raise ValueError(
                f"init[{name!r}] must lie strictly inside its bounds ({low}, {high}); "
                f"{int(bad.sum())} bin(s) do not, first bin {int(np.argmax(bad))}: {col[bad][0]!r}"
            )
        values[:, names.index(name)] = col
        given[names.index(name)] = True
    return values, given


def _initial_values(
    model: str,
    init: Any,
    bounds: dict[str, tuple[float, float]],
    n_bins: int,
    least_squares: Callable[[], G2Fit],
) -> tuple[FloatArray, list[str], G2Fit | None]:
    """``(init (n_bins, n_params), source per bin, least-squares fit or None)``."""
    names = PARAM_NAMES[model]
    lsq: G2Fit | None = None
    if isinstance(init, G2Fit):
        if init.param_names != names or init.params.shape[0] != n_bins:
            raise ValueError(
                f"init is a least-squares fit of the {init.model!r} model for {init.params.shape[0]} "
                f"bin(s); fit_g2_bayes needs one of the {model!r} model for {n_bins} bin(s)"
            )
        lsq = init
        init = {}
    elif init is None:
        init = {}
    elif not isinstance(init, Mapping):
        raise TypeError(
            f"init must be None, a dict by parameter name or a G2Fit from fit_g2, got {type(init).__name__}"
        )
    values, given = _given_values(model, init, bounds, n_bins)
    if given.all():
        return values, ["given"] * n_bins, None
    if lsq is None:
        lsq = least_squares()
    moved = np.zeros(n_bins, dtype=bool)
    for k, name in enumerate(names):
        if given[k]:
            continue
        low, high = bounds[name]
        col = np.where(lsq.success, lsq.params[:, k], _prior_median(name, low, high))
        values[:, k] = _move_inside(name, col, low, high)
        moved |= lsq.success & (values[:, k] != lsq.params[:, k])
    source = [
        f"prior median (least squares failed: {reason})"
        if not ok
        else ("least squares, moved inside the bounds" if shifted else "least squares")
        for ok, shifted, reason in zip(lsq.success.tolist(), moved.tolist(), lsq.reasons, strict=True)
    ]
    return values, source, lsq


def _least_squares(
    t: FloatArray, y: FloatArray, err: FloatArray, model: str, bounds: dict[str, tuple[float, float]]
) -> G2Fit:
    """The warm-start fit, on the NumPy backend: its vectorised solver needs no compilation
    (~20 ms for 50 bins of the single model, ~0.5 s of the double), where the first call on
    JAX compiles for seconds; both backends give the same parameters to 1e-6."""
    with xpcs_device.use_backend("numpy"):
        return fit_g2(t, y, err, model=model, bounds=bounds)


# ----------------------------------------------------------------------- the fit
def fit_g2_bayes(
    delay: Any,
    g2: Any,
    g2_err: Any,
    model: str = "single",
    num_warmup: int = 500,
    num_samples: int = 1000,
    num_chains: int = 2,
    seed: int = 0,
    bounds: Mapping[str, Any] | None = None,
    init: Mapping[str, Any] | G2Fit | None = None,
    *,
    chain_method: ChainMethod = "auto",
    target_accept_prob: float = 0.8,
    max_tree_depth: int = 10,
    keep_samples: bool = True,
) -> G2Posterior:
    """Posterior of ``model`` for every q bin of ``g2`` with NumPyro NUTS (JAX backend).

    ``delay``: ``(n_delay,)`` positive, increasing delays (s). ``g2``: ``(n_delay, n_bins)``
    or ``(n_delay,)``; ``g2_err``: its one-sigma errors, same shape (absolute: the
    likelihood's standard deviations). ``model``: ``"single"``, ``"stretched"`` or
    ``"double"``. ``num_warmup`` adaptation and ``num_samples`` kept draws per chain;
    ``num_chains`` chains (2 by default: R-hat compares chains; on one CPU device each extra
    chain adds its sampling time, ~1-2 s for 50 bins, and no compilation); ``seed``: the same
    seed gives identical draws (same machine and chain method). ``bounds``:
    ``{name: (low, high)}`` for the priors (missing names: the defaults). ``init``: None
    (warm start from :func:`~xpcs_fit.leastsq.fit_g2` with the same bounds), a
    :class:`~xpcs_fit.leastsq.G2Fit` of the same model and bins, or ``{name: value or
    (n_bins,) values}`` strictly inside the bounds (missing names from least squares).
    ``chain_method``: ``"auto"`` (parallel where there is a device per chain, else
    sequential), ``"parallel"``, ``"sequential"`` or ``"vectorized"``.
    ``keep_samples``: keep the draws in the result.

    Priors, warm start and diagnostics: see the module docstring. Bins with non-finite g2
    or non-positive errors are not sampled (NaN rows, ``success`` False, ``reasons``).
    Raises :class:`JaxBackendRequiredError` on any backend but JAX.
    """
    b = _require_jax()
    model = check_model(model)
    t, y, err = _check_data(delay, g2, g2_err)
    num_warmup = _check_int(num_warmup, "num_warmup", 1)
    num_samples = _check_int(num_samples, "num_samples", 8)
    num_chains = _check_int(num_chains, "num_chains", 1)
    max_tree_depth = _check_int(max_tree_depth, "max_tree_depth", 1)
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer):
        raise TypeError(f"seed must be an integer, got {type(seed).__name__}")
    if chain_method not in _CHAIN_METHODS:
        raise ValueError(f"chain_method must be one of {_CHAIN_METHODS}, got {chain_method!r}")
    if not 0.0 < float(target_accept_prob) < 1.0:
        raise ValueError(f"target_accept_prob must be in (0, 1), got {target_accept_prob!r}")
    names = PARAM_NAMES[model]
    used_bounds = resolve_bounds(model, bounds)

    # Imported here, after the backend check: the NumPy environment has no JAX.
    import jax

    try:
        from xpcs_fit import _nuts
    except ModuleNotFoundError as exc:
        raise ModuleNotFoundError(
            f"fit_g2_bayes needs NumPyro ({exc}); install it with pip install 'xpcs-fit[jax]'"
        ) from exc

    n_bins = y.shape[1]
    reasons = _bad_bins(y, err)
    good = np.array([r is None for r in reasons])
    if not good.any():
        raise ValueError(f"no bin has valid data: {reasons[0]}")
    init_values, init_source, lsq = _initial_values(
        model, init, used_bounds, n_bins, lambda: _least_squares(t, y, err, model, used_bounds)
    )
    if chain_method == "auto":
        parallel = num_chains > 1 and jax.local_device_count() >= num_chains
        chain_method = "parallel" if parallel else "sequential"
    elif chain_method == "parallel" and jax.local_device_count() < num_chains:
        raise ValueError(
            f"chain_method='parallel' needs a device per chain: {num_chains} chains, "
            f"{jax.local_device_count()} device(s); use 'sequential' or fewer chains"
        )

    run = _nuts.sampler(
        cast(Any, b), model, num_warmup, num_samples, num_chains, chain_method,
        float(target_accept_prob), max_tree_depth,
    )  # fmt: skip
    put = xpcs_device.place_on_device
    low = np.array([used_bounds[n][0] for n in names])
    high = np.array([used_bounds[n][1] for n in names])
    keys = jax.random.split(b.random_key(int(seed)), num_chains)
    out = run(
        keys,
        put(t),
        put(np.ascontiguousarray(y[:, good].T)),
        put(np.ascontiguousarray(err[:, good].T)),
        put(low),
        put(high),
        {n: put(init_values[good, k]) for k, n in enumerate(names)},
    )
    host = jax.device_get(out)
    if not np.all(host.valid_start):
        raise RuntimeError(
            "NUTS could not start: the log posterior or its gradient is not finite at the initial "
            "values; check g2 and g2_err for extreme values, or give init inside the bounds"
        )
    # (n_chains, n_samples, n_good, n_params), NaN rows for the bins not sampled
    good_draws = np.stack([np.asarray(host.draws[n]) for n in names], axis=-1)
    draws = np.full((num_chains, num_samples, n_bins, len(names)), np.nan)
    draws[:, :, good] = good_draws
    start = np.full((num_chains, n_bins, len(names)), np.nan)
    start[:, good] = np.stack([np.asarray(host.start[n]) for n in names], axis=-1)
    return _summarise(
        model=model,
        draws=draws,
        good=good,
        host=host,
        init_values=init_values,
        init_source=init_source,
        start=start,
        reasons=reasons,
        bounds=used_bounds,
        lsq=lsq,
        keep_samples=keep_samples,
        settings=(num_warmup, num_samples, num_chains, chain_method, int(seed)),
    )


def _summarise(
    *,
    model: str,
    draws: FloatArray,
    good: np.ndarray[Any, np.dtype[np.bool_]],
    host: Any,
    init_values: FloatArray,
    init_source: list[str],
    start: FloatArray,
    reasons: list[str | None],
    bounds: dict[str, tuple[float, float]],
    lsq: G2Fit | None,
    keep_samples: bool,
    settings: tuple[int, int, int, str, int],
) -> G2Posterior:
    names = PARAM_NAMES[model]
    n_bins = draws.shape[2]
    shape = (n_bins, len(names))
    stats = {k: np.full(shape, np.nan) for k in ("mean", "std", "median", "r_hat", "ess_bulk", "ess_tail")}
    ci68 = np.full((*shape, 2), np.nan)
    ci95 = np.full((*shape, 2), np.nan)
    chains = draws[:, :, good]  # (n_chains, n_samples, n_good, n_params)
    pooled = chains.reshape(-1, *chains.shape[2:])
    stats["mean"][good] = pooled.mean(axis=0)
    stats["std"][good] = pooled.std(axis=0, ddof=1)
    q = np.quantile(pooled, [0.5, 0.16, 0.84, 0.025, 0.975], axis=0)
    stats["median"][good] = q[0]
    ci68[good] = np.moveaxis(q[1:3], 0, -1)
    ci95[good] = np.moveaxis(q[3:5], 0, -1)
    stats["r_hat"][good] = diagnostics.rhat(chains)
    stats["ess_bulk"][good] = diagnostics.ess_bulk(chains)
    stats["ess_tail"][good] = diagnostics.ess_tail(chains)
    priors = {
        n: f"{'log-uniform' if n in _LOG_UNIFORM else 'uniform'}({bounds[n][0]:g}, {bounds[n][1]:g})"
        for n in names
    }
    num_warmup, num_samples, num_chains, chain_method, seed = settings
    samples = draws if keep_samples else None
    result_arrays = [*stats.values(), ci68, ci95, init_values, start, good]
    if samples is not None:
        result_arrays.append(samples)
    for arr in result_arrays:
        arr.flags.writeable = False
    return G2Posterior(
        model=model,
        param_names=names,
        mean=stats["mean"],
        std=stats["std"],
        median=stats["median"],
        ci68=ci68,
        ci95=ci95,
        r_hat=stats["r_hat"],
        ess_bulk=stats["ess_bulk"],
        ess_tail=stats["ess_tail"],
        divergences=np.asarray(host.diverging).sum(axis=1).astype(np.int64),
        bfmi=diagnostics.bfmi(host.energy),
        mean_num_steps=np.asarray(host.num_steps, dtype=np.float64).mean(axis=1),
        step_size=np.asarray(host.step_size, dtype=np.float64),
        init=init_values,
        init_source=tuple(init_source),
        start=start,
        success=good,
        reasons=tuple(reasons),
        bounds=bounds,
        priors=priors,
        lsq=lsq,
        samples=samples,
        num_warmup=num_warmup,
        num_samples=num_samples,
        num_chains=num_chains,
        chain_method=chain_method,
        seed=seed,
    )
