"""Batched, bounded, weighted Levenberg-Marquardt: one compiled function fits every bin.

All bins advance together in one ``while_loop`` (a bin that has converged is frozen), so
the work is a handful of small batched array operations per iteration on any backend:
no per-bin Python loop on NumPy, one ``jit``-compiled loop on JAX (the batched form of
what ``vmap`` of a per-bin solver would give, without the per-bin dispatch).

Bounds are handled by projection with an active set: a step is clipped into the box, and
a parameter sitting on a bound whose gradient pushes it outwards is held for that step
(its row and column are taken out of the normal equations), so a minimum on a bound is
reached exactly, as scipy's bounded solvers do. Damping is Marquardt's (scaled by the
running maximum of the normal matrix's diagonal), so parameters of very different
magnitudes (tau in seconds, contrast) need no rescaling.

The covariance is ``(Jᵀ W² J)⁻¹`` over the free parameters at the solution, bounds
ignored, times ``chi2_red`` unless ``absolute_sigma`` (scipy ``curve_fit``'s convention).
It is computed after the loop on the host, in NumPy, from the normal matrix the loop
returns (``n_bins`` tiny systems: microseconds), as are the status codes; so is the initial
guess (:mod:`xpcs_fit.guess`), before. The compiled program holds the iterations only,
which keeps its compile time (what the first fit of a session waits for) small.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, cast

import numpy as np

import xpcs_device
from xpcs_fit.models import PARAM_NAMES, g2_value_and_jacobian
from xpcs_protocol import Array, BackendProtocol

__all__ = [
    "CPU_COMPILER_OPTIONS",
    "STATUS_MESSAGES",
    "covariance_and_status",
    "host_backend",
    "run_fit",
    "solver",
]

# Status codes of a bin (:func:`covariance_and_status`); the reasons are written by the callers.
OK, INVALID, NO_CONVERGENCE, SINGULAR, NOT_FINITE = 0, 1, 2, 3, 4
STATUS_MESSAGES = {
    NO_CONVERGENCE: "no convergence within max_iter iterations",
    SINGULAR: "singular covariance: a free parameter is not determined by the data "
    "(fix it or change the model)",
    NOT_FINITE: "the fit produced non-finite values",
}

# A bin whose damping has grown this large cannot lower its cost by any step: it sits at a
# minimum to rounding precision.
_LAMBDA_MAX = 1e16
# Variance inflation (largest diagonal of the inverse correlation matrix) beyond which the
# normal matrix is treated as singular: parameters correlated to better than ~1e-12.
_VIF_MAX = 1e12

PowerLawNames = ("tau0", "alpha")


def _power_law(b: BackendProtocol, x: Array, p: Array) -> tuple[Array, Array]:
    tau0, alpha = p[..., 0, None], p[..., 1, None]
    xa = b.exp(-alpha * b.log(x))
    value = tau0 * xa
    return value, b.stack([xa, -value * b.log(x)], axis=-2)


def model_and_jacobian(b: BackendProtocol, model: str, x: Array, p: Array) -> tuple[Array, Array]:
    """``(f (B, m), df/dp (B, n, m))`` of a g2 model or ``"power_law"`` (``tau0 * x**-alpha``).

    Parameters before points: on XLA CPU the products ``Jᵀ J`` then reduce along the
    contiguous axis, four times faster than with the points first."""
    if model == "power_law":
        return _power_law(b, x, p)
    return g2_value_and_jacobian(b, model, x, p, params_last=False)


def _gauss_jordan(b: BackendProtocol, m: Array, n: int, min_pivot: float) -> tuple[Array, Array]:
    """Solve batched systems ``m = [A | R]`` ``(B, n, n + k)`` with ``A`` symmetric positive
    definite and unit-diagonal: ``(A⁻¹ R (B, n, k), ok (B,))``, ``ok`` False where a pivot
    fell to ``min_pivot`` or below (the result is then meaningless).

    Such matrices need no pivoting (it is Cholesky's elimination order; pivots stay in
    (0, 1], so the eliminated rows lose no precision), so the elimination is a loop of ``n``
    rank-1 updates of elementwise operations: on XLA CPU a loop body of two small kernels,
    where LAPACK's solve / inv bring custom calls that dominated the fit's compile and run
    time (about 0.1 ms per call for 50 systems of 7 x 7). Pivot ``k`` is ``1 / VIF`` of
    parameter ``k`` among the first ``k + 1``, so ``min_pivot`` bounds the correlations.
    """
    rows = b.arange(n)

    def eliminate(k: Any, carry: tuple[Array, Array]) -> tuple[Array, Array]:
        m, ok = carry
        pivot = m[:, k, k]
        good = pivot > min_pivot
        row = m[:, k, :] / b.where(good, pivot, 1.0)[:, None]
        m = b.where((rows == k)[None, :, None], row[:, None, :], m - m[:, :, k, None] * row[:, None, :])
        return m, b.logical_and(ok, good)

    m, ok = b.fori_loop(0, n, eliminate, (m, b.ones(m.shape[:1], dtype=bool)))
    return m[:, :, n:], ok


def n_params(model: str) -> int:
    return len(PowerLawNames) if model == "power_law" else len(PARAM_NAMES[model])


def solver(
    b: BackendProtocol,
    model: str,
    free: tuple[bool, ...],
    max_iter: int,
    ftol: float,
    xtol: float,
) -> Callable[..., Any]:
    """The compiled Levenberg-Marquardt iterations of ``model`` with the free parameters
    ``free`` (one per parameter), cached per backend, device kind and settings.

    ``iterate(x (m,), y (B, m), w (B, m), p0 (B, n), lo (n,), hi (n,), skip (B,))`` returns
    ``(params (B, n), normal (B, n, n), cost (B,), converged (B,), n_iter (B,))``: ``w`` are
    the weights ``1 / sigma``, ``p0`` starting values (fixed parameters keep theirs),
    ``skip`` marks bins not to fit; ``normal`` is ``Jᵀ W² J`` and ``cost`` the weighted
    sum of squares at ``params``. :func:`covariance_and_status` turns them into errors and
    status codes; :func:`run_fit` does both.

    On JAX the program is compiled for the CPU with :data:`CPU_COMPILER_OPTIONS`; on NumPy
    it runs with floating-point warnings off, as on JAX: every non-finite outcome is caught
    and reported through the status codes.
    """
    on_cpu = b.name == "jax" and xpcs_device.get_device().kind == "cpu"
    return _build(cast(Any, b), on_cpu, model, free, max_iter, ftol, xtol)


@functools.lru_cache(maxsize=64)
def _build(  # noqa: PLR0915 - one compiled program: its steps read best in one place
    b: BackendProtocol,
    on_cpu: bool,
    model: str,
    free: tuple[bool, ...],
    max_iter: int,
    ftol: float,
    xtol: float,
) -> Callable[..., Any]:
    n = len(free)
    f64 = np.float64
    free_np = np.asarray(free, dtype=f64)

    def evaluate(x: Array, y: Array, w: Array, p: Array) -> tuple[Array, Array, Array]:
        """``(cost (B,), gradient Jᵀr (B, n), normal matrix JᵀJ (B, n, n))``, weighted."""
        f, jac = model_and_jacobian(b, model, x, p)
        r = (f - y) * w
        jac = jac * w[:, None, :]
        return b.sum(r * r, axis=-1), b.einsum("bim,bm->bi", jac, r), b.einsum("bim,bjm->bij", jac, jac)

    def kernel(  # noqa: PLR0915
        x: Array, y: Array, w: Array, p0: Array, lo: Array, hi: Array, skip: Array
    ) -> tuple[Array, Array, Array, Array, Array]:
        n_bins = y.shape[0]
        eye = b.eye(n, dtype=f64)
        free_mask = b.asarray(free_np)
        p = b.where(free_mask > 0, b.clip(p0, lo, hi), p0)
        # The loop's first trip takes no step: it evaluates the start (cost +inf before), so
        # that the model and its Jacobian appear once in the compiled program, not twice.
        cost = b.full((n_bins,), np.inf, dtype=f64)
        g = b.zeros((n_bins, n), dtype=f64)
        a = b.zeros((n_bins, n, n), dtype=f64)
        scale = b.zeros((n_bins, n), dtype=f64)
        lam = b.full((n_bins,), 1e-3, dtype=f64)
        done = b.astype(skip, bool)
        conv = b.zeros((n_bins,), dtype=bool)
        it = b.zeros((n_bins,), dtype=np.int32)
        nu = b.full((n_bins,), 2.0, dtype=f64)
        state = (p, g, a, cost, scale, lam, nu, done, conv, it, b.zeros((), dtype=np.int32))

        def cond(s: tuple[Any, ...]) -> Any:
            return b.logical_and(b.logical_not(b.all(s[7])), s[10] <= max_iter)

        def body(s: tuple[Any, ...]) -> tuple[Any, ...]:
            p, g, a, cost, scale, lam, nu, done, conv, it, k = s
            first = k == 0
            diag_a = b.einsum("bii->bi", a)
            scale = b.maximum(scale, diag_a)
            damp = lam[:, None] * b.maximum(scale, 1e-300)
            at_lo, at_hi = p <= lo, p >= hi

            def damped_step(blocked: Array) -> Array:
                # The LM step with the blocked parameters' rows and columns taken out, solved
                # in unit-diagonal (Jacobi) scaling; a failed solve is no step.
                mask = free_mask * (1.0 - b.astype(blocked, f64))
                s = b.sqrt(b.where(mask > 0, diag_a, 1.0) + damp)
                system = b.concatenate(
                    [
                        (a * (mask[:, :, None] * mask[:, None, :]) + eye * (1.0 - mask + damp)[:, None, :])
                        / (s[:, :, None] * s[:, None, :]),
                        (-(mask * g) / s)[..., None],
                    ],
                    axis=-1,
                )
                x, ok = _gauss_jordan(b, system, n, 0.0)
                return b.where(ok[:, None], x[..., 0] / s, 0.0)

            # Held: parameters on a bound that the gradient pushes outwards, then also those
            # on a bound that the step itself would push outwards (through correlations);
            # without the second pass a bin crawls along a bound for hundreds of iterations.
            blocked = b.logical_or(b.logical_and(at_lo, g > 0), b.logical_and(at_hi, g < 0))
            step = damped_step(blocked)
            outwards = b.logical_or(b.logical_and(at_lo, step < 0), b.logical_and(at_hi, step > 0))
            step = b.where(first, 0.0, damped_step(b.logical_or(blocked, outwards)))
            p_try = b.where(free_mask > 0, b.clip(p + step, lo, hi), p)
            cost_try, g_try, a_try = evaluate(x, y, w, p_try)
            active = b.logical_not(done)
            stepping = b.logical_and(active, b.logical_not(first))
            better = b.logical_and(b.isfinite(cost_try), cost_try < cost)
            accept = b.logical_and(active, better)
            # Gain ratio of the actual to the predicted (quadratic model) cost reduction of
            # the step taken (after clipping), for Nielsen's damping update.
            moved = p_try - p
            # -(2 gᵀδ + δᵀAδ) as one reduction
            predicted = -b.sum(
                moved[:, :, None] * (a * moved[:, None, :] + 2.0 * eye * g[:, None, :]), axis=(1, 2)
            )
            rho = (cost - cost_try) / b.where(predicted > 0, predicted, 1.0)
            rho = b.where(b.logical_and(predicted > 0, b.isfinite(rho)), rho, 0.0)
            # Converged: an accepted step that barely lowers the cost or barely moves the
            # parameters, or no step lowers it any more (damping at its ceiling), or ...
            small_df = (cost - cost_try) <= ftol * cost
            small_dx = b.all(b.abs(moved) <= xtol * (b.abs(p) + xtol), axis=-1)
            stalled = lam >= _LAMBDA_MAX
            # With little damping the predicted reduction is about the Gauss-Newton decrement
            # (the distance to the minimum in cost): tiny means there, even if rounding made
            # this step fail.
            at_min = b.logical_and(b.logical_and(lam <= 1.0, predicted >= 0), predicted <= ftol * cost)
            new_conv = b.logical_and(
                stepping,
                b.logical_or(
                    b.logical_or(b.logical_and(accept, b.logical_or(small_df, small_dx)), stalled), at_min
                ),
            )
            # A start where the model is not finite ends the bin (its status says so).
            new_conv = b.logical_or(
                new_conv, b.logical_and(b.logical_and(active, first), b.logical_not(accept))
            )
            p = b.where(accept[:, None], p_try, p)
            g_new = b.where(accept[:, None], g_try, g)
            a_new = b.where(accept[:, None, None], a_try, a)
            cost = b.where(accept, cost_try, cost)
            shrink = b.maximum(1.0 / 3.0, 1.0 - (2.0 * rho - 1.0) ** 3)
            lam = b.where(
                stepping,
                b.where(accept, b.maximum(lam * shrink, 1e-15), b.minimum(lam * nu, _LAMBDA_MAX)),
                lam,
            )
            nu = b.where(stepping, b.where(accept, 2.0, nu * 2.0), nu)
            conv = b.logical_or(conv, new_conv)
            it = it + b.astype(stepping, np.int32)
            return p, g_new, a_new, cost, scale, lam, nu, b.logical_or(done, new_conv), conv, it, k + 1

        p, _, a, cost, _, _, _, _, conv, it, _ = b.while_loop(cond, body, state)
        return p, a, cost, conv, it

    return _compiled(b, kernel, on_cpu)


# XLA's newer CPU fusion emitters take about half again the compile time of the classic
# ones on this program (measured: 1.7 s against 1.1 s of CPU time for the double model),
# at the same run time; the fit's programs are small and compiled per model and free set,
# so compile time is what a user waits for.
CPU_COMPILER_OPTIONS: dict[str, Any] = {"xla_cpu_use_fusion_emitters": False}


def _compiled(b: BackendProtocol, kernel: Callable[..., Any], on_cpu: bool) -> Callable[..., Any]:
    if b.name == "numpy":
        return _without_fp_warnings(kernel)
    traceable: Callable[..., Any] = b.jit(kernel)
    if not on_cpu:
        return traceable
    import jax  # the JAX backend is active: JAX is there

    from xpcs_fit._xla import supported_options

    options = supported_options(CPU_COMPILER_OPTIONS)
    if options is None:
        return traceable
    fast: Callable[..., Any] = jax.jit(kernel, compiler_options=options)
    tracer = jax.core.Tracer

    @functools.wraps(kernel)
    def run(*args: Any) -> Any:
        # Compiler options are for top-level programs only: inside another jit the kernel
        # is traced into the caller's program instead.
        return traceable(*args) if any(isinstance(a, tracer) for a in args) else fast(*args)

    return run


def _without_fp_warnings(kernel: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(kernel)
    def run(*args: Any) -> Any:
        with np.errstate(all="ignore"):
            return kernel(*args)

    return run


@functools.cache
def host_backend() -> BackendProtocol:
    """A NumPy backend of its own (the active backend is left alone), for host-side work."""
    return xpcs_device.create_backend("numpy")


def covariance_and_status(
    params: Any,
    normal: Any,
    cost: Any,
    converged: Any,
    skip: Any,
    free: tuple[bool, ...],
    n_points: int,
    absolute_sigma: bool,
) -> tuple[Any, Any, Any]:
    """``(errors (B, n), chi2_red (B,), status (B,) int32)`` in NumPy, on the host.

    The normal matrix over the free parameters is scaled to unit diagonal (a correlation
    matrix) before it is inverted, so that tau in seconds and contrast mix well; a
    correlation matrix whose inverse has a diagonal above ``_VIF_MAX`` is singular.
    """
    p, a, cost = (np.asarray(v, dtype=np.float64) for v in (params, normal, cost))
    conv, skip = np.asarray(converged, dtype=bool), np.asarray(skip, dtype=bool)
    n = len(free)
    free_mask = np.asarray(free, dtype=np.float64)
    eye = np.eye(n)
    with np.errstate(all="ignore"):
        a_f = a * (free_mask[:, None] * free_mask[None, :]) + eye * (1.0 - free_mask)[None, :]
        d = np.einsum("bii->bi", a_f)
        positive = np.all(d > 0, axis=-1)
        s = np.sqrt(np.where(d > 0, d, 1.0))
        corr = np.where(positive[:, None, None], a_f / (s[:, :, None] * s[:, None, :]), eye)
        inv, solved = _invert_correlation(corr, 1.0 / _VIF_MAX)
        inv_diag = np.einsum("bii->bi", inv)
        regular = (
            positive
            & solved
            & np.all(np.isfinite(inv_diag), axis=-1)
            & np.all(np.abs(inv_diag) <= _VIF_MAX, axis=-1)
            & np.all(inv_diag > 0, axis=-1)
        )
        chi2_red = cost / (n_points - int(free_mask.sum()))
        var = inv_diag / (s * s) * free_mask
        if not absolute_sigma:
            var = var * chi2_red[:, None]
        errors = np.sqrt(np.where(regular[:, None], np.maximum(var, 0.0), 0.0))
        finite = (
            np.all(np.isfinite(p), axis=-1) & np.isfinite(chi2_red) & np.all(np.isfinite(errors), axis=-1)
        )
    status = np.select(
        [skip, ~conv, ~regular, ~finite], [INVALID, NO_CONVERGENCE, SINGULAR, NOT_FINITE], default=OK
    )
    return errors, chi2_red, status.astype(np.int32)


def run_fit(
    b: BackendProtocol,
    model: str,
    free: tuple[bool, ...],
    arrays: tuple[Any, ...],
    *,
    max_iter: int,
    ftol: float,
    xtol: float,
    absolute_sigma: bool,
) -> tuple[Any, Any, Any, Any, Any]:
    """The whole fit on backend ``b``: ``arrays`` are the NumPy inputs of :func:`solver`'s
    ``iterate``; returns NumPy ``(params, errors, chi2_red, status, n_iter)``."""
    put = xpcs_device.place_on_device
    iterate = solver(b, model, free, max_iter, ftol, xtol)
    out = iterate(*(put(v) for v in arrays))
    params, normal, cost, converged, n_iter = (np.array(b.to_numpy(v)) for v in out)
    skip = arrays[-1]
    errors, chi2_red, status = covariance_and_status(
        params, normal, cost, converged, skip, free, int(np.shape(arrays[1])[-1]), absolute_sigma
    )
    return params, errors, chi2_red, status, n_iter


def _invert_correlation(corr: Any, min_pivot: float) -> tuple[Any, Any]:
    """:func:`_gauss_jordan` of ``[corr | I]`` in plain NumPy, in place (the host side):
    ``(inverse (B, n, n), ok (B,))``."""
    n = corr.shape[-1]
    m = np.concatenate([corr, np.broadcast_to(np.eye(n), corr.shape)], axis=-1)
    ok = np.ones(corr.shape[0], dtype=bool)
    for k in range(n):
        pivot = m[:, k, k].copy()
        good = pivot > min_pivot
        ok &= good
        row = m[:, k, :] / np.where(good, pivot, 1.0)[:, None]
        m -= m[:, :, k, None] * row[:, None, :]
        m[:, k, :] = row
    return m[:, :, n:], ok
