"""Backend selection in this process: set_backend, get_backend, reset_backend, use_backend."""

from __future__ import annotations

import asyncio
import importlib.util
import os
import sys
import threading

import pytest

from xpcs_device import (
    BackendNotAvailableError,
    BackendSelection,
    ConfigurationError,
    available_backends,
    backend_selection,
    get_backend,
    reset_backend,
    set_backend,
    use_backend,
)
from xpcs_numpy import NumPyBackend
from xpcs_protocol import BackendProtocol

JAX_INSTALLED = (
    importlib.util.find_spec("jax") is not None and importlib.util.find_spec("xpcs_jax") is not None
)
TEST_BACKEND = os.environ.get("XPCS_TEST_BACKEND")


class NamedBackend(NumPyBackend):
    """A custom backend: the NumPy operations under another name."""

    __slots__ = ("_name",)

    def __init__(self, name: str) -> None:
        self._name = name

    @property
    def name(self) -> str:
        return self._name


class NotABackend:
    name = "not-a-backend"


# ------------------------------------------------------------------------ the test matrix
@pytest.mark.skipif(TEST_BACKEND is None, reason="only in hatch's test matrix")
def test_the_test_environment_is_the_one_it_claims():
    # the JAX-dependent checks below are only meaningful if this is right
    assert TEST_BACKEND in ("numpy", "jax")
    assert JAX_INSTALLED is (TEST_BACKEND == "jax")
    assert ("jax" in available_backends()) is (TEST_BACKEND == "jax")


# ------------------------------------------------------------------------------ set_backend
def test_set_backend_by_name():
    returned = set_backend("numpy")
    backend = get_backend()
    assert backend is returned
    assert isinstance(backend, NumPyBackend)
    assert backend.name == "numpy"
    selection = backend_selection()
    assert isinstance(selection, BackendSelection)
    assert selection.source == "set_backend"
    assert selection.name == "numpy"
    assert selection.backend is backend
    assert "numpy" in selection.reason


@pytest.mark.parametrize("spelling", ["NumPy", " numpy ", "NUMPY"])
def test_set_backend_name_ignores_case_and_spaces(spelling):
    assert set_backend(spelling).name == "numpy"
    assert get_backend().name == "numpy"


def test_get_backend_returns_the_same_object_every_time(monkeypatch):
    monkeypatch.setenv("XPCS_USE_JAX", "0")
    first = get_backend()
    assert all(get_backend() is first for _ in range(10))
    assert backend_selection() is backend_selection()


def test_one_instance_per_name_until_reset():
    first = set_backend("numpy")
    assert set_backend("numpy") is first
    with use_backend("numpy") as scoped:
        assert scoped is first
    reset_backend()
    assert set_backend("numpy") is not first


def test_set_backend_takes_precedence_over_the_environment(monkeypatch):
    # XPCS_USE_JAX=1 must not be acted on (it would fail where JAX is not installed)
    monkeypatch.setenv("XPCS_USE_JAX", "1")
    set_backend("numpy")
    assert get_backend().name == "numpy"
    assert backend_selection().source == "set_backend"


def test_set_backend_replaces_an_earlier_selection(monkeypatch):
    monkeypatch.setenv("XPCS_USE_JAX", "0")
    assert backend_selection().source == "environment"
    custom = NamedBackend("custom")
    set_backend(custom)
    assert get_backend() is custom
    set_backend("numpy")
    assert get_backend().name == "numpy"


def test_set_backend_accepts_a_custom_instance():
    custom = NamedBackend("custom")
    assert isinstance(custom, BackendProtocol)
    assert set_backend(custom) is custom
    assert get_backend() is custom
    assert get_backend().name == "custom"
    selection = backend_selection()
    assert selection.source == "set_backend"
    assert selection.name == "custom"
    assert "NamedBackend" in selection.reason


@pytest.mark.parametrize("bad", [object(), 42, None, 1.5, NotABackend()])
def test_set_backend_of_a_non_backend_is_a_type_error(bad):
    before = set_backend("numpy")
    with pytest.raises(TypeError, match="BackendProtocol"):
        set_backend(bad)
    # the failed call changed nothing
    assert get_backend() is before
    assert backend_selection().source == "set_backend"


