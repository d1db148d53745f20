"""Bounded, weighted least-squares fits of g2 models to every q bin in one call.

:func:`fit_g2` checks its inputs on the host (bad input raises a ValueError or TypeError
that says what to fix), then runs one compiled, batched Levenberg-Marquardt over all bins
on the active backend (:mod:`xpcs_fit._solver`) and returns a :class:`G2Fit` of NumPy
arrays. A bin that cannot be fitted is never given invented values: its parameters,
errors and ``chi2_red`` are NaN, ``success`` is False and ``reasons`` says why:

- its g2 has non-finite values, or its errors are not positive and finite (checked first:
  such a bin is not fitted at all);
- no convergence within ``max_iter`` iterations;
- singular covariance (a free parameter is not determined by the data, e.g. ``tau2`` of a
  double model whose ``fraction`` went to 1);
- non-finite results.

Errors are one standard deviation from the covariance ``(Jᵀ W² J)⁻¹`` at the solution,
over the free parameters, with the bounds ignored (a parameter on a bound still gets the
curvature error), scaled by ``chi2_red`` as scipy's ``curve_fit`` does with
``absolute_sigma=False`` (the default here too: the g2 error bars of multi-tau are the
spread over pixels, good in shape but not always in scale); pass ``absolute_sigma=True``
to take ``g2_err`` as absolute. Fixed parameters have error 0 (they are not fitted).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, cast

import numpy as np

import xpcs_device
from xpcs_fit._solver import INVALID, OK, STATUS_MESSAGES, host_backend, run_fit
from xpcs_fit.guess import estimate_params
from xpcs_fit.models import DEFAULT_BOUNDS, PARAM_NAMES, check_model

__all__ = ["G2Fit", "fit_g2"]

FloatArray = np.ndarray[Any, np.dtype[np.float64]]


@dataclass(frozen=True, eq=False)
class G2Fit:
    """Least-squares fit of one g2 model to ``n_bins`` q bins (NumPy arrays, read-only)."""

    model: str
    param_names: tuple[str, ...]
    """Names of the columns of ``params`` and ``errors`` (:data:`xpcs_fit.models.PARAM_NAMES`)."""
    params: FloatArray
    """``(n_bins, n_params)`` best-fit values (tau in the unit of the delays); NaN where failed."""
    errors: FloatArray
    """``(n_bins, n_params)`` one-sigma errors; 0 for fixed parameters, NaN where failed."""
    chi2_red: FloatArray
    """``(n_bins,)`` ``sum(((g2 - model) / g2_err) ** 2) / (n_delay - n_free)``; NaN where failed."""
    success: np.ndarray[Any, np.dtype[np.bool_]]
    """``(n_bins,)`` True where the bin was fitted."""
    reasons: tuple[str | None, ...]
    """Per bin: None when fitted, else why not."""
    fixed: tuple[str, ...]
    """Names of the parameters held at the values given in ``fixed``."""
    bounds: dict[str, tuple[float, float]] = field(repr=False)
    """The bounds used, per parameter name."""
    n_iter: np.ndarray[Any, np.dtype[np.int32]] = field(repr=False)
    """``(n_bins,)`` Levenberg-Marquardt iterations of each bin."""
    absolute_sigma: bool = False

    def value(self, name: str) -> FloatArray:
        """``(n_bins,)`` fitted values of the parameter ``name``."""
        return self.params[:, self._index(name)]

    def error(self, name: str) -> FloatArray:
        """``(n_bins,)`` one-sigma errors of the parameter ``name``."""
        return self.errors[:, self._index(name)]

    def _index(self, name: str) -> int:
        if name not in self.param_names:
            raise KeyError(f"the {self.model!r} model has no parameter {name!r}; it has {self.param_names}")
        return self.param_names.index(name)


# ------------------------------------------------------------------------- checks
_POSITIVE = ("tau", "tau1", "tau2", "beta", "beta1", "beta2")


def _as_float_array(value: Any, name: str) -> FloatArray:
    arr = np.asarray(value)
    if arr.dtype.kind not in "biuf":
        raise TypeError(f"{name} must be real numbers, got dtype {arr.dtype}")
    return np.array(arr, dtype=np.float64)  # a copy: inputs are never modified


def _check_delay(delay: Any) -> FloatArray:
    t = _as_float_array(delay, "delay")
    if t.ndim != 1 or t.size == 0:
        raise ValueError(f"delay must be a 1-D array of delays in seconds, got shape {t.shape}")
    if not np.all(np.isfinite(t)) or np.any(t <= 0):
        raise ValueError("delay must be positive and finite (seconds); drop the zero lag")
    if np.any(np.diff(t) <= 0):
        raise ValueError("delay must be strictly increasing (a multi-tau delay list)")
    return t


def _check_names(given: Mapping[str, Any], names: tuple[str, ...], what: str, model: str) -> None:
    if not isinstance(given, Mapping):
        raise TypeError(f"{what} must be a dict keyed by parameter name, got {type(given).__name__}")
    unknown = [k for k in given if k not in names]
    if unknown:
        raise ValueError(
            f"{what} names unknown parameter(s) {unknown} for the {model!r} model; its parameters "
            f"are {', '.join(names)}"
        )


def resolve_bounds(model: str, bounds: Mapping[str, Any] | None) -> dict[str, tuple[float, float]]:
    """The defaults of ``model`` updated by ``bounds`` (name -> ``(low, high)``), checked."""
    names = PARAM_NAMES[model]
    out = dict(DEFAULT_BOUNDS[model])
    if bounds is None:
        return out
    _check_names(bounds, names, "bounds", model)
    for name, pair in bounds.items():
        try:
            lo, hi = (float(v) for v in pair)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"bounds[{name!r}] must be a (low, high) pair of numbers, got {pair!r}") from exc
        if math.isnan(lo) or math.isnan(hi) or not lo < hi:
            raise ValueError(f"bounds[{name!r}] = ({lo}, {hi}) needs low < high")
        if name in _POSITIVE and lo <= 0:
            raise ValueError(f"bounds[{name!r}] = ({lo}, {hi}): {name} must stay positive, set low > 0")
        out[name] = (lo, hi)
    return out


def _per_bin(value: Any, n_bins: int, what: str) -> FloatArray:
    arr = _as_float_array(value, what)
    if arr.ndim == 0:
        return np.full(n_bins, float(arr))
    if arr.shape != (n_bins,):
        raise ValueError(f"{what} must be a number or one value per bin ({n_bins},), got shape {arr.shape}")
    return arr


def _initial_values(
    model: str,
    p0: Any,
    fixed: Mapping[str, Any] | None,
    bounds: dict[str, tuple[float, float]],
    n_bins: int,
) -> tuple[FloatArray, tuple[bool, ...], tuple[str, ...]]:
    """``(p0 (n_bins, n_params) with NaN = estimate, free mask, fixed names)``."""
    names = PARAM_NAMES[model]
    start = np.full((n_bins, len(names)), np.nan)
    fixed = {} if fixed is None else fixed
    _check_names(fixed, names, "fixed", model)
    for name, value in fixed.items():
        col = _per_bin(value, n_bins, f"fixed[{name!r}]")
        if not np.all(np.isfinite(col)) or (name in _POSITIVE and np.any(col <= 0)):
            raise ValueError(f"fixed[{name!r}] must be finite{' and positive' if name in _POSITIVE else ''}")
        start[:, names.index(name)] = col
    free = tuple(name not in fixed for name in names)
    if not any(free):
        raise ValueError("every parameter is fixed: there is nothing to fit")

    if p0 is not None:
        if isinstance(p0, Mapping):
            _check_names(p0, names, "p0", model)
            given = {name: _per_bin(v, n_bins, f"p0[{name!r}]") for name, v in p0.items()}
        else:
            arr = _as_float_array(p0, "p0")
            if arr.shape not in ((len(names),), (n_bins, len(names))):
                raise ValueError(
                    f"p0 must be a dict by parameter name or an array of shape ({len(names)},) or "
                    f"(n_bins, {len(names)}) = ({n_bins}, {len(names)}) in the order {names}, got {arr.shape}"
                )
            arr = np.broadcast_to(arr, (n_bins, len(names)))
            given = {name: arr[:, k] for k, name in enumerate(names) if name not in fixed}
        for name, col in given.items():
            if name in fixed:
                raise ValueError(f"{name!r} is both fixed and in p0; give its value in fixed only")
            lo, hi = bounds[name]
            bad = ~(np.isfinite(col) & (col >= lo) & (col <= hi))
            if bad.any():
                raise ValueError(
                    f"p0[{name!r}] lies outside its bounds [{lo}, {hi}] (or is not finite) in "
                    f"{int(bad.sum())} bin(s), first bin {int(np.argmax(bad))}: {col[bad][0]!r}; "
                    "move it inside or widen the bounds"
                )
            start[:, names.index(name)] = col
    return start, free, tuple(n for n in names if n in fixed)


def _bad_bins(g2: FloatArray, err: FloatArray) -> list[str | None]:
    bad_g2 = (~np.isfinite(g2)).sum(axis=0)
    bad_err = (~(np.isfinite(err) & (err > 0))).sum(axis=0)
    reasons: list[str | None] = []
    for n_g2, n_err in zip(bad_g2.tolist(), bad_err.tolist(), strict=True):
        parts = []
        if n_g2:
            parts.append(f"g2 has {n_g2} non-finite value(s)")
        if n_err:
            parts.append(f"g2_err has {n_err} value(s) that are not positive and finite")
        reasons.append("; ".join(parts) or None)
    return reasons


# ---------------------------------------------------------------------- the fit
def fit_g2(
    delay: Any,
    g2: Any,
    g2_err: Any,
    model: str = "single",
    bounds: Mapping[str, Any] | None = None,
    p0: Any = None,
    fixed: Mapping[str, Any] | None = None,
    *,
    absolute_sigma: bool = False,
    max_iter: int = 200,
) -> G2Fit:
    """Fit ``model`` to every q bin of ``g2`` on the active backend.

    ``delay``: ``(n_delay,)`` positive, increasing delays (s). ``g2``: ``(n_delay, n_bins)``
    (APS ``normalized_g2`` layout) or ``(n_delay,)`` for one bin. ``g2_err``: one-sigma
    errors of the same shape (weights ``1 / g2_err**2``), or None for unit weights.
    ``model``: ``"single"``, ``"stretched"`` or ``"double"`` (:mod:`xpcs_fit.models`).
    ``bounds``: ``{name: (low, high)}``, missing names take
    :data:`~xpcs_fit.models.DEFAULT_BOUNDS`. ``p0``: starting values, ``{name: value or
    (n_bins,) values}`` (missing names are estimated from the data, see
    :mod:`xpcs_fit.guess`) or an array ``(n_params,)`` / ``(n_bins, n_params)``; they must
    lie inside the bounds. ``fixed``: ``{name: value or (n_bins,) values}`` held constant.
    ``absolute_sigma``: take ``g2_err`` as absolute (see the module docstring).
    """
    model = check_model(model)
    names = PARAM_NAMES[model]
    t = _check_delay(delay)
    y = _as_float_array(g2, "g2")
    if y.ndim == 1:
        y = y[:, None]
    if y.ndim != 2 or y.shape[0] != t.size or y.shape[1] == 0:
        raise ValueError(
            f"g2 must have shape (n_delay, n_bins) = ({t.size}, n_bins) to match delay, got {np.shape(g2)}"
        )
    if g2_err is None:
        err = np.ones_like(y)
    else:
        err = _as_float_array(g2_err, "g2_err")
        if err.ndim == 1:
            err = err[:, None]
        if err.shape != y.shape:
            raise ValueError(f"g2_err must have the shape of g2 {np.shape(g2)}, got {np.shape(g2_err)}")
    if isinstance(max_iter, bool) or not isinstance(max_iter, int) or max_iter < 1:
        raise ValueError(f"max_iter must be a positive integer, got {max_iter!r}")
    n_bins = y.shape[1]
    used_bounds = resolve_bounds(model, bounds)
    start, free, fixed_names = _initial_values(model, p0, fixed, used_bounds, n_bins)
    n_free = sum(free)
    if t.size <= n_free:
        raise ValueError(
            f"too few points: {t.size} delays for {n_free} free parameters of the {model!r} model "
            "(need more delays than free parameters); fix some parameters or use a simpler model"
        )

    reasons = _bad_bins(y, err)
    skip = np.array([r is not None for r in reasons])
    y_fit = np.where(skip[None, :], 1.0, y).T
    w_fit = np.where(skip[None, :], 1.0, 1.0 / np.where(err > 0, err, 1.0)).T
    lo = np.array([used_bounds[n][0] for n in names])
    hi = np.array([used_bounds[n][1] for n in names])

    # Starting values the caller left out (NaN) are estimated on the host, in NumPy: a few
    # microseconds for any realistic g2, and no guessing code in the compiled program.
    missing = np.isnan(start)
    if missing.any():
        start = np.where(missing, estimate_params(host_backend(), model, t, y_fit, lo, hi), start)

    b = xpcs_device.get_backend()
    # Backends are hashable (by identity); the protocol does not say so to the type checker.
    params, errors, chi2_red, status, n_iter = run_fit(
        cast(Any, b),
        model,
        free,
        (t, y_fit, w_fit, start, lo, hi, skip),
        max_iter=max_iter,
        ftol=1e-14,
        xtol=1e-12,
        absolute_sigma=bool(absolute_sigma),
    )

    for k, code in enumerate(status.tolist()):
        if code not in (OK, INVALID):
            reasons[k] = STATUS_MESSAGES[code]
    success = status == OK
    params[~success] = np.nan
    errors[~success] = np.nan
    chi2_red[~success] = np.nan
    for arr in (params, errors, chi2_red, success, n_iter):
        arr.flags.writeable = False
    return G2Fit(
        model=model,
        param_names=names,
        params=params,
        errors=errors,
        chi2_red=chi2_red,
        success=success,
        reasons=tuple(reasons),
        fixed=fixed_names,
        bounds=used_bounds,
        n_iter=n_iter,
        absolute_sigma=bool(absolute_sigma),
    )
