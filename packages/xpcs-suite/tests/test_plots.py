"""PNG plots of result files: produced, non-empty, showing the data."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytest.importorskip("matplotlib", reason="matplotlib not installed (the test extra has it)")
h5py = pytest.importorskip("h5py", reason="h5py not installed (the test extra has it)")

from xpcs_suite.inputs import InputError  # noqa: E402
from xpcs_suite.plots import (  # noqa: E402
    BOUNDARY_RGB,
    figure_g2,
    figure_saxs_2d,
    figure_tauq,
    partition_boundaries,
    write_plots,
)
from xpcs_suite.results import (  # noqa: E402
    read_result,
    write_fit,
    write_result,
)

PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def fitted_result(build_result: Any, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = build_result(tmp_path_factory.mktemp("plots") / "result.h5", twotime=True, n_phi=2)
    r = read_result(path, load_twotime=False)
    tau = 1.0 / (2.0e6 * r.q_dynamic**2)
    x = np.geomspace(1e-3, 0.1, 50)
    write_fit(
        path,
        "single",
        {
            "q": r.q_dynamic,
            "tau_s": tau,
            "tau_err_s": 0.1 * tau,
            "fit_delay_s": x,
            "fit_g2": 1 + 0.3 * np.exp(-2 * x[:, None] / tau),
        },
        {"model": "single", "diffusion_a2_per_s": 2.0e6, "diffusion_err_a2_per_s": 1e5},
    )
    return path


def test_every_plot_is_written(fitted_result: Path, tmp_path: Path) -> None:
    written = write_plots(fitted_result, tmp_path / "png")
    names = sorted(p.name for p in written)
    assert names == sorted(
        ["saxs_2d.png", "saxs_1d.png", "intensity_vs_time.png", "g2.png", "tauq.png"]
        + [f"twotime_c2_{k:05d}.png" for k in range(1, 9)]
    )
    for path in written:
        data = path.read_bytes()
        assert data.startswith(PNG)
        assert len(data) > 5000
    assert sorted(os.listdir(tmp_path / "png")) == names  # no temporary files left


def test_default_folder_is_beside_the_result(tmp_path: Path, two_bin_result: Path) -> None:
    written = write_plots(two_bin_result)
    assert {p.parent for p in written} == {tmp_path / "run7_plots"}
    assert sorted(p.name for p in written) == [
        "g2.png",
        "intensity_vs_time.png",
        "saxs_1d.png",
        "saxs_2d.png",
    ]


def _pixel(fig: Any, ax: Any, x: float, y: float) -> np.ndarray:
    """RGB (0..1) of the rendered figure at data coordinates (x, y) of ``ax``."""
    fig.canvas.draw()
    buffer = np.asarray(fig.canvas.buffer_rgba())
    px, py = ax.transData.transform((x, y))
    return buffer[int(buffer.shape[0] - py), int(px), :3] / 255.0


@pytest.fixture
def two_bin_result(tmp_path: Path, two_bin_fields: Callable[..., dict[str, Any]]) -> Path:
    """A result whose left half is bright, bins 1 (top) and 2 (bottom), right columns masked."""
    h, w = 40, 40
    image = np.ones((h, w))
    image[:, :20] = 100.0
    roi = np.ones((h, w), dtype=np.int32)
    roi[20:] = 2
    mask = np.ones((h, w))
    mask[:, 36:] = 0
    roi[:, 36:] = 0
    g2 = np.array([[1.3, 1.2], [1.2, 1.1], [1.1, 1.0]])
    fields = two_bin_fields(roi, mask=mask, image=image, g2=g2, beam_center_px=(0.0, 0.0))
    return write_result(tmp_path / "run7.h5", **fields)


def test_saxs_2d_shows_the_image_and_the_bin_outlines(two_bin_result: Path) -> None:
    result = read_result(two_bin_result)
    fig = figure_saxs_2d(result)
    ax = fig.axes[0]
    bright, dim = _pixel(fig, ax, 8, 8), _pixel(fig, ax, 28, 8)
    assert bright[0] > 0.8
    assert bright[1] > 0.8
    assert dim[0] < 0.4
    assert dim[2] > 0.25
    np.testing.assert_allclose(_pixel(fig, ax, 8, 19), BOUNDARY_RGB, atol=0.02)  # between the two bins
    assert not np.allclose(_pixel(fig, ax, 8, 21), BOUNDARY_RGB, atol=0.1)
    assert not np.allclose(_pixel(fig, ax, 8, 10), BOUNDARY_RGB, atol=0.1)
    masked = _pixel(fig, ax, 38, 10)
    np.testing.assert_allclose(masked, [1.0, 1.0, 1.0], atol=0.02)  # masked: blank


def test_partition_boundaries() -> None:
    roi = np.array([[1, 1, 2, 2], [1, 1, 2, 2], [0, 3, 2, 2]])
    expected = np.array([[0, 1, 0, 0], [0, 1, 0, 0], [0, 1, 0, 0]], dtype=bool)
    np.testing.assert_array_equal(partition_boundaries(roi), expected)


def test_g2_panels_hold_the_data(two_bin_result: Path) -> None:
    result = read_result(two_bin_result)
    fig = figure_g2(result)
    visible = [ax for ax in fig.axes if ax.get_visible()]
    assert len(visible) == 2
    for k, ax in enumerate(visible):
        line = ax.lines[0]
        np.testing.assert_allclose(line.get_xdata(), [1e-3, 2e-3, 4e-3])
        np.testing.assert_allclose(line.get_ydata(), result.g2[:, k])
        assert ax.get_xscale() == "log"


def test_tauq_draws_the_diffusion_line(fitted_result: Path) -> None:
    result = read_result(fitted_result, load_twotime=False)
    ax = figure_tauq(result).axes[0]
    line = ax.lines[-1]
    q, tau = line.get_xdata(), line.get_ydata()
    np.testing.assert_allclose(tau, 1.0 / (2.0e6 * q**2))
    assert any("D = 2e+06" in text.get_text() for text in ax.get_legend().get_texts())


def test_tauq_needs_a_fit(two_bin_result: Path) -> None:
    result = read_result(two_bin_result)
    with pytest.raises(ValueError, match="xpcs fit"):
        figure_tauq(result)


@pytest.mark.parametrize("case", ["missing", "text", "not_a_result"])
def test_bad_result_files(tmp_path: Path, case: str) -> None:
    path = tmp_path / "r.h5"
    if case == "text":
        path.write_text("not a result")
    elif case == "not_a_result":
        with h5py.File(path, "w") as h5:
            h5["/entry/data/data"] = np.zeros((2, 3, 4))
    with pytest.raises(InputError):
        write_plots(path, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_output_that_is_a_file(fitted_result: Path, tmp_path: Path) -> None:
    target = tmp_path / "taken"
    target.write_text("x")
    with pytest.raises(NotADirectoryError, match="not a folder"):
        write_plots(fitted_result, target)
