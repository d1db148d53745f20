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
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import numpy as np

from xpcs_fit.guess import estimate_params
from xpcs_fit.models import PARAM_NAMES, g2_jacobian, g2_model
from xpcs_protocol import Array, BackendProtocol

__all__ = ["STATUS_MESSAGES", "solver"]

# Status codes of a bin, from the kernel; the reasons are written on the host.
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
    return value, b.stack([xa, -value * b.log(x)], axis=-1)


def model_and_jacobian(b: BackendProtocol, model: str, x: Array, p: Array) -> tuple[Array, Array]:
    """``(f (B, m), df/dp (B, m, n))`` of a g2 model or ``"power_law"`` (``tau0 * x**-alpha``)."""
    if model == "power_law":
        return _power_law(b, x, p)
    return g2_model(b, model, x, p), g2_jacobian(b, model, x, p)


def n_params(model: str) -> int:
    return len(PowerLawNames) if model == "power_law" else len(PARAM_NAMES[model])


@functools.lru_cache(maxsize=64)
def solver(  # noqa: PLR0915 - one compiled program: its steps read best in one place
    b: BackendProtocol,
    model: str,
    free: tuple[bool, ...],
    max_iter: int,
    ftol: float,
    xtol: float,
    absolute_sigma: bool,
) -> Callable[..., Any]:
    """The compiled fit of ``model`` with the free parameters ``free`` (one per parameter).

    ``kernel(x (m,), y (B, m), w (B, m), p0 (B, n), lo (n,), hi (n,), skip (B,))`` returns
    ``(params (B, n), errors (B, n), chi2_red (B,), status (B,), n_iter (B,))``; ``w`` are
    the weights ``1 / sigma``, ``skip`` marks bins not to fit (their outputs are meaningless
    and get ``status`` INVALID). NaN entries of ``p0`` are estimated from the data (g2
    models). Fixed parameters keep their ``p0`` value, error 0.
    """
    n = len(free)
    f64 = np.float64
    free_np = np.asarray(free, dtype=f64)
    n_free = int(free_np.sum())

    def evaluate(x: Array, y: Array, w: Array, p: Array) -> tuple[Array, Array, Array]:
        f, jac = model_and_jacobian(b, model, x, p)
        r = (f - y) * w
        return r, jac * w[..., None], b.sum(r * r, axis=-1)

    def kernel(  # noqa: PLR0915
        x: Array, y: Array, w: Array, p0: Array, lo: Array, hi: Array, skip: Array
    ) -> tuple[Array, Array, Array, Array, Array]:
        n_bins = y.shape[0]
        eye = b.eye(n, dtype=f64)
        free_mask = b.asarray(free_np)
        if model != "power_law":
            # NaN entries of p0 are "estimate from the data".
            p0 = b.where(b.isnan(p0), estimate_params(b, model, x, y, lo, hi), p0)
        p = b.where(free_mask > 0, b.clip(p0, lo, hi), p0)
        r, jac, cost = evaluate(x, y, w, p)
        scale = b.zeros((n_bins, n), dtype=f64)
        lam = b.full((n_bins,), 1e-3, dtype=f64)
        done = b.astype(skip, bool)
        conv = b.zeros((n_bins,), dtype=bool)
        it = b.zeros((n_bins,), dtype=np.int32)
        nu = b.full((n_bins,), 2.0, dtype=f64)
        state = (p, r, jac, cost, scale, lam, nu, done, conv, it, b.zeros((), dtype=np.int32))

        def cond(s: tuple[Any, ...]) -> Any:
            return b.logical_and(b.logical_not(b.all(s[7])), s[10] < max_iter)

        def body(s: tuple[Any, ...]) -> tuple[Any, ...]:
            p, r, jac, cost, scale, lam, nu, done, conv, it, k = s
            g = b.einsum("bmi,bm->bi", jac, r)
            a = b.einsum("bmi,bmj->bij", jac, jac)
            scale = b.maximum(scale, b.einsum("bii->bi", a))
            damp = eye * (lam[:, None] * b.maximum(scale, 1e-300))[:, None, :]
            at_lo, at_hi = p <= lo, p >= hi

            def damped_step(blocked: Array) -> Array:
                # The LM step with the blocked parameters' rows and columns taken out.
                mask = free_mask * (1.0 - b.astype(blocked, f64))
                a_m = a * (mask[:, :, None] * mask[:, None, :]) + eye * (1.0 - mask)[:, None, :]
                return -b.solve(a_m + damp, (mask * g)[..., None])[..., 0]

            # Held: parameters on a bound that the gradient pushes outwards, then also those
            # on a bound that the step itself would push outwards (through correlations);
            # without the second pass a bin crawls along a bound for hundreds of iterations.
            blocked = b.logical_or(b.logical_and(at_lo, g > 0), b.logical_and(at_hi, g < 0))
            step = damped_step(blocked)
            outwards = b.logical_or(b.logical_and(at_lo, step < 0), b.logical_and(at_hi, step > 0))
            step = damped_step(b.logical_or(blocked, outwards))
            p_try = b.where(free_mask > 0, b.clip(p + step, lo, hi), p)
            r_try, jac_try, cost_try = evaluate(x, y, w, p_try)
            active = b.logical_not(done)
            better = b.logical_and(b.isfinite(cost_try), cost_try < cost)
            accept = b.logical_and(active, better)
            # Gain ratio of the actual to the predicted (quadratic model) cost reduction of
            # the step taken (after clipping), for Nielsen's damping update.
            moved = p_try - p
            predicted = -(2.0 * b.sum(g * moved, axis=-1) + b.einsum("bi,bij,bj->b", moved, a, moved))
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
                active,
                b.logical_or(
                    b.logical_or(b.logical_and(accept, b.logical_or(small_df, small_dx)), stalled), at_min
                ),
            )
            p = b.where(accept[:, None], p_try, p)
            r = b.where(accept[:, None], r_try, r)
            jac = b.where(accept[:, None, None], jac_try, jac)
            cost = b.where(accept, cost_try, cost)
            shrink = b.maximum(1.0 / 3.0, 1.0 - (2.0 * rho - 1.0) ** 3)
            lam = b.where(
                active,
                b.where(accept, b.maximum(lam * shrink, 1e-15), b.minimum(lam * nu, _LAMBDA_MAX)),
                lam,
            )
            nu = b.where(active, b.where(accept, 2.0, nu * 2.0), nu)
            conv = b.logical_or(conv, new_conv)
            it = it + b.astype(active, np.int32)
            return p, r, jac, cost, scale, lam, nu, b.logical_or(done, new_conv), conv, it, k + 1

        p, r, jac, cost, _, _, _, _, conv, it, _ = b.while_loop(cond, body, state)

        # Covariance over the free parameters: the normal matrix scaled to unit diagonal
        # (a correlation matrix) is inverted, so that tau in seconds and contrast mix well.
        a = b.einsum("bmi,bmj->bij", jac, jac)
        ff = free_mask[:, None] * free_mask[None, :]
        a_f = a * ff + eye * (1.0 - free_mask)[None, :]
        d = b.einsum("bii->bi", a_f)
        positive = b.all(d > 0, axis=-1)
        s = b.sqrt(b.where(d > 0, d, 1.0))
        corr = a_f / (s[:, :, None] * s[:, None, :])
        corr = b.where(positive[:, None, None], corr, eye)
        inv = b.inv(corr)
        inv_diag = b.einsum("bii->bi", inv)
        regular = b.logical_and(
            positive,
            b.logical_and(b.all(b.isfinite(inv_diag), axis=-1), b.all(b.abs(inv_diag) <= _VIF_MAX, axis=-1)),
        )
        regular = b.logical_and(regular, b.all(inv_diag > 0, axis=-1))
        dof = y.shape[-1] - n_free
        chi2_red = cost / dof
        var = inv_diag / (s * s) * free_mask
        if not absolute_sigma:
            var = var * chi2_red[:, None]
        errors = b.sqrt(b.where(regular[:, None], b.maximum(var, 0.0), 0.0))

        finite = b.logical_and(
            b.all(b.isfinite(p), axis=-1),
            b.logical_and(b.isfinite(chi2_red), b.all(b.isfinite(errors), axis=-1)),
        )
        status = b.where(
            b.astype(skip, bool),
            INVALID,
            b.where(
                b.logical_not(conv),
                NO_CONVERGENCE,
                b.where(b.logical_not(regular), SINGULAR, b.where(b.logical_not(finite), NOT_FINITE, OK)),
            ),
        )
        return p, errors, chi2_red, b.astype(status, np.int32), it

    return b.jit(kernel)