def test_set_backend_of_a_backend_class_instead_of_an_instance_is_a_type_error():
    """``set_backend(NumPyBackend)`` (the class, a common slip) must not be accepted: the
    class has every member name, but ``get_backend().name`` would be a property object."""
    before = set_backend("numpy")
    with pytest.raises(TypeError):
        set_backend(NumPyBackend)  # type: ignore[arg-type]
    assert get_backend() is before


def test_set_backend_of_an_unknown_name_lists_registered_backends():
    before = set_backend("numpy")
    with pytest.raises(BackendNotAvailableError) as info:
        set_backend("no-such-backend")
    message = str(info.value)
    assert "no-such-backend" in message
    assert "registered backends" in message
    for name in available_backends():
        assert name in message
    assert "numpy" in message
    assert ("jax" in message) is JAX_INSTALLED
    assert isinstance(info.value, ImportError)
    assert get_backend() is before


# ------------------------------------------------------------- environment and reset_backend
def test_reset_then_environment_selects(monkeypatch):
    set_backend(NamedBackend("custom"))
    reset_backend()
    monkeypatch.setenv("XPCS_USE_JAX", "0")
    selection = backend_selection()
    assert selection.source == "environment"
    assert selection.name == "numpy"
    assert "XPCS_USE_JAX" in selection.reason
    assert get_backend() is selection.backend


def test_environment_is_read_at_first_selection_and_again_after_reset(monkeypatch):
    monkeypatch.setenv("XPCS_USE_JAX", "no")
    first = get_backend()
    assert first.name == "numpy"
    # a later change is not seen until reset_backend
    monkeypatch.setenv("XPCS_USE_JAX", "maybe")
    assert get_backend() is first
    reset_backend()
    with pytest.raises(ConfigurationError, match="XPCS_USE_JAX"):
        get_backend()
    # a failed selection is not cached: the error repeats, and a fix is picked up
    with pytest.raises(ConfigurationError, match="XPCS_USE_JAX"):
        backend_selection()
    monkeypatch.setenv("XPCS_USE_JAX", "off")
    assert get_backend().name == "numpy"
    assert get_backend() is not first


def test_bad_memory_fraction_fails_selection(monkeypatch):
    monkeypatch.setenv("XPCS_USE_JAX", "0")
    monkeypatch.setenv("XPCS_GPU_MEMORY_FRACTION", "1.5")
    with pytest.raises(ConfigurationError, match="XPCS_GPU_MEMORY_FRACTION"):
        get_backend()
    with pytest.raises(ConfigurationError, match="XPCS_GPU_MEMORY_FRACTION"):
        set_backend("numpy")


@pytest.mark.skipif(JAX_INSTALLED, reason="JAX is installed here")
@pytest.mark.parametrize("spelling", ["1", "true", "YES", "on"])
def test_use_jax_without_jax_says_how_to_install(monkeypatch, spelling):
    monkeypatch.setenv("XPCS_USE_JAX", spelling)
    with pytest.raises(BackendNotAvailableError) as info:
        get_backend()
    assert "pip install" in str(info.value)
    assert "xpcs-device[jax]" in str(info.value)
    # asked for explicitly, JAX is never replaced by NumPy silently
    with pytest.raises(BackendNotAvailableError):
        get_backend()


@pytest.mark.skipif(JAX_INSTALLED, reason="JAX is installed here")
def test_set_backend_jax_without_jax_says_how_to_install():
    with pytest.raises(BackendNotAvailableError, match="pip install"):
        set_backend("jax")


@pytest.mark.skipif(JAX_INSTALLED, reason="JAX is installed here")
def test_auto_without_jax_is_numpy_without_error():
    selection = backend_selection()
    assert selection.name == "numpy"
    assert selection.source == "auto"
    assert "not installed" in selection.reason


@pytest.mark.skipif(not JAX_INSTALLED, reason="needs JAX")
def test_set_backend_jax_where_installed():
    backend = set_backend("jax")
    assert backend.name == "jax"
    assert type(backend).__module__.startswith("xpcs_jax")
    assert get_backend() is backend
    with use_backend("jax") as scoped:
        assert scoped is backend


