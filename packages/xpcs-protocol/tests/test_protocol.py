import json
import subprocess
import sys
import textwrap

import pytest

from xpcs_protocol import BACKEND_MEMBERS, BackendProtocol

CATEGORIES = {
    "creation": {"array", "asarray", "zeros", "ones", "full", "arange", "linspace", "eye", "meshgrid"},
    "trigonometry": {"sin", "cos", "tan", "arcsin", "arccos", "arctan", "arctan2", "hypot"},
    "statistics": {"sum", "mean", "std", "var", "min", "max", "median", "percentile", "nanmean"},
    "binning": {"digitize", "bincount", "histogram", "unique", "searchsorted"},
    "masking": {"where", "nonzero", "isnan", "isinf", "isfinite", "count_nonzero", "any", "all"},
    "math": {"exp", "log", "sqrt", "power", "abs", "clip", "maximum", "minimum"},
    "manipulation": {"reshape", "transpose", "concatenate", "stack", "take", "index_add", "index_set"},
    "conversion": {"to_numpy", "from_numpy", "astype"},
    "random": {"random_key", "random_split", "random_uniform", "random_normal", "random_poisson"},
    "transformations": {"jit", "grad", "value_and_grad", "vmap", "scan", "fori_loop", "cond", "while_loop"},
    "capabilities": {"name", "supports_jit", "supports_grad", "supports_gpu"},
}


def test_has_the_design_members():
    assert len(BACKEND_MEMBERS) >= 60
    for category, members in CATEGORIES.items():
        assert members <= BACKEND_MEMBERS, f"{category}: missing {sorted(members - BACKEND_MEMBERS)}"


def test_static_sizes_are_explicit_keywords():
    import inspect

    bincount = inspect.signature(BackendProtocol.bincount).parameters["length"]
    assert bincount.kind is inspect.Parameter.KEYWORD_ONLY
    assert bincount.default is inspect.Parameter.empty
    for member in ("nonzero", "unique"):
        size = inspect.signature(getattr(BackendProtocol, member)).parameters["size"]
        assert size.kind is inspect.Parameter.KEYWORD_ONLY
    jit = inspect.signature(BackendProtocol.jit).parameters
    assert "static_argnums" in jit
    vmap = inspect.signature(BackendProtocol.vmap).parameters
    assert {"in_axes", "out_axes"} <= set(vmap)


def test_runtime_checkable_checks_names():
    complete = type("Complete", (), {name: (lambda self: None) for name in BACKEND_MEMBERS})()
    assert isinstance(complete, BackendProtocol)
    partial = type("Partial", (), {name: None for name in sorted(BACKEND_MEMBERS)[1:]})()
    assert not isinstance(partial, BackendProtocol)


def test_import_pulls_in_neither_numpy_nor_jax():
    code = textwrap.dedent(
        """
        import json, sys
        import xpcs_protocol
        print(json.dumps(sorted(m for m in ("numpy", "jax", "jaxlib") if m in sys.modules)))
        """
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout) == []


def test_static_conformance_is_checked_by_mypy(tmp_path):
    """mypy (strict) rejects an implementation whose signature drifts from the protocol."""
    api = pytest.importorskip("mypy.api")
    members = "\n".join(
        f"    def {name}(self, *args: Any, **kwargs: Any) -> Any: ..."
        for name in sorted(BACKEND_MEMBERS)
        if name not in {"name", "supports_jit", "supports_grad", "supports_gpu", "bincount"}
    )
    source = (
        textwrap.dedent(
            """
        from typing import Any
        from xpcs_protocol import BackendProtocol

        class Drifted:
            @property
            def name(self) -> str: return "drifted"
            @property
            def supports_jit(self) -> bool: return False
            @property
            def supports_grad(self) -> bool: return False
            @property
            def supports_gpu(self) -> bool: return False
            # `length` renamed: callers passing length=... would break
            def bincount(self, x: Any, weights: Any = None, *, size: int) -> Any: ...
        """
        )
        + members
        + "\n\n_: BackendProtocol = Drifted()\n"
    )
    module = tmp_path / "drifted.py"
    module.write_text(source)
    stdout, _, status = api.run(
        ["--strict", "--no-incremental", "--cache-dir", str(tmp_path / "cache"), str(module)]
    )
    assert status == 1, stdout
    assert "BackendProtocol" in stdout
    assert "bincount" in stdout
    fixed = source.replace("*, size: int", "*, length: int")
    module.write_text(fixed)
    stdout, _, status = api.run(
        ["--strict", "--no-incremental", "--cache-dir", str(tmp_path / "cache"), str(module)]
    )
    assert status == 0, stdout
