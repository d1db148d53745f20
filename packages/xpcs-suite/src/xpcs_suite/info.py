"""``xpcs info``: what is installed, which backend is selected and why, the devices it sees
and the one work is placed on."""

from __future__ import annotations

import platform
from dataclasses import asdict
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from xpcs_device import DeviceManager, backend_selection

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


def collect_info() -> dict[str, Any]:
    """Versions, the backend selection, the devices and the selected one, as plain data."""
    selection = backend_selection()
    manager = DeviceManager()
    return {
        "python": platform.python_version(),
        "packages": {dist: _version(dist) for dist in PACKAGES},
        "backend": {"name": selection.name, "source": selection.source, "reason": selection.reason},
        "devices": [asdict(d) for d in manager.devices()],
        "device": asdict(manager.get_device()),
    }


def format_info(info: dict[str, Any]) -> str:
    """Human-readable form of :func:`collect_info`."""
    lines = [f"python          {info['python']}", "packages:"]
    for dist, ver in info["packages"].items():
        lines.append(f"  {dist:<14}{ver or 'not installed'}")
    backend = info["backend"]
    lines.append(f"backend         {backend['name']} ({backend['source']}: {backend['reason']})")
    chosen = info["device"]["index"]
    lines.append("devices:")
    for d in info["devices"]:
        memory = f", {d['memory_bytes'] / 2**30:.1f} GiB" if d["memory_bytes"] else ""
        mark = "  <- work runs here" if d["index"] == chosen else ""
        lines.append(f"  {d['index']}: {d['kind']}:{d['id']} ({d['name']}{memory}){mark}")
    return "\n".join(lines)
