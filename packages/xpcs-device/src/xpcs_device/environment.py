"""The ``XPCS_*`` environment variables, parsed once with one set of rules.

Booleans accept true/false, 1/0, yes/no, on/off in any case (surrounding spaces
ignored); anything else is an error that names the variable and the accepted values.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

__all__ = [
    "ConfigurationError",
    "DeviceSettings",
    "parse_bool",
    "parse_fraction",
    "read_settings",
]

_TRUE = frozenset({"true", "1", "yes", "on"})
_FALSE = frozenset({"false", "0", "no", "off"})
_BOOL_WORDS = "true/false, 1/0, yes/no, on/off (any case)"


class ConfigurationError(ValueError):
    """An ``XPCS_*`` setting has a value that cannot be used; the message says which and why."""


def parse_bool(
    name: str, value: str | None, *, default: bool | None, allow_auto: bool = False
) -> bool | None:
    """``value`` of variable ``name`` as a boolean; ``default`` when unset or empty.

    With ``allow_auto``, ``auto`` means "decide for me" and gives None.
    """
    if value is None or not value.strip():
        return default
    word = value.strip().lower()
    if word in _TRUE:
        return True
    if word in _FALSE:
        return False
    if allow_auto and word == "auto":
        return None
    accepted = _BOOL_WORDS + (", or auto" if allow_auto else "")
    raise ConfigurationError(f"{name}={value!r} is not understood; accepted values: {accepted}")


def parse_fraction(name: str, value: str | None) -> float | None:
    """``value`` of variable ``name`` as a number in (0, 1]; None when unset or empty."""
    if value is None or not value.strip():
        return None
    try:
        number = float(value.strip())
    except ValueError:
        number = float("nan")
    if not 0.0 < number <= 1.0:  # NaN fails this too
        raise ConfigurationError(
            f"{name}={value!r} is not a number in (0, 1]; give the fraction of GPU memory "
            f"JAX may use, e.g. {name}=0.75"
        )
    return number


@dataclass(frozen=True)
class DeviceSettings:
    """Backend and device settings read from the environment."""

    use_jax: bool | None
    """XPCS_USE_JAX: True forces JAX, False forces NumPy, None (unset/auto) decides."""
    gpu_memory_fraction: float | None
    """XPCS_GPU_MEMORY_FRACTION: share of GPU memory JAX may preallocate, or None."""
    use_gpu: bool | None = None
    """XPCS_USE_GPU: True requires a GPU, False keeps work on the CPU, None (unset/auto)
    takes JAX's default device (a GPU where there is one)."""
    gpu_fallback: bool = True
    """XPCS_GPU_FALLBACK: with a GPU required but absent, run on the CPU with a warning
    (True, the default) or raise (False)."""


def read_settings(environ: Mapping[str, str] | None = None) -> DeviceSettings:
    """Parse the ``XPCS_*`` variables of ``environ`` (default: ``os.environ``)."""
    env = os.environ if environ is None else environ
    return DeviceSettings(
        use_jax=parse_bool("XPCS_USE_JAX", env.get("XPCS_USE_JAX"), default=None, allow_auto=True),
        gpu_memory_fraction=parse_fraction("XPCS_GPU_MEMORY_FRACTION", env.get("XPCS_GPU_MEMORY_FRACTION")),
        use_gpu=parse_bool("XPCS_USE_GPU", env.get("XPCS_USE_GPU"), default=None, allow_auto=True),
        gpu_fallback=bool(parse_bool("XPCS_GPU_FALLBACK", env.get("XPCS_GPU_FALLBACK"), default=True)),
    )
