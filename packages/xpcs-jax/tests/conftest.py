"""Run code in a fresh interpreter: JAX configuration happens once per process, so only a
new process shows what the first selection does."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Callable
from typing import Any

import pytest


@pytest.fixture
def run_fresh() -> Callable[..., Any]:
    """The :func:`fresh_python` runner, as a fixture."""
    return fresh_python


def fresh_python(code: str, **env: str) -> Any:
    """Run ``code`` with ``env`` added to a copy of this environment stripped of the
    XPCS_/XLA_/JAX_ settings; return the JSON printed on its last line."""
    full_env = {k: v for k, v in os.environ.items() if not k.startswith(("XPCS_", "XLA_", "JAX_"))}
    full_env.update(env)
    out = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        env=full_env,
        check=False,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])
