"""The first backend selection of a fresh interpreter, driven by the XPCS_* environment.

Each test starts a new Python process (``run_python`` in conftest.py): what a process
imports, how the environment is read at start and the once-per-process JAX configuration
can only be observed there.
"""

from __future__ import annotations

import importlib.util

import pytest

JAX_INSTALLED = (
    importlib.util.find_spec("jax") is not None and importlib.util.find_spec("xpcs_jax") is not None
)
needs_jax = pytest.mark.skipif(not JAX_INSTALLED, reason="needs JAX and xpcs-jax")

pytestmark = pytest.mark.subprocess

# Runs a few operations of every kind on the selected backend and reports what was imported.
SELECT_AND_COMPUTE = """
import xpcs_device

selection = xpcs_device.backend_selection()
backend = xpcs_device.get_backend()
jax_after_selection = "jax" in sys.modules

x = backend.asarray([0.5, 1.0, 2.0])
total = float(backend.sum(backend.sin(x) * 2.0))
compiled = float(backend.jit(lambda v: backend.sum(v * v))(x))
mapped = [float(v) for v in backend.vmap(lambda v: v + 1.0)(x)]
looped = float(backend.fori_loop(0, 3, lambda i, acc: acc + i, 0.0))
key = backend.random_key(0)
sample = backend.random_normal(key, (3,))
try:
    backend.grad(lambda v: backend.sum(v))(x)
except NotImplementedError:
    grad_supported = False
else:
    grad_supported = True

emit({
    "name": backend.name,
    "type": type(backend).__module__ + "." + type(backend).__qualname__,
    "source": selection.source,
    "reason": selection.reason,
    "same": backend is xpcs_device.get_backend() and selection.backend is backend,
    "jax_after_selection": jax_after_selection,
    "jax_after_ops": "jax" in sys.modules or "jaxlib" in sys.modules,
    "results": [total, compiled, mapped, looped, len(sample)],
    "array_backend": xpcs_device.array_backend_name(x),
    "grad_supported": grad_supported,
})
"""


# ------------------------------------------------------------------------- XPCS_USE_JAX off
@pytest.mark.parametrize("spelling", ["0", "false", "FALSE", "no", "off", "Off", " off "])
def test_use_jax_off_selects_numpy_and_never_imports_jax(run_python, spelling):
    result = run_python(SELECT_AND_COMPUTE, env={"XPCS_USE_JAX": spelling})
    assert result["name"] == "numpy"
    assert result["type"] == "xpcs_numpy.backend.NumPyBackend"
    assert result["source"] == "environment"
    assert "XPCS_USE_JAX" in result["reason"]
    assert result["same"]
    # even where JAX is installed, the NumPy backend never imports it
    assert result["jax_after_selection"] is False
    assert result["jax_after_ops"] is False
    assert result["array_backend"] == "numpy"
    assert result["grad_supported"] is False
    assert result["results"][1] == pytest.approx(0.25 + 1.0 + 4.0)
    assert result["results"][2] == pytest.approx([1.5, 2.0, 3.0])
    assert result["results"][3] == pytest.approx(3.0)


# -------------------------------------------------------------------------- XPCS_USE_JAX on
JAX_SPELLINGS = ["1", "true", "YES", "on"]

SELECT_EACH_SPELLING = """
import xpcs_device

outcomes = {}
for spelling in SPELLINGS:
    os.environ["XPCS_USE_JAX"] = spelling
    xpcs_device.reset_backend()
    first = attempt(lambda: [xpcs_device.get_backend().name, xpcs_device.backend_selection().source])
    again = attempt(lambda: xpcs_device.get_backend().name)  # an error is not cached as a choice
    outcomes[spelling] = {"first": first, "again": again}
emit(outcomes)
"""