# ------------------------------------------------------------------------------ use_backend
def test_use_backend_is_scoped_to_the_block():
    outer = set_backend(NamedBackend("outer"))
    with use_backend("numpy") as inside:
        assert inside.name == "numpy"
        assert get_backend() is inside
        assert backend_selection().source == "use_backend"
    assert get_backend() is outer
    assert backend_selection().source == "set_backend"


def test_use_backend_blocks_nest():
    base = set_backend("numpy")
    first, second = NamedBackend("first"), NamedBackend("second")
    with use_backend(first):
        assert get_backend() is first
        with use_backend(second):
            assert get_backend() is second
            with use_backend("numpy"):
                assert get_backend() is base
            assert get_backend() is second
        assert get_backend() is first
    assert get_backend() is base


class Boom(Exception):
    pass


def _fail_inside(backend, seen: list[object]) -> None:
    with use_backend(backend):
        seen.append(get_backend())
        raise Boom


def test_use_backend_restores_after_an_exception():
    base = set_backend("numpy")
    first, second = NamedBackend("first"), NamedBackend("second")
    seen: list[object] = []
    with use_backend(first):
        with pytest.raises(Boom):
            _fail_inside(second, seen)
        assert get_backend() is first
    with pytest.raises(Boom):
        _fail_inside(first, seen)
    assert seen == [second, first]
    assert get_backend() is base
    assert backend_selection().source == "set_backend"


def test_use_backend_of_bad_values_raises_on_entry():
    base = set_backend("numpy")
    with pytest.raises(TypeError, match="BackendProtocol"), use_backend(object()):  # type: ignore[arg-type]
        pytest.fail("entered the block")
    with pytest.raises(BackendNotAvailableError), use_backend("no-such-backend"):
        pytest.fail("entered the block")
    assert get_backend() is base


def test_use_backend_wins_over_set_backend_inside_the_block():
    custom, other = NamedBackend("custom"), NamedBackend("other")
    set_backend(custom)
    with use_backend("numpy") as scoped:
        set_backend(other)  # process-wide: takes effect once the block ends
        assert get_backend() is scoped
    assert get_backend() is other


def test_use_backend_on_top_of_environment_selection(monkeypatch):
    monkeypatch.setenv("XPCS_USE_JAX", "false")
    custom = NamedBackend("custom")
    with use_backend(custom):
        assert get_backend() is custom
    assert backend_selection().source == "environment"
    assert get_backend().name == "numpy"


def test_use_backend_of_an_instance_leaves_no_trace_after_the_block(monkeypatch):
    """A scoped instance must not become the process-wide backend of its name."""
    monkeypatch.setenv("XPCS_USE_JAX", "0")

    class NumPyVariant(NumPyBackend):  # a NumPy backend subclass keeps the name "numpy"
        __slots__ = ()

    scoped = NumPyVariant()
    with use_backend(scoped):
        assert get_backend() is scoped
    # the first selection after the block (environment: numpy) must not be the scoped object
    assert get_backend() is not scoped
    assert type(get_backend()) is NumPyBackend
    assert type(set_backend("numpy")) is NumPyBackend


def test_use_backend_of_an_instance_does_not_register_its_name():
    with use_backend(NamedBackend("custom")):
        pass
    with pytest.raises(BackendNotAvailableError):
        set_backend("custom")


def test_use_backend_in_one_thread_does_not_affect_another():
    base = set_backend("numpy")
    custom, mine = NamedBackend("custom"), NamedBackend("mine")
    entered, release = threading.Event(), threading.Event()
    seen: dict[str, object] = {}

    def worker():
        with use_backend(custom):
            seen["inside"] = get_backend()
            entered.set()
            release.wait(10)
            seen["still inside"] = get_backend()
        seen["after"] = get_backend()

    thread = threading.Thread(target=worker)
    thread.start()
    try:
        assert entered.wait(10)
        # the worker is inside its block now; this thread is not affected
        assert get_backend() is base
        assert backend_selection().source == "set_backend"
        with use_backend(mine):
            # ... and the worker does not see this thread's block
            release.set()
            thread.join(10)
            assert get_backend() is mine
    finally:
        release.set()
        thread.join(10)
    assert not thread.is_alive()
    assert seen == {"inside": custom, "still inside": custom, "after": base}
    assert get_backend() is base


