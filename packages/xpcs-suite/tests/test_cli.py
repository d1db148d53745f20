import json

import pytest

from xpcs_device import reset_backend
from xpcs_suite.cli import main


@pytest.fixture(autouse=True)
def _fresh_selection(monkeypatch):
    for var in ("XPCS_USE_JAX", "XPCS_GPU_MEMORY_FRACTION"):
        monkeypatch.delenv(var, raising=False)
    reset_backend()
    yield
    reset_backend()


def test_info_json_lists_every_package_and_the_selection(capsys, monkeypatch):
    monkeypatch.setenv("XPCS_USE_JAX", "off")
    assert main(["info", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    for dist in ("xpcs-suite", "xpcs-protocol", "xpcs-numpy", "xpcs-device", "xpcs-kernels", "xpcs-fit"):
        assert info["packages"][dist]
    assert info["backend"] == {
        "name": "numpy",
        "source": "environment",
        "reason": "XPCS_USE_JAX selects numpy",
    }
    assert info["devices"] == [info["device"]]
    assert info["device"]["backend"] == "numpy"


def test_info_text(capsys):
    assert main(["info"]) == 0
    out = capsys.readouterr().out
    assert "backend" in out
    assert "xpcs-suite" in out


def test_bad_environment_is_one_line_and_exit_2(capsys, monkeypatch):
    monkeypatch.setenv("XPCS_USE_JAX", "perhaps")
    assert main(["info"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert "XPCS_USE_JAX" in err
    assert "Traceback" not in err


def test_debug_shows_the_exception(monkeypatch):
    monkeypatch.setenv("XPCS_USE_JAX", "perhaps")
    with pytest.raises(ValueError, match="XPCS_USE_JAX"):
        main(["--debug", "info"])
