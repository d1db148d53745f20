"""The installed `xpcs` command in each test environment (run once per backend)."""

import importlib.util
import json
import os
import shutil
import subprocess
import sys
from importlib.metadata import version

import pytest

BACKEND = os.environ.get("XPCS_TEST_BACKEND")
JAX_INSTALLED = importlib.util.find_spec("jax") is not None
PACKAGES = [
    "xpcs-protocol",
    "xpcs-numpy",
    "xpcs-device",
    "xpcs-adapters",
    "xpcs-kernels",
    "xpcs-fit",
    "xpcs-suite",
]


def _xpcs(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    exe = shutil.which("xpcs", path=os.path.dirname(sys.executable)) or shutil.which("xpcs")
    assert exe, "the xpcs console script is not installed"
    clean = {k: v for k, v in os.environ.items() if not k.startswith("XPCS_USE")}
    clean.update(env)
    return subprocess.run([exe, *args], capture_output=True, text=True, env=clean, check=False)


def test_environment_matches_its_backend():
    if BACKEND == "numpy":
        assert not JAX_INSTALLED, "the NumPy test environment must not have JAX installed"
    if BACKEND == "jax":
        assert JAX_INSTALLED


def test_info_reports_the_auto_selection():
    result = _xpcs("info", "--json")
    assert result.returncode == 0, result.stderr
    info = json.loads(result.stdout)
    expected = "jax" if JAX_INSTALLED else "numpy"
    assert info["backend"]["name"] == expected
    assert info["backend"]["source"] == "auto"
    assert {d["kind"] for d in info["devices"]} >= {"cpu"}
    assert {d["backend"] for d in info["devices"]} == {expected}
    assert info["device"] in info["devices"]
    for dist in PACKAGES:
        assert info["packages"][dist] == version(dist)


@pytest.mark.parametrize("value", ["0", "false", "OFF"])
def test_forcing_numpy_works_everywhere(value):
    result = _xpcs("info", "--json", XPCS_USE_JAX=value)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["backend"]["name"] == "numpy"


def test_forcing_jax_where_it_is_missing_says_how_to_install():
    result = _xpcs("info", XPCS_USE_JAX="1")
    if JAX_INSTALLED:
        assert result.returncode == 0, result.stderr
        assert "backend         jax" in result.stdout
    else:
        assert result.returncode == 2
        assert "pip install" in result.stderr
        assert "Traceback" not in result.stderr


def test_invalid_setting_is_a_clear_error():
    result = _xpcs("info", XPCS_GPU_MEMORY_FRACTION="2")
    assert result.returncode == 2
    assert "XPCS_GPU_MEMORY_FRACTION" in result.stderr


def test_package_versions_match_their_about_modules():
    for dist in PACKAGES + (["xpcs-jax"] if JAX_INSTALLED else []):
        module = __import__(dist.replace("-", "_"))
        assert module.__version__ == version(dist)
