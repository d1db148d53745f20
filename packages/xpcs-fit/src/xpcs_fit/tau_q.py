"""τ(q): the power law ``tau = tau0 * q**(-alpha)`` and Brownian diffusion (``alpha = 2``).

Both are weighted least squares in linear space (weights ``1 / tau_err**2``), run by the
same bounded Levenberg-Marquardt as the g2 fits on the active backend:

- power law: ``tau0 > 0`` and ``alpha`` free, started from the weighted straight-line fit
  of ``log tau`` against ``log q``;
- diffusion: ``alpha`` fixed at 2, ``tau = 1 / (D q²)``: ``D = 1 / tau0`` and, from the
  covariance, ``D_err = tau0_err / tau0²`` (exact at the optimum: ``D`` is a
  reparameterisation of ``tau0``). With q in 1/Å and tau in s, D is in Å²/s.

Errors follow :mod:`xpcs_fit.leastsq` (``chi2_red``-scaled unless ``absolute_sigma``).
Points whose ``tau`` or ``tau_err`` is NaN (bins whose g2 fit failed) are left out and
reported in ``used``; other bad input raises.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, cast

import numpy as np

import xpcs_device
from xpcs_fit._solver import OK, STATUS_MESSAGES, run_fit

__all__ = ["TauQFit", "fit_tau_q"]


@dataclass(frozen=True, eq=False)
class TauQFit:
    """Power-law and diffusion fits of tau(q); NaN values with a reason where a fit failed."""

    tau0: float
    """Prefactor of the power law (unit of tau times unit of q to the alpha)."""
    tau0_err: float
    alpha: float
    """Exponent: ``tau = tau0 * q**(-alpha)`` (2 for Brownian diffusion)."""
    alpha_err: float
    chi2_red: float
    """Reduced chi² of the power law (``n_used - 2`` degrees of freedom)."""
    reason: str | None
    """None when the power-law fit succeeded, else why it failed."""
    diffusion: float
    """D of ``tau = 1 / (D q²)`` (unit of q to the -2 per unit of tau, e.g. Å²/s)."""
    diffusion_err: float
    diffusion_chi2_red: float
    """Reduced chi² of the diffusion fit (``n_used - 1`` degrees of freedom)."""
    diffusion_reason: str | None
    used: np.ndarray[Any, np.dtype[np.bool_]] = field(repr=False)
    """``(n_q,)`` True for the points that entered the fits."""
    absolute_sigma: bool = False


def _vector(value: Any, name: str) -> np.ndarray[Any, np.dtype[np.float64]]:
    arr = np.asarray(value)
    if arr.dtype.kind not in "biuf":
        raise TypeError(f"{name} must be real numbers, got dtype {arr.dtype}")
    arr = np.array(arr, dtype=np.float64).reshape(arr.shape)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be 1-D (one value per q bin), got shape {arr.shape}")
    return arr


def fit_tau_q(q: Any, tau: Any, tau_err: Any = None, *, absolute_sigma: bool = False) -> TauQFit:
    """Fit ``tau = tau0 * q**(-alpha)`` and ``tau = 1 / (D q²)`` to ``tau`` ``(n_q,)`` with
    one-sigma errors ``tau_err`` (None: unit weights) at positive ``q`` ``(n_q,)``.

    NaN ``tau`` or ``tau_err`` (failed g2 fits) are skipped; at least 3 points must remain.
    """
    qv, tv = _vector(q, "q"), _vector(tau, "tau")
    ev = np.ones_like(tv) if tau_err is None else _vector(tau_err, "tau_err")
    if not qv.shape == tv.shape == ev.shape:
        raise ValueError(
            f"q, tau and tau_err must have the same length, got {qv.shape}, {tv.shape}, {ev.shape}"
        )
    if not np.all(np.isfinite(qv) & (qv > 0)):
        raise ValueError("q must be positive and finite (a power law needs q > 0)")
    used = ~(np.isnan(tv) | np.isnan(ev))
    if np.any(~np.isfinite(tv[used]) | (tv[used] <= 0)):
        raise ValueError("tau must be positive and finite (or NaN for a bin to skip)")
    if np.any(~np.isfinite(ev[used]) | (ev[used] <= 0)):
        raise ValueError("tau_err must be positive and finite (or NaN for a bin to skip)")
    n_used = int(used.sum())
    if n_used < 3:
        raise ValueError(f"only {n_used} usable tau value(s); the power law needs at least 3")
    x, y, e = qv[used], tv[used], ev[used]

    # Start: weighted line through (log q, log tau); sigma of log tau is e / y.
    wl = (y / e) ** 2
    design = np.stack([np.ones_like(x), -np.log(x)], axis=1)
    coef = np.linalg.solve(design.T @ (wl[:, None] * design), design.T @ (wl * np.log(y)))
    start_pl = np.array([[np.exp(coef[0]), coef[1]]])
    start_d = np.array([[np.sum(wl * y * x**2) / np.sum(wl), 2.0]])  # tau0 = tau q² averaged

    b = xpcs_device.get_backend()
    lo, hi = np.array([0.0, -np.inf]), np.array([np.inf, np.inf])
    results: list[tuple[Any, Any, float, str | None]] = []
    for free, start in (((True, True), start_pl), ((True, False), start_d)):
        arrays = (x, y[None], 1.0 / e[None], start, lo, hi, np.zeros(1, dtype=bool))
        p, err, chi2, status, _ = run_fit(
            cast(Any, b),
            "power_law",
            free,
            arrays,
            max_iter=200,
            ftol=1e-14,
            xtol=1e-12,
            absolute_sigma=bool(absolute_sigma),
        )
        code = int(status[0])
        if code != OK:
            results.append((np.full(2, np.nan), np.full(2, np.nan), np.nan, STATUS_MESSAGES[code]))
        else:
            results.append((p[0], err[0], float(chi2[0]), None))
    (p_pl, e_pl, chi2_pl, why_pl), (p_d, e_d, chi2_d, why_d) = results
    used.flags.writeable = False
    return TauQFit(
        tau0=float(p_pl[0]),
        tau0_err=float(e_pl[0]),
        alpha=float(p_pl[1]),
        alpha_err=float(e_pl[1]),
        chi2_red=chi2_pl,
        reason=why_pl,
        diffusion=float(1.0 / p_d[0]),
        diffusion_err=float(e_d[0] / p_d[0] ** 2),
        diffusion_chi2_red=chi2_d,
        diffusion_reason=why_d,
        used=used,
        absolute_sigma=bool(absolute_sigma),
    )