def test_use_jax_on_selects_jax_or_says_how_to_install(run_python):
    code = f"SPELLINGS = {JAX_SPELLINGS!r}\n" + SELECT_EACH_SPELLING
    outcomes = run_python(code)
    assert sorted(outcomes) == sorted(JAX_SPELLINGS)
    for spelling, outcome in outcomes.items():
        if JAX_INSTALLED:
            assert outcome["first"] == {"value": ["jax", "environment"]}, spelling
            assert outcome["again"] == {"value": "jax"}, spelling
        else:
            for attempt in (outcome["first"], outcome["again"]):
                assert attempt.get("error") == "BackendNotAvailableError", (spelling, attempt)
                assert "ImportError" in attempt["bases"]
                assert "pip install" in attempt["message"]
                assert "xpcs-device[jax]" in attempt["message"]


@needs_jax
def test_use_jax_on_computes_with_jax(run_python):
    result = run_python(SELECT_AND_COMPUTE, env={"XPCS_USE_JAX": "1"})
    assert result["name"] == "jax"
    assert result["source"] == "environment"
    assert result["jax_after_ops"] is True
    assert result["array_backend"] == "jax"
    assert result["grad_supported"] is True
    assert result["results"][1] == pytest.approx(5.25)


def test_use_jax_on_when_jax_cannot_be_imported_is_an_import_error(run_python):
    # Where xpcs-jax is installed the entry point exists but `import jax` fails; where it is
    # not, the backend is not registered. Either way: an ImportError, never a silent NumPy.
    result = run_python(
        """
        import xpcs_device

        emit([attempt(lambda: xpcs_device.get_backend().name) for _ in range(2)])
        """,
        env={"XPCS_USE_JAX": "true"},
        block_jax=True,
    )
    for outcome in result:
        assert "error" in outcome, outcome
        assert "ImportError" in outcome["bases"]


# ------------------------------------------------------------------- XPCS_USE_JAX not a bool
@pytest.mark.parametrize("value", ["maybe", "2", "jax"])
def test_use_jax_with_an_unknown_value_is_an_error(run_python, value):
    result = run_python(
        """
        import xpcs_device

        outcomes = [attempt(xpcs_device.get_backend), attempt(xpcs_device.backend_selection)]
        emit({"outcomes": outcomes, "jax": "jax" in sys.modules})
        """,
        env={"XPCS_USE_JAX": value},
    )
    for outcome in result["outcomes"]:
        assert outcome.get("error") == "ConfigurationError", outcome
        assert "ValueError" in outcome["bases"]
        message = outcome["message"]
        assert "XPCS_USE_JAX" in message
        assert value in message
        for word in ("true", "false", "1", "0", "yes", "no", "on", "off", "auto"):
            assert word in message
    assert result["jax"] is False


# ------------------------------------------------------------------------------------ auto
@pytest.mark.parametrize(
    "env", [{}, {"XPCS_USE_JAX": "auto"}, {"XPCS_USE_JAX": ""}, {"XPCS_USE_JAX": " AUTO "}]
)
def test_auto_prefers_jax_where_installed(run_python, env):
    result = run_python(
        """
        import xpcs_device

        selection = xpcs_device.backend_selection()
        emit({"name": selection.name, "source": selection.source, "reason": selection.reason})
        """,
        env=env,
    )
    assert result["source"] == "auto"
    assert "JAX" in result["reason"]
    if JAX_INSTALLED:
        assert result["name"] == "jax"
    else:
        assert result["name"] == "numpy"
        assert "not installed" in result["reason"]


@pytest.mark.parametrize("env", [{}, {"XPCS_USE_JAX": "auto"}])
def test_auto_falls_back_to_numpy_when_jax_cannot_be_imported(run_python, env):
    result = run_python(SELECT_AND_COMPUTE, env=env, block_jax=True)
    assert result["name"] == "numpy"
    assert result["source"] == "auto"
    reason = result["reason"]
    assert "JAX" in reason
    assert "not usable" in reason or "not installed" in reason
    assert "NumPy" in reason
    assert result["jax_after_ops"] is False
    assert result["results"][1] == pytest.approx(5.25)


