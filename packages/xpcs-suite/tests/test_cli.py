import json
import os

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


# ------------------------------------------------------------------------ simulate
def _error_line(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert "Traceback" not in err
    return err


def test_simulate_writes_a_raw_file(capsys, tmp_path):
    h5py = pytest.importorskip("h5py")
    out = tmp_path / "raw.h5"
    argv = [
        "simulate",
        str(out),
        "--frames",
        "30",
        "--shape",
        "24",
        "32",
        "--diffusion",
        "3e6",
        "--seed",
        "4",
    ]
    assert main([*argv, "--contrast", "0.2"]) == 0
    text = capsys.readouterr().out
    assert "D    3e+06" in text
    assert "contrast 0.2" in text
    assert "frames" in text
    with h5py.File(out, "r") as h5:
        assert h5["/entry/data/data"].shape == (30, 24, 32)
        assert h5["/entry/sample/simulation/diffusion_coefficient"][()] == 3e6
        assert h5["/entry/sample/simulation/contrast"][()] == 0.2
        assert h5["/entry/sample/simulation/seed"][()] == 4
    assert sorted(p.name for p in tmp_path.iterdir()) == ["raw.h5"]


def test_simulate_refuses_to_replace_without_overwrite(capsys, tmp_path):
    out = tmp_path / "raw.h5"
    out.write_bytes(b"precious")
    assert main(["simulate", str(out), "--frames", "4", "--shape", "8", "8"]) == 2
    assert "--overwrite" in _error_line(capsys)
    assert out.read_bytes() == b"precious"
    assert main(["simulate", str(out), "--frames", "4", "--shape", "8", "8", "--overwrite"]) == 0
    assert out.read_bytes() != b"precious"


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--contrast", "2"], "contrast"),
        (["--frames", "1"], "n_frames"),
        (["--diffusion", "-1"], "diffusion"),
    ],
)
def test_simulate_bad_parameters_are_one_line_and_write_nothing(capsys, tmp_path, extra, message):
    assert main(["simulate", str(tmp_path / "raw.h5"), "--shape", "8", "8", *extra]) == 2
    assert message in _error_line(capsys)
    assert list(tmp_path.iterdir()) == []


def test_simulate_into_a_missing_folder(capsys, tmp_path):
    assert main(["simulate", str(tmp_path / "no" / "raw.h5"), "--frames", "4", "--shape", "8", "8"]) == 2
    assert "does not exist" in _error_line(capsys)


# ---------------------------------------------------------------------------- plot
def test_plot_writes_pngs(capsys, tmp_path, build_result):
    pytest.importorskip("matplotlib")
    result = build_result(tmp_path / "result.h5")
    assert main(["plot", str(result), "-o", str(tmp_path / "png")]) == 0
    printed = capsys.readouterr().out.split()
    assert sorted(printed) == sorted(str(p) for p in (tmp_path / "png").iterdir())
    assert {p.rsplit("/", 1)[-1] for p in printed} == {
        "saxs_2d.png",
        "saxs_1d.png",
        "intensity_vs_time.png",
        "g2.png",
    }


@pytest.mark.parametrize("case", ["missing", "text", "truncated"])
def test_plot_bad_files(capsys, tmp_path, build_result, case):
    path = tmp_path / "result.h5"
    if case == "text":
        path.write_text("no")
    elif case == "truncated":
        build_result(path)
        os.truncate(path, path.stat().st_size - 100)
    assert main(["plot", str(path), "-o", str(tmp_path / "png")]) == 2
    err = _error_line(capsys)
    assert {"missing": "does not exist", "text": "not an HDF5", "truncated": "truncated"}[case] in err
    assert err.startswith("xpcs plot: error: result file")
    assert not (tmp_path / "png").exists()
