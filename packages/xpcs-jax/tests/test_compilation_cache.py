"""JAX's persistent compilation cache, as configure_jax sets it up (fresh interpreters)."""

import pytest

pytest.importorskip("jax")

pytestmark = pytest.mark.subprocess

# The child counts JAX's own monitoring events: a deterministic signal of compiling vs loading.
_CHILD = """
import json
import jax.monitoring
events = {"hits": 0, "misses": 0}
def listen(name, **kwargs):
    if name == "/jax/compilation_cache/cache_hits":
        events["hits"] += 1
    elif name == "/jax/compilation_cache/cache_misses":
        events["misses"] += 1
jax.monitoring.register_event_listener(listen)
from xpcs_jax import jax_configuration
from xpcs_device import use_backend
from xpcs_kernels.geometry import TransmissionGeometry
from xpcs_kernels.qmap import compute_qmap
with use_backend("jax"):
    qmap = compute_qmap(TransmissionGeometry(10.0, 5.0, 75e-6, 12.5, 7.0), (48, 64))
    qmap.q_inv_angstrom.block_until_ready()
print(json.dumps({"dir": jax_configuration().compilation_cache_dir, **events}))
"""


def test_second_process_loads_the_compiled_qmap(run_fresh, tmp_path):
    pytest.importorskip("xpcs_kernels", reason="the q-map kernel lives in xpcs-kernels")
    cache = tmp_path / "jax-cache"
    first = run_fresh(_CHILD, XPCS_JAX_CACHE_DIR=str(cache))
    assert first["dir"] == str(cache)
    assert first["misses"] >= 1
    assert first["hits"] == 0
    assert any(cache.iterdir())
    second = run_fresh(_CHILD, XPCS_JAX_CACHE_DIR=str(cache))
    assert second["hits"] >= 1
    assert second["misses"] == 0


@pytest.mark.parametrize("value", ["off", "0", "FALSE"])
def test_cache_can_be_turned_off(run_fresh, tmp_path, value):
    pytest.importorskip("xpcs_kernels", reason="the q-map kernel lives in xpcs-kernels")
    result = run_fresh(_CHILD, XPCS_JAX_CACHE_DIR=value, XDG_CACHE_HOME=str(tmp_path))
    assert result == {"dir": None, "hits": 0, "misses": 0}
    assert not (tmp_path / "xpcs").exists()


def test_default_directory_follows_xdg_cache_home(run_fresh, tmp_path):
    result = run_fresh(
        """
        import json
        from xpcs_jax import JAXBackend, jax_configuration
        import jax
        JAXBackend()
        print(json.dumps({"dir": jax_configuration().compilation_cache_dir,
                          "jax": jax.config.jax_compilation_cache_dir}))
        """,
        XDG_CACHE_HOME=str(tmp_path),
    )
    expected = str(tmp_path / "xpcs" / "jax")
    assert result == {"dir": expected, "jax": expected}


def test_default_directory_without_xdg(monkeypatch, tmp_path):
    from xpcs_jax.config import compilation_cache_dir

    monkeypatch.delenv("XPCS_JAX_CACHE_DIR", raising=False)
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    assert compilation_cache_dir() == str(tmp_path / ".cache" / "xpcs" / "jax")
    monkeypatch.setenv("XPCS_JAX_CACHE_DIR", "~/elsewhere")
    assert compilation_cache_dir() == str(tmp_path / "elsewhere")
