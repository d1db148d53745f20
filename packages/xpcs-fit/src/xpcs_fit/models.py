"""g2 models and the τ(q) power law, in one parameterisation (the APS / pyXpcsViewer one).

With τ the delay (seconds):

- ``single``: ``g2 = baseline + contrast * exp(-2 * τ / tau)``
- ``stretched`` (KWW): ``g2 = baseline + contrast * exp(-2 * (τ / tau) ** beta)``;
  ``beta = 1`` is ``single``.
- ``double`` (Siegert form of two stretched relaxations, with the cross term):
  ``g2 = baseline + contrast * (fraction * exp(-(τ / tau1) ** beta1)
  + (1 - fraction) * exp(-(τ / tau2) ** beta2)) ** 2``; with one component
  (``fraction = 1``) it equals ``stretched``.
- τ(q): ``tau = tau0 * q ** (-alpha)``; Brownian diffusion is ``alpha = 2``,
  ``tau = 1 / (D * q**2)`` (g1 = exp(-D q² τ), g2 - 1 = contrast * g1²).

``contrast`` is dimensionless, ``tau*`` are in the unit of the delays (seconds), ``beta*``
dimensionless stretching exponents, ``baseline`` dimensionless (1 for ideal data). Least
squares (:mod:`xpcs_fit.leastsq`) and the Bayesian fits use exactly these functions.

Every function here is written with backend operations only, so it runs on the NumPy
backend and, on the JAX backend, under ``jit``, ``vmap`` and ``grad`` (NumPyro models
included). Delays must be positive (``τ = 0`` gives NaN derivatives in ``beta``).
"""

from __future__ import annotations

from typing import Any, Literal

import xpcs_device
from xpcs_protocol import Array, ArrayLike, BackendProtocol

__all__ = [
    "DEFAULT_BOUNDS",
    "MODELS",
    "PARAM_NAMES",
    "Model",
    "double_exp_func",
    "g2_jacobian",
    "g2_model",
    "g2_value_and_jacobian",
    "power_law",
    "single_exp_func",
    "stretched_exp_func",
]

Model = Literal["single", "stretched", "double"]

PARAM_NAMES: dict[str, tuple[str, ...]] = {
    "single": ("contrast", "tau", "baseline"),
    "stretched": ("contrast", "tau", "beta", "baseline"),
    "double": ("contrast", "tau1", "beta1", "tau2", "beta2", "fraction", "baseline"),
}
"""Parameter names of each model, in the order of the last axis of ``params``."""

MODELS: tuple[str, ...] = tuple(PARAM_NAMES)

_CONTRAST = (0.04, 0.8)
_TAU = (1e-5, 100.0)
_BETA = (0.5, 2.0)
_BASELINE = (0.95, 1.05)

DEFAULT_BOUNDS: dict[str, dict[str, tuple[float, float]]] = {
    "single": {"contrast": _CONTRAST, "tau": _TAU, "baseline": _BASELINE},
    "stretched": {"contrast": _CONTRAST, "tau": _TAU, "beta": _BETA, "baseline": _BASELINE},
    "double": {
        "contrast": _CONTRAST,
        "tau1": _TAU,
        "beta1": _BETA,
        "tau2": _TAU,
        "beta2": _BETA,
        "fraction": (0.0, 1.0),
        "baseline": _BASELINE,
    },
}
"""Default ``(low, high)`` bounds per model and parameter: the APS GUI defaults (tau in
seconds), fraction in [0, 1]."""


def check_model(model: Any) -> str:
    """``model`` if it names a model, else a ValueError listing the models."""
    if not isinstance(model, str) or model not in PARAM_NAMES:
        raise ValueError(f"unknown g2 model {model!r}; choose one of {', '.join(map(repr, MODELS))}")
    return model


# ------------------------------------------------------------------ batched forms
def g2_model(b: BackendProtocol, model: str, delay: ArrayLike, params: ArrayLike) -> Array:
    """g2 of ``model`` at ``delay`` ``(n_delay,)`` (s) for ``params`` ``(..., n_params)``
    (last axis in :data:`PARAM_NAMES` order); returns ``(..., n_delay)``.

    Uses only operations of the backend ``b``, so traced JAX values work (jit, vmap, grad).
    Delays must be positive (the fits check this).
    """
    names = PARAM_NAMES[check_model(model)]
    p = b.asarray(params)
    t = b.asarray(delay)
    if p.shape[-1] != len(names):
        raise ValueError(
            f"params of the {model!r} model need a last axis of {len(names)} ({', '.join(names)}), "
            f"got shape {tuple(p.shape)}"
        )
    cols = [p[..., k, None] for k in range(len(names))]
    if model == "single":
        a, tau, d = cols
        return d + a * b.exp(-2.0 * t / tau)
    # (t/tau)**c as exp(c·log(t/tau)): the same for positive delays, and on XLA CPU about 5x
    # cheaper with its gradient than ``power`` (what NUTS evaluates at every leapfrog step).
    log_t = b.log(t)
    if model == "stretched":
        a, tau, c, d = cols
        return d + a * b.exp(-2.0 * b.exp(c * (log_t - b.log(tau))))
    a, tau1, c1, tau2, c2, f, d = cols
    s = f * b.exp(-b.exp(c1 * (log_t - b.log(tau1)))) + (1.0 - f) * b.exp(-b.exp(c2 * (log_t - b.log(tau2))))
    return d + a * s * s


