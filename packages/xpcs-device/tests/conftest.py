"""Shared fixtures for the xpcs-device tests.

Every test starts and ends with no backend selected and no ``XPCS_*`` setting in the
environment, so the tests pass in any order (pytest-randomly) and in both test
environments: with JAX (``XPCS_TEST_BACKEND=jax``) and without it (``=numpy``).

``run_python`` runs code in a fresh interpreter, which is the only way to check what
happens at the first selection of a process (what gets imported, thread races, the
JAX configuration that can happen once per process).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pytest

from xpcs_device import reset_backend

# Names the test matrix environment; it is not a setting of xpcs-device, so it is kept.
_KEPT = frozenset({"XPCS_TEST_BACKEND"})

_RESULT_MARK = "@@xpcs-device-test-result@@"

# Prepended to the code of every child: `emit` hands a JSON value back to the test and
# `attempt` turns an exception into data the test can assert on.
_CHILD_PRELUDE = f"""
import json as _json
import os
import sys


def emit(value):
    print({_RESULT_MARK!r} + _json.dumps(value), flush=True)


def attempt(fn):
    try:
        value = fn()
    except Exception as exc:
        return {{
            "error": type(exc).__name__,
            "bases": [cls.__name__ for cls in type(exc).__mro__],
            "message": str(exc),
        }}
    return {{"value": value}}
"""

# Makes `import jax` (and jaxlib) fail as if JAX were not installed. The finder goes first
# on sys.meta_path, before anything could import JAX.
_BLOCK_JAX = """
class _BlockJax:
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in ("jax", "jaxlib"):
            raise ModuleNotFoundError(f"No module named {name!r} (blocked by the test)", name=name)
        return None


sys.meta_path.insert(0, _BlockJax())
"""


@pytest.fixture(autouse=True)
def _clean_backend_state(monkeypatch: pytest.MonkeyPatch):
    for name in list(os.environ):
        if name.startswith("XPCS_") and name not in _KEPT:
            monkeypatch.delenv(name)
    reset_backend()
    yield
    reset_backend()


def child_environment(updates: Mapping[str, str] | None = None) -> dict[str, str]:
    """A copy of this process's environment without any ``XPCS_*`` variable (nor the XLA
    memory fraction, which the child may set itself), plus ``updates``."""
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith("XPCS_") and name != "XLA_PYTHON_CLIENT_MEM_FRACTION"
    }
    env.update(updates or {})
    return env


@pytest.fixture(scope="session")
def child_cwd(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An empty working directory for children, so nothing is found through ``''`` on sys.path."""
    return tmp_path_factory.mktemp("child-cwd")


@pytest.fixture
def run_python(child_cwd: Path) -> Callable[..., Any]:
    """``run_python(code, env=..., block_jax=..., pythonpath=...)`` runs ``code`` in a
    fresh interpreter and returns the value the child passed to ``emit``."""

    def run(
        code: str,
        *,
        env: Mapping[str, str] | None = None,
        block_jax: bool = False,
        pythonpath: Path | None = None,
    ) -> Any:
        updates = dict(env or {})
        if pythonpath is not None:
            parts = [str(pythonpath), os.environ.get("PYTHONPATH", "")]
            updates["PYTHONPATH"] = os.pathsep.join(part for part in parts if part)
        source = _CHILD_PRELUDE + (_BLOCK_JAX if block_jax else "") + textwrap.dedent(code)
        completed = subprocess.run(
            [sys.executable, "-c", source],
            env=child_environment(updates),
            cwd=child_cwd,
            capture_output=True,
            text=True,
            timeout=180,
            check=False,
        )
        assert completed.returncode == 0, (
            f"child exited with {completed.returncode}\n--- stdout\n{completed.stdout}"
            f"\n--- stderr\n{completed.stderr}"
        )
        results = [
            line[len(_RESULT_MARK) :]
            for line in completed.stdout.splitlines()
            if line.startswith(_RESULT_MARK)
        ]
        assert len(results) == 1, f"expected one result from the child, got:\n{completed.stdout}"
        return json.loads(results[0])

    return run
