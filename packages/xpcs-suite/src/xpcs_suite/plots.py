"""PNG plots of a result file: SAXS 2D with the dynamic partition, I(q), g2 per q bin with
fits, τ(q) with the diffusion fit, intensity versus time and the two-time maps.

matplotlib is used without pyplot (``matplotlib.figure.Figure`` on the Agg canvas), so no
global state or display is involved; arrays reach matplotlib through
:class:`xpcs_adapters.MatplotlibAdapter`. :func:`write_plots` renders every figure in memory
first and then writes each PNG atomically, so a failure leaves no half-written image.
"""

from __future__ import annotations

import io
import math
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from xpcs_adapters import MatplotlibAdapter
from xpcs_suite.atomic import atomic_output
from xpcs_suite.results import FitGroup, ResultFile, read_result

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = [
    "BOUNDARY_RGB",
    "figure_g2",
    "figure_intensity_vs_time",
    "figure_saxs_1d",
    "figure_saxs_2d",
    "figure_tauq",
    "figure_twotime",
    "partition_boundaries",
    "render_plots",
    "write_plots",
]

BOUNDARY_RGB = (1.0, 0.0, 0.0)
"""Colour of the dynamic-partition boundaries on the SAXS 2D image (absent from viridis)."""
_PANELS_PER_PAGE = 36
_ADAPTER = MatplotlibAdapter()


def _figure(
    width: float, height: float, margins: tuple[float, float, float, float] = (1.0, 0.25, 0.6, 0.4)
) -> Figure:
    """A ``width`` x ``height`` inch figure on the Agg canvas whose subplots leave
    ``margins`` (left, right, bottom, top, inches) for labels and titles. Fixed margins
    rather than a layout engine: constrained layout measures every tick label of every
    axes at each draw, which cost more than drawing the plots themselves."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=100)
    FigureCanvasAgg(fig)
    left, right, bottom, top = margins
    fig.subplots_adjust(
        left=left / width, right=1 - right / width, bottom=bottom / height, top=1 - top / height
    )
    return fig


def _colorbar_axes(ax: Any) -> Any:
    """A thin axes just right of ``ax`` that follows its aspect-locked position, without a
    layout engine."""
    return ax.inset_axes((1.03, 0.0, 0.05, 1.0))


def partition_boundaries(labels: Any) -> np.ndarray[Any, Any]:
    """True on the pixels of a bin whose lower or right neighbour lies in another bin: a
    one-pixel line between neighbouring bins. Edges towards excluded pixels (label 0) are
    not drawn: the excluded pixels themselves are left blank on the image."""
    lab = np.asarray(labels)
    edge = np.zeros(lab.shape, dtype=bool)
    inside = lab > 0
    edge[:-1, :] |= (lab[:-1, :] != lab[1:, :]) & inside[:-1, :] & inside[1:, :]
    edge[:, :-1] |= (lab[:, :-1] != lab[:, 1:]) & inside[:, :-1] & inside[:, 1:]
    return edge


def figure_saxs_2d(result: ResultFile) -> Figure:
    """log10 of the mean image (masked pixels blank) with the dynamic bins outlined."""
    from matplotlib.colors import LogNorm

    image, roi, mask = _ADAPTER.to_matplotlib(result.saxs_2d, result.dynamic_roi_map, result.mask)
    shown = np.where((mask != 0) & (image > 0), image, np.nan).astype(np.float64)
    fig = _figure(6.8, 5.6, margins=(0.75, 1.6, 0.6, 0.4))
    ax = fig.add_subplot()
    finite = shown[np.isfinite(shown)]
    norm = (
        LogNorm(vmin=finite.min(), vmax=finite.max()) if finite.size and finite.max() > finite.min() else None
    )
    picture = ax.imshow(shown, cmap="viridis", norm=norm, interpolation="nearest", origin="upper")
    fig.colorbar(picture, cax=_colorbar_axes(ax), label="mean counts per frame")
    overlay = np.zeros((*roi.shape, 4))
    overlay[partition_boundaries(roi)] = (*BOUNDARY_RGB, 1.0)
    ax.imshow(overlay, interpolation="nearest", origin="upper")
    ax.set_xlabel("column (pixel)")
    ax.set_ylabel("row (pixel)")
    ax.set_title(f"SAXS 2D, {result.n_dynamic} dynamic bins outlined")
    return fig


def figure_saxs_1d(result: ResultFile) -> Figure:
    """I(q) of the static bins, log-log (φ bins of one q averaged)."""
    q, iq = _ADAPTER.to_matplotlib(result.q_static, result.saxs_1d)
    order = np.argsort(q, kind="stable")
    q, iq = q[order], iq[order]
    unique_q, inverse = np.unique(q, return_inverse=True)
    sums = np.bincount(inverse, weights=np.nan_to_num(iq))
    counts = np.bincount(inverse, weights=np.isfinite(iq).astype(np.float64))
    mean = np.divide(sums, counts, out=np.full(sums.shape, np.nan), where=counts > 0)
    fig = _figure(6.0, 4.5)
    ax = fig.add_subplot()
    good = np.isfinite(mean) & (mean > 0) & (unique_q > 0)
    ax.loglog(unique_q[good], mean[good], "o-", ms=3)
    ax.tick_params(which="minor", labelsize=7)  # labelled minor ticks of a short decade
    ax.set_xlabel(f"q ({result.map_units[0] if result.map_units else '1/A'})")
    ax.set_ylabel("I(q) (counts per pixel per frame)")
    ax.set_title("SAXS 1D")
    return fig


def _curve_fits(result: ResultFile) -> list[FitGroup]:
    return [fit for fit in result.fits.values() if {"fit_delay_s", "fit_g2"} <= set(fit.datasets)]


def _error_segments(
    x: np.ndarray[Any, Any], y: np.ndarray[Any, Any], err: np.ndarray[Any, Any]
) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]:
    """Vertical bars ``y ± err`` at ``x`` as one NaN-separated polyline: one artist per panel
    instead of errorbar's line collection."""
    xs = np.repeat(x, 3)
    ys = np.stack([y - err, y + err, np.full(y.shape, np.nan)], axis=-1).ravel()
    xs[2::3] = np.nan
    return xs, ys