def test_new_threads_start_from_the_process_selection():
    base = set_backend("numpy")
    seen = []
    with use_backend(NamedBackend("custom")):
        thread = threading.Thread(target=lambda: seen.append(get_backend()))
        thread.start()
        thread.join(10)
    assert seen == [base]


def test_asyncio_tasks_each_see_their_own_backend():
    base = set_backend(NamedBackend("base"))
    # where JAX is installed, the two real backends; otherwise a custom one against NumPy
    choices = {"a": "numpy", "b": "jax"} if JAX_INSTALLED else {"a": NamedBackend("custom"), "b": "numpy"}
    log: list[tuple[str, int, str, str]] = []

    async def task(label: str, barrier: asyncio.Barrier):
        with use_backend(choices[label]) as mine:
            await barrier.wait()  # both tasks are inside their blocks from here on
            for step in range(5):
                selection = backend_selection()
                assert get_backend() is mine
                log.append((label, step, selection.name, selection.source))
                await asyncio.sleep(0)
        after = get_backend()
        return mine, after

    async def main():
        barrier = asyncio.Barrier(2)
        return await asyncio.gather(task("a", barrier), task("b", barrier))

    (mine_a, after_a), (mine_b, after_b) = asyncio.run(main())
    assert mine_a is not mine_b
    assert {mine_a.name, mine_b.name} == {c if isinstance(c, str) else c.name for c in choices.values()}
    assert after_a is base
    assert after_b is base
    # the tasks really ran interleaved: the log alternates between them
    labels = [entry[0] for entry in log]
    assert labels.count("a") == labels.count("b") == 5
    first = {label: labels.index(label) for label in "ab"}
    last = {label: len(labels) - 1 - labels[::-1].index(label) for label in "ab"}
    assert first["b"] < last["a"]
    assert first["a"] < last["b"]
    for label, _step, name, source in log:
        assert name == (mine_a if label == "a" else mine_b).name
        assert source == "use_backend"
    assert get_backend() is base


# ------------------------------------------------------------------------------ thread races
@pytest.fixture
def fast_thread_switching():
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    yield
    sys.setswitchinterval(interval)


def _race(n: int, fn) -> list[object]:
    barrier = threading.Barrier(n)
    results: list[object] = []

    def worker():
        barrier.wait()
        try:
            results.append(fn())
        except Exception as exc:  # reported by the assertion below
            results.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert len(results) == n
    return results


@pytest.mark.usefixtures("fast_thread_switching")
def test_racing_first_selection_gives_one_backend(monkeypatch):
    monkeypatch.setenv("XPCS_USE_JAX", "0")
    results = _race(32, get_backend)
    assert not [r for r in results if isinstance(r, Exception)]
    assert len({id(r) for r in results}) == 1
    assert get_backend() is results[0]


@pytest.mark.usefixtures("fast_thread_switching")
def test_racing_set_backend_gives_one_backend():
    results = _race(32, lambda: set_backend("numpy"))
    assert not [r for r in results if isinstance(r, Exception)]
    assert len({id(r) for r in results}) == 1
    assert get_backend() is results[0]


# ----------------------------------------------------------------------- available_backends
def test_available_backends_lists_installed_backends():
    backends = available_backends()
    assert "numpy" in backends
    assert ("jax" in backends) is JAX_INSTALLED
    assert backends["numpy"].value == "xpcs_numpy:NumPyBackend"
    assert backends["numpy"].group == "xpcs.backends"


@pytest.mark.subprocess
def test_available_backends_imports_nothing(run_python):
    result = run_python(
        """
        import xpcs_device

        names = sorted(xpcs_device.available_backends())
        imported = sorted(m for m in ("jax", "jaxlib", "xpcs_jax") if m in sys.modules)
        emit({"names": names, "imported": imported})
        """
    )
    assert "numpy" in result["names"]
    assert ("jax" in result["names"]) is JAX_INSTALLED
    assert result["imported"] == []
