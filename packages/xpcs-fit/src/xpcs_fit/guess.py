"""Initial guesses of the g2 model parameters from the data, every bin at once.

- ``baseline``: mean of the last tenth of the delays (at least 3 points);
- ``contrast``: mean of the first twentieth (at least 2 points) minus the baseline;
- ``tau``: from the delay where the normalised decay ``(g2 - baseline) / contrast``
  falls through 1/2. The crossing is located by *counting* the points above 1/2 (not by
  the first point below it), so single noisy points do not move it; the half-decay delay
  ``t½`` is the geometric mean of the delays around that count, and
  ``exp(-2 t½ / tau) = 1/2`` gives ``tau = 2 t½ / ln 2``;
- ``beta`` 1; for ``double``: ``tau1 = tau / 3``, ``tau2 = 3 tau``, ``fraction`` 1/2.

Every guess is clipped into the bounds (a non-finite guess becomes the middle of the
bounds, or the finite one of them), so that it is a valid starting point.
Backend operations only; :func:`xpcs_fit.leastsq.fit_g2` runs it on the host in NumPy,
before the compiled iterations, whatever the active backend.
"""

from __future__ import annotations

import math

import numpy as np

from xpcs_fit.models import PARAM_NAMES
from xpcs_protocol import Array, BackendProtocol

__all__ = ["estimate_params"]


def estimate_params(b: BackendProtocol, model: str, delay: Array, g2: Array, lo: Array, hi: Array) -> Array:
    """Guesses ``(n_bins, n_params)`` for ``g2`` ``(n_bins, n_delay)`` at increasing ``delay``
    ``(n_delay,)``, inside the bounds ``lo``, ``hi`` ``(n_params,)``."""
    m = int(g2.shape[-1])
    k_tail = min(m, max(3, m // 10))
    k_head = min(m, max(2, m // 20))
    d = b.mean(g2[:, m - k_tail :], axis=-1)
    a = b.mean(g2[:, :k_head], axis=-1) - d
    above = b.sum(b.astype((g2 - d[:, None]) > 0.5 * a[:, None], np.int32), axis=-1)
    idx = b.clip(above, 1, m - 1)
    t_half = b.sqrt(b.take(delay, idx - 1) * b.take(delay, idx))
    tau = 2.0 * t_half / math.log(2.0)
    one = b.ones_like(d)
    cols = {"contrast": a, "baseline": d, "tau": tau, "beta": one}
    cols.update(tau1=tau / 3.0, tau2=tau * 3.0, beta1=one, beta2=one, fraction=0.5 * one)
    guess = b.stack([cols[name] for name in PARAM_NAMES[model]], axis=-1)
    middle = b.where(
        b.logical_and(b.isfinite(lo), b.isfinite(hi)), 0.5 * (lo + hi), b.where(b.isfinite(lo), lo, hi)
    )
    middle = b.where(b.isfinite(middle), middle, 0.0)
    return b.clip(b.where(b.isfinite(guess), guess, middle), lo, hi)