def figure_g2(result: ResultFile, first: int = 0, count: int | None = None) -> Figure:
    """g2 versus delay panels for dynamic labels ``first .. first + count - 1`` with error bars and the
    fitted curves of every fit group that stores them."""
    from matplotlib.ticker import LogLocator, MaxNLocator, NullLocator

    if result.g2 is None or result.delays_s is None:
        raise ValueError(f"{str(result.path)!r} has no multi-tau g2 to plot")
    n = result.n_dynamic if count is None else count
    labels = range(first, min(first + n, result.n_dynamic))
    cols = max(1, math.ceil(math.sqrt(len(labels))))
    rows = max(1, math.ceil(len(labels) / cols))
    width, height = 2.6 * cols + 0.6, 2.1 * rows + 0.6
    fig = _figure(width, height, margins=(0.75, 0.15, 0.7, 0.3))
    fig.subplots_adjust(wspace=0.32, hspace=0.4)
    axes = fig.subplots(rows, cols, squeeze=False, sharex=True)
    # The scale and locators are shared through sharex: set once, not once per panel (each
    # call would reach every sibling).
    axes[0, 0].set_xscale("log")
    axes[0, 0].xaxis.set_major_locator(LogLocator(numticks=5))
    axes[0, 0].xaxis.set_minor_locator(NullLocator())
    delays, g2, err = _ADAPTER.to_matplotlib(result.delays_s, result.g2, result.g2_err)
    fit_curves = [
        _ADAPTER.to_matplotlib(f.datasets["fit_delay_s"], f.datasets["fit_g2"]) for f in _curve_fits(result)
    ]
    names = [f.name for f in _curve_fits(result)]
    positive = delays > 0
    x = delays[positive]
    show_phi = result.dynamic_num_pts[1] > 1
    for ax, k in zip(axes.ravel(), labels, strict=False):
        (points,) = ax.plot(x, g2[positive, k], "o", ms=2.5)
        ax.plot(*_error_segments(x, g2[positive, k], err[positive, k]), "-", lw=0.8, color=points.get_color())
        for name, (fx, fy) in zip(names, fit_curves, strict=True):
            if fy.ndim == 2 and k < fy.shape[1]:
                ax.plot(fx, fy[:, k], "-", lw=1.2, label=name)
        # A text in axes coordinates rather than set_title: titles are re-positioned against
        # the tick labels at every draw.
        ax.text(
            0.5,
            1.02,
            f"q = {result.q_dynamic[k]:.4g}" + (f", φ = {result.phi_dynamic[k]:.0f}°" if show_phi else ""),
            fontsize=8,
            ha="center",
            va="bottom",
            transform=ax.transAxes,
        )
        ax.yaxis.set_major_locator(MaxNLocator(4))
        ax.tick_params(labelsize=7)
    for ax in axes.ravel()[len(labels) :]:
        ax.set_visible(False)
    fig.supxlabel("delay (s)")
    fig.supylabel("g2")
    return fig