def g2_jacobian(b: BackendProtocol, model: str, delay: ArrayLike, params: ArrayLike) -> Array:
    """Analytic derivatives of :func:`g2_model` with respect to each parameter:
    ``(..., n_delay, n_params)`` for ``params`` ``(..., n_params)`` and ``delay`` ``(n_delay,)``
    (positive delays). Works on backends without autodiff (NumPy)."""
    return g2_value_and_jacobian(b, model, delay, params)[1]


def g2_value_and_jacobian(
    b: BackendProtocol, model: str, delay: ArrayLike, params: ArrayLike, *, params_last: bool = True
) -> tuple[Array, Array]:
    """``(g2_model(...), g2_jacobian(...))`` computed together (what the fits use); with
    ``params_last=False`` the Jacobian is ``(..., n_params, n_delay)``.

    Powers are written ``exp(beta * log(delay / tau))``, sharing the logarithm with the
    derivative in ``beta``: equal to :func:`g2_model` to rounding, and on XLA CPU less than
    half the time of ``power``.
    """
    names = PARAM_NAMES[check_model(model)]
    p = b.asarray(params)
    t = b.asarray(delay)
    if p.shape[-1] != len(names):
        raise ValueError(
            f"params of the {model!r} model need a last axis of {len(names)} ({', '.join(names)}), "
            f"got shape {tuple(p.shape)}"
        )
    cols = [p[..., k, None] for k in range(len(names))]
    log_t = b.log(t)
    one = b.ones_like(t * cols[0])
    if model == "single":
        a, tau, d = cols
        e = b.exp(-2.0 * t / tau)
        value = d + a * e
        parts = [e, a * e * 2.0 * t / (tau * tau), one]
    elif model == "stretched":
        a, tau, c, d = cols
        log_x = log_t - b.log(tau)
        x = b.exp(c * log_x)
        e = b.exp(-2.0 * x)
        value = d + a * e
        ae2x = 2.0 * a * e * x
        parts = [e, ae2x * (c / tau), -ae2x * log_x, one]
    else:
        a, tau1, c1, tau2, c2, f, d = cols
        # Both components at once, stacked on a new axis: half the expressions to compile.
        tau = b.stack([tau1, tau2], axis=-2)
        c = b.stack([c1, c2], axis=-2)
        log_x = log_t - b.log(tau)
        x = b.exp(c * log_x)
        e = b.exp(-x)
        fe = b.stack([f, 1.0 - f], axis=-2) * e
        s = fe[..., 0, :] + fe[..., 1, :]
        value = d + a * s * s
        ds = 2.0 * a * s  # d g2 / d s
        w = ds[..., None, :] * fe * x
        d_tau = w * (c / tau)
        d_beta = -w * log_x
        parts = [
            s * s,
            d_tau[..., 0, :],
            d_beta[..., 0, :],
            d_tau[..., 1, :],
            d_beta[..., 1, :],
            ds * (e[..., 0, :] - e[..., 1, :]),
            one,
        ]
    return value, b.stack([b.broadcast_to(x, one.shape) for x in parts], axis=-1 if params_last else -2)


# ------------------------------------------------------------- the design's functions
def _backend_arrays(*values: ArrayLike) -> tuple[BackendProtocol, list[Array]]:
    b = xpcs_device.get_backend()
    return b, [b.asarray(v) for v in values]


def single_exp_func(delay: ArrayLike, contrast: ArrayLike, tau: ArrayLike, baseline: ArrayLike) -> Array:
    """``baseline + contrast * exp(-2 * delay / tau)`` on the active backend (broadcasting)."""
    b, (t, a, tau_, d) = _backend_arrays(delay, contrast, tau, baseline)
    return d + a * b.exp(-2.0 * t / tau_)


def stretched_exp_func(
    delay: ArrayLike, contrast: ArrayLike, tau: ArrayLike, beta: ArrayLike, baseline: ArrayLike
) -> Array:
    """``baseline + contrast * exp(-2 * (delay / tau) ** beta)`` on the active backend."""
    b, (t, a, tau_, c, d) = _backend_arrays(delay, contrast, tau, beta, baseline)
    return d + a * b.exp(-2.0 * b.power(t / tau_, c))


def double_exp_func(
    delay: ArrayLike,
    contrast: ArrayLike,
    tau1: ArrayLike,
    beta1: ArrayLike,
    tau2: ArrayLike,
    beta2: ArrayLike,
    fraction: ArrayLike,
    baseline: ArrayLike,
) -> Array:
    """``baseline + contrast * (fraction * exp(-(delay/tau1)**beta1)
    + (1 - fraction) * exp(-(delay/tau2)**beta2)) ** 2`` on the active backend."""
    b, (t, a, t1, c1, t2, c2, f, d) = _backend_arrays(
        delay, contrast, tau1, beta1, tau2, beta2, fraction, baseline
    )
    s = f * b.exp(-b.power(t / t1, c1)) + (1.0 - f) * b.exp(-b.power(t / t2, c2))
    return d + a * s * s


def power_law(q: ArrayLike, tau0: ArrayLike, alpha: ArrayLike) -> Array:
    """``tau0 * q ** (-alpha)`` on the active backend (q > 0, in the unit tau0 refers to)."""
    b, (q_, t0, al) = _backend_arrays(q, tau0, alpha)
    return t0 * b.power(q_, -al)
