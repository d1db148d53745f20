"""A third-party backend plugs in through the ``xpcs.backends`` entry-point group.

The plugin is a plain module plus a ``.dist-info`` folder (what ``pip install`` leaves
behind) on ``PYTHONPATH`` of a fresh interpreter: nothing in xpcs-device names it.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

pytestmark = pytest.mark.subprocess

PLUGIN_MODULE = '''
"""A backend from outside the xpcs packages."""

from xpcs_numpy import NumPyBackend


class DummyBackend(NumPyBackend):
    __slots__ = ()

    @property
    def name(self):
        return "dummy"


class NotABackend:
    """Has a name, and nothing else a backend needs."""

    name = "broken"


class FractionBackend(NumPyBackend):
    """Records the memory fraction its constructor receives (no __slots__: has a __dict__)."""

    def __init__(self, *, memory_fraction=None):
        self.received_memory_fraction = memory_fraction

    @property
    def name(self):
        return "fractional"
'''

ENTRY_POINTS = """\
[xpcs.backends]
dummy = dummy_backend:DummyBackend
broken = dummy_backend:NotABackend
fractional = dummy_backend:FractionBackend
"""


@pytest.fixture
def plugin_path(tmp_path: Path) -> Path:
    root = tmp_path / "site"
    root.mkdir()
    (root / "dummy_backend.py").write_text(textwrap.dedent(PLUGIN_MODULE).lstrip())
    dist_info = root / "dummy_backend-0.1.dist-info"
    dist_info.mkdir()
    (dist_info / "METADATA").write_text("Metadata-Version: 2.1\nName: dummy-backend\nVersion: 0.1\n")
    (dist_info / "entry_points.txt").write_text(ENTRY_POINTS)
    return root


def test_plugin_backend_is_listed_and_selectable(run_python, plugin_path):
    result = run_python(
        """
        import xpcs_device

        names = sorted(xpcs_device.available_backends())
        imported_by_listing = "dummy_backend" in sys.modules
        returned = xpcs_device.set_backend("dummy")
        backend = xpcs_device.get_backend()
        selection = xpcs_device.backend_selection()
        with xpcs_device.use_backend("dummy") as scoped:
            scoped_same = scoped is backend
        emit({
            "names": names,
            "imported_by_listing": imported_by_listing,
            "name": backend.name,
            "same": returned is backend,
            "scoped_same": scoped_same,
            "type": type(backend).__module__ + "." + type(backend).__qualname__,
            "source": selection.source,
            "value": float(backend.sum(backend.asarray([1.0, 2.0, 3.0]))),
            "entry_point": xpcs_device.available_backends()["dummy"].value,
        })
        """,
        pythonpath=plugin_path,
    )
    assert {"dummy", "numpy"} <= set(result["names"])
    assert result["imported_by_listing"] is False  # listing loads no plugin
    assert result["name"] == "dummy"
    assert result["same"]
    assert result["scoped_same"]
    assert result["type"] == "dummy_backend.DummyBackend"
    assert result["source"] == "set_backend"
    assert result["value"] == 6.0
    assert result["entry_point"] == "dummy_backend:DummyBackend"


def test_plugin_is_not_visible_without_its_distribution(run_python):
    result = run_python(
        """
        import xpcs_device

        emit({
            "names": sorted(xpcs_device.available_backends()),
            "outcome": attempt(lambda: xpcs_device.set_backend("dummy").name),
        })
        """
    )
    assert "dummy" not in result["names"]
    assert result["outcome"]["error"] == "BackendNotAvailableError"
    assert "'dummy'" in result["outcome"]["message"]
    assert "install the package" in result["outcome"]["message"]


def test_plugin_factory_that_is_not_a_backend_is_a_type_error(run_python, plugin_path):
    result = run_python(
        """
        import xpcs_device

        numpy_backend = xpcs_device.set_backend("numpy")
        emit({
            "create": attempt(lambda: type(xpcs_device.create_backend("broken")).__name__),
            "set": attempt(lambda: xpcs_device.set_backend("broken").name),
            "unchanged": xpcs_device.get_backend() is numpy_backend,
        })
        """,
        pythonpath=plugin_path,
    )
    for outcome in (result["create"], result["set"]):
        assert outcome.get("error") == "TypeError", outcome
        assert "'broken'" in outcome["message"]
        assert "dummy_backend:NotABackend" in outcome["message"]
        assert "BackendProtocol" in outcome["message"]
    assert result["unchanged"]


def test_plugin_factory_receives_the_memory_fraction(run_python, plugin_path):
    result = run_python(
        """
        import xpcs_device

        selected = xpcs_device.set_backend("fractional")
        explicit = xpcs_device.create_backend("fractional", memory_fraction=0.5)
        emit({
            "selected": selected.received_memory_fraction,
            "explicit": explicit.received_memory_fraction,
            "default": xpcs_device.create_backend("fractional").received_memory_fraction,
            # a factory without the keyword is called without it
            "dummy": xpcs_device.create_backend("dummy", memory_fraction=0.5).name,
        })
        """,
        env={"XPCS_GPU_MEMORY_FRACTION": "0.25", "XPCS_USE_JAX": "0"},
        pythonpath=plugin_path,
    )
    assert result == {"selected": 0.25, "explicit": 0.5, "default": None, "dummy": "dummy"}