def _tauq_fits(result: ResultFile) -> list[FitGroup]:
    return [fit for fit in result.fits.values() if "tau_s" in fit.datasets]


def figure_tauq(result: ResultFile) -> Figure:
    """τ(q) of every fit group with relaxation times, and the line 1/(D q²) where the group
    has a diffusion coefficient."""
    fits = _tauq_fits(result)
    if not fits:
        raise ValueError(
            f"{str(result.path)!r} has no fit with relaxation times (tau_s); run `xpcs fit` first"
        )
    fig = _figure(6.0, 4.5)
    ax = fig.add_subplot()
    for fit in fits:
        q = fit.datasets.get("q", result.q_dynamic)
        q, tau = _ADAPTER.to_matplotlib(q, fit.datasets["tau_s"])
        err = fit.datasets.get("tau_err_s")
        good = np.isfinite(tau) & (tau > 0) & (q > 0)
        ax.errorbar(
            q[good],
            tau[good],
            yerr=None if err is None else np.asarray(err)[good],
            fmt="o",
            ms=4,
            label=fit.name,
        )
        d = fit.attrs.get("diffusion_a2_per_s")
        if d is not None and np.isfinite(float(d)) and float(d) > 0 and good.any():
            line_q = np.geomspace(q[good].min(), q[good].max(), 100)
            d_err = fit.attrs.get("diffusion_err_a2_per_s")
            label = (
                f"1/(D q²), D = {float(d):.4g}"
                + (f" ± {float(d_err):.2g}" if d_err is not None else "")
                + " Å²/s"
            )
            ax.plot(line_q, 1.0 / (float(d) * line_q**2), "-", label=label)
    if ax.has_data() and np.isfinite(ax.dataLim.bounds).all() and ax.dataLim.x0 > 0 and ax.dataLim.y0 > 0:
        ax.set_xscale("log")
        ax.set_yscale("log")
    else:  # every fit failed: an empty, labelled figure rather than an error
        ax.text(0.5, 0.5, "no relaxation time was fitted", ha="center", transform=ax.transAxes)
    ax.tick_params(axis="x", which="minor", labelsize=7)  # labelled minor ticks of a short decade
    ax.set_xlabel("q (1/Å)")
    ax.set_ylabel("τ (s)")
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=8)
    ax.set_title("relaxation time versus q")
    return fig


def figure_intensity_vs_time(result: ResultFile) -> Figure:
    """Mean intensity per valid pixel of every frame."""
    if result.intensity_vs_time is None:
        raise ValueError(f"{str(result.path)!r} has no intensity_vs_time")
    series = _ADAPTER.to_matplotlib(result.intensity_vs_time)
    fig = _figure(6.0, 3.2)
    ax = fig.add_subplot()
    ax.plot(series[0], series[1], lw=0.6)
    ax.set_xlabel("time (s)")
    ax.set_ylabel("mean counts per pixel")
    ax.set_title("intensity versus time")
    return fig


