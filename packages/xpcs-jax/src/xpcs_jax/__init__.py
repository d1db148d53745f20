"""The JAX backend of xpcs. Importing this package does not import JAX."""

from xpcs_jax.__about__ import __version__
from xpcs_jax.backend import JAXBackend
from xpcs_jax.config import (
    CACHE_DIR_ENV,
    JaxConfiguration,
    compilation_cache_dir,
    configure_jax,
    jax_client_started,
    jax_configuration,
)

__all__ = [
    "CACHE_DIR_ENV",
    "JAXBackend",
    "JaxConfiguration",
    "__version__",
    "compilation_cache_dir",
    "configure_jax",
    "jax_client_started",
    "jax_configuration",
]