# ------------------------------------------------------------------ XPCS_GPU_MEMORY_FRACTION
@pytest.mark.parametrize("value", ["1.5", "abc", "0", "nan"])
@pytest.mark.parametrize("use_jax", [None, "1"])
def test_bad_memory_fraction_is_a_configuration_error_before_jax(run_python, value, use_jax):
    env = {"XPCS_GPU_MEMORY_FRACTION": value}
    if use_jax is not None:
        env["XPCS_USE_JAX"] = use_jax
    result = run_python(
        """
        import xpcs_device

        emit({"outcome": attempt(xpcs_device.get_backend), "jax": "jax" in sys.modules})
        """,
        env=env,
    )
    outcome = result["outcome"]
    assert outcome.get("error") == "ConfigurationError", outcome
    assert "XPCS_GPU_MEMORY_FRACTION" in outcome["message"]
    assert value in outcome["message"]
    # rejected by xpcs-device itself, not a crash somewhere inside JAX
    assert result["jax"] is False


@needs_jax
def test_memory_fraction_is_handed_to_jax_before_its_client_starts(run_python):
    result = run_python(
        """
        import warnings

        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            import xpcs_device

            backend = xpcs_device.get_backend()
            import xpcs_jax

            started_at_selection = xpcs_jax.jax_client_started()
            float(backend.sum(backend.ones(3)))
        config = xpcs_jax.jax_configuration()
        emit({
            "name": backend.name,
            "xla": os.environ.get("XLA_PYTHON_CLIENT_MEM_FRACTION"),
            "config": None if config is None else {
                "memory_fraction": config.memory_fraction,
                "applied": config.memory_fraction_applied,
                "times": config.times_configured,
                "x64": config.enable_x64,
            },
            "started_at_selection": started_at_selection,
            "warnings": [str(w.message) for w in caught if issubclass(w.category, RuntimeWarning)],
        })
        """,
        env={"XPCS_GPU_MEMORY_FRACTION": "0.4"},
    )
    assert result["name"] == "jax"
    assert result["xla"] is not None
    assert float(result["xla"]) == 0.4
    assert result["xla"] == "0.4"
    assert result["config"] == {"memory_fraction": 0.4, "applied": True, "times": 1, "x64": True}
    assert result["started_at_selection"] is False
    assert result["warnings"] == []


# ---------------------------------------------------------------------------- thread safety
RACE = """
import threading

import xpcs_device

sys.setswitchinterval(1e-6)
N = 32
barrier = threading.Barrier(N)
ids, errors = [], []


def worker():
    barrier.wait()
    try:
        ids.append(id(xpcs_device.get_backend()))
    except Exception as exc:
        errors.append(repr(exc))


threads = [threading.Thread(target=worker) for _ in range(N)]
for thread in threads:
    thread.start()
for thread in threads:
    thread.join()

try:
    import xpcs_jax
except ImportError:
    times_configured = None
else:
    config = xpcs_jax.jax_configuration()
    times_configured = None if config is None else config.times_configured
emit({
    "calls": len(ids),
    "distinct": len(set(ids)),
    "same_as_main": ids[:1] == [id(xpcs_device.get_backend())],
    "errors": errors,
    "name": xpcs_device.get_backend().name,
    "times_configured": times_configured,
})
"""


@pytest.mark.parametrize("env", [{}, {"XPCS_USE_JAX": "0"}], ids=["auto", "numpy"])
def test_racing_first_selection_in_a_fresh_process(run_python, env):
    result = run_python(RACE, env=env)
    assert result["errors"] == []
    assert result["calls"] == 32
    assert result["distinct"] == 1
    assert result["same_as_main"]
    if JAX_INSTALLED and not env:
        assert result["name"] == "jax"
        assert result["times_configured"] == 1
    else:
        assert result["name"] == "numpy"
        assert result["times_configured"] is None


@needs_jax
def test_racing_set_backend_jax_configures_jax_once(run_python):
    result = run_python(RACE.replace("xpcs_device.get_backend()))", "xpcs_device.set_backend('jax')))", 1))
    assert result["errors"] == []
    assert result["calls"] == 32
    assert result["distinct"] == 1
    assert result["name"] == "jax"
    assert result["times_configured"] == 1
