"""The JAX backend of xpcs. Importing this package does not import JAX."""

from xpcs_jax.__about__ import __version__
from xpcs_jax.backend import JAXBackend
from xpcs_jax.config import JaxConfiguration, configure_jax, jax_client_started, jax_configuration

__all__ = [
    "JAXBackend",
    "JaxConfiguration",
    "__version__",
    "configure_jax",
    "jax_client_started",
    "jax_configuration",
]
