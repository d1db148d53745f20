"""``xpcs info``: what is installed, which backend is selected and why, which devices JAX sees."""

from __future__ import annotations

import importlib.util
import platform
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from xpcs_device import backend_selection

__all__ = ["PACKAGES", "collect_info", "format_info"]

PACKAGES = (
    "xpcs-suite",
    "xpcs-protocol",
    "xpcs-numpy",
    "xpcs-jax",
    "xpcs-device",
    "xpcs-adapters",
    "xpcs-kernels",
    "xpcs-fit",
    "numpy",
    "jax",
    "jaxlib",
)


def _version(dist: str) -> str | None:
    try:
        return version(dist)
    except PackageNotFoundError:
        return None


def _jax_devices(selected: str) -> list[dict[str, Any]] | str:
    if importlib.util.find_spec("jax") is None:
        return "JAX is not installed"
    if selected != "jax":
        # Importing JAX here would start it under a NumPy selection; say so instead.
        return "not queried (the NumPy backend is selected)"
    import jax

    return [
        {"id": d.id, "platform": d.platform, "kind": getattr(d, "device_kind", d.platform)}
        for d in jax.devices()
    ]


def collect_info() -> dict[str, Any]:
    """Versions, the backend selection and the JAX devices, as plain data."""
    selection = backend_selection()
    return {
        "python": platform.python_version(),
        "packages": {dist: _version(dist) for dist in PACKAGES},
        "backend": {"name": selection.name, "source": selection.source, "reason": selection.reason},
        "jax_devices": _jax_devices(selection.name),
    }


def format_info(info: dict[str, Any]) -> str:
    """Human-readable form of :func:`collect_info`."""
    lines = [f"python          {info['python']}", "packages:"]
    for dist, ver in info["packages"].items():
        lines.append(f"  {dist:<14}{ver or 'not installed'}")
    backend = info["backend"]
    lines.append(f"backend         {backend['name']} ({backend['source']}: {backend['reason']})")
    devices = info["jax_devices"]
    if isinstance(devices, str):
        lines.append(f"JAX devices     {devices}")
    else:
        lines.append(
            "JAX devices     " + ", ".join(f"{d['platform']}:{d['id']} ({d['kind']})" for d in devices)
        )
    return "\n".join(lines)
