"""g2 models and fits of xpcs (least squares on both backends, NumPyro NUTS on JAX)."""

from xpcs_fit.__about__ import __version__
from xpcs_fit.bayes import G2Posterior, JaxBackendRequiredError, fit_g2_bayes
from xpcs_fit.leastsq import G2Fit, fit_g2
from xpcs_fit.models import (
    DEFAULT_BOUNDS,
    PARAM_NAMES,
    double_exp_func,
    g2_model,
    power_law,
    single_exp_func,
    stretched_exp_func,
)
from xpcs_fit.tau_q import TauQFit, fit_tau_q

__all__ = [
    "DEFAULT_BOUNDS",
    "PARAM_NAMES",
    "G2Fit",
    "G2Posterior",
    "JaxBackendRequiredError",
    "TauQFit",
    "__version__",
    "double_exp_func",
    "fit_g2",
    "fit_g2_bayes",
    "fit_tau_q",
    "g2_model",
    "power_law",
    "single_exp_func",
    "stretched_exp_func",
]