def figure_twotime(result: ResultFile, label: int) -> Figure:
    """The two-time map C(t1, t2) of one dynamic label, time axes in seconds."""
    if label not in result.twotime_maps:
        raise ValueError(f"{str(result.path)!r} has no two-time map of label {label}")
    c2 = _ADAPTER.to_matplotlib(result.twotime_maps[label])
    t0 = result.twotime_frame_time_s or result.frame_time_s
    extent = (0.0, c2.shape[1] * t0, c2.shape[0] * t0, 0.0)
    off_diagonal = c2[~np.eye(c2.shape[0], dtype=bool)]
    finite = off_diagonal[np.isfinite(off_diagonal)]
    vmin, vmax = np.percentile(finite, [1, 99]) if finite.size else (None, None)
    fig = _figure(6.0, 5.0, margins=(0.75, 1.6, 0.6, 0.4))
    ax = fig.add_subplot()
    picture = ax.imshow(c2, cmap="plasma", vmin=vmin, vmax=vmax, extent=extent, interpolation="nearest")
    fig.colorbar(picture, cax=_colorbar_axes(ax), label="C(t1, t2)")
    ax.set_xlabel("t2 (s)")
    ax.set_ylabel("t1 (s)")
    k = label - 1
    q = result.q_dynamic[k] if 0 <= k < result.n_dynamic else float("nan")
    ax.set_title(f"two-time, label {label} (q = {q:.4g})")
    return fig


def _png(fig: Figure) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    return buffer.getvalue()


def render_plots(result: ResultFile, *, max_twotime: int = 16) -> dict[str, bytes]:
    """Every plot the result supports, as PNG bytes by file name: ``saxs_2d.png``,
    ``saxs_1d.png``, ``intensity_vs_time.png``, ``g2.png`` (``g2_01.png``, ... beyond 36 bins),
    ``tauq.png`` (with a fit), ``twotime_c2_00001.png`` ... (at most ``max_twotime``)."""
    out = {"saxs_2d.png": _png(figure_saxs_2d(result)), "saxs_1d.png": _png(figure_saxs_1d(result))}
    if result.intensity_vs_time is not None:
        out["intensity_vs_time.png"] = _png(figure_intensity_vs_time(result))
    if result.g2 is not None and result.delays_s is not None:
        pages = max(1, math.ceil(result.n_dynamic / _PANELS_PER_PAGE))
        for page in range(pages):
            name = "g2.png" if pages == 1 else f"g2_{page + 1:02d}.png"
            out[name] = _png(figure_g2(result, page * _PANELS_PER_PAGE, _PANELS_PER_PAGE))
    if _tauq_fits(result):
        out["tauq.png"] = _png(figure_tauq(result))
    for label in sorted(result.twotime_maps)[:max_twotime]:
        out[f"twotime_c2_{label:05d}.png"] = _png(figure_twotime(result, label))
    return out


def write_plots(
    result_path: str | os.PathLike[str],
    out_dir: str | os.PathLike[str] | None = None,
    *,
    max_twotime: int = 16,
) -> list[Path]:
    """Read a result file and write its PNGs into ``out_dir`` (default: ``<stem>_plots``
    beside the result; created if missing, its parent must exist). Existing PNGs of the same
    names are replaced. Returns the paths written."""
    folder = (
        Path(out_dir)
        if out_dir is not None
        else Path(result_path).with_name(f"{Path(result_path).stem}_plots")
    )
    if folder.exists() and not folder.is_dir():
        raise NotADirectoryError(f"{str(folder)!r} exists and is not a folder; choose another -o DIR")
    if not folder.parent.is_dir():
        raise FileNotFoundError(f"the folder {str(folder.parent)!r} does not exist; create it first")
    images = render_plots(read_result(result_path, load_twotime=True), max_twotime=max_twotime)
    folder.mkdir(exist_ok=True)
    written = []
    for name, data in images.items():
        with atomic_output(folder / name, overwrite=True) as temporary:
            temporary.write_bytes(data)
        written.append(folder / name)
    return written
