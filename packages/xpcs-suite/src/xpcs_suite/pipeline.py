"""The main job: raw frames to an APS 8-ID-I result file (:func:`analyze`), fits of its g2 and
the diffusion coefficient (:func:`fit`), and the whole chain on simulated data (:mod:`xpcs_suite.demo`).

:func:`analyze`, in order (each stage timed):

1. open the raw file read-only and find the frames (``/entry/data/data`` by default);
2. geometry: a PONI file, else a TOML file, else the raw file's NeXus fields; the frame time
   from the raw file, else the TOML file;
3. mask (nonzero = valid): ``options.mask`` (.npy or HDF5), else the raw file's own mask,
   else every pixel;
4. Q-map (exact ``|q|`` in 1/Å and the azimuth φ in degrees, :func:`xpcs_kernels.qmap.compute_qmap`)
   and the nested static and dynamic q-phi partitions (linear or logarithmic q bins);
5. ONE streaming pass over the frames, chunk by chunk, feeding both the reductions (SAXS 2D,
   I(q), I(q) per segment, intensity versus time) and the multi-tau correlator: memory is one
   chunk plus the correlator's buffers, whatever the number of frames;
6. optionally two-time correlation (a second pass; its maps are N² per dynamic bin);
7. the result file, written to a temporary file and renamed.

Everything runs on the active backend, or on ``options.backend`` for the call.

The partitions use the exact ``|q| = 2 k0 sin θ`` (``map_names`` q, ``map_units`` 1/A), not
the APS ``k0 sin 2θ``: the two differ by ``1 - cos θ`` (3e-4 at 2θ = 3°).
"""

from __future__ import annotations

import contextlib
import os
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from xpcs_suite.atomic import check_output_path
from xpcs_suite.g2_correction import averaging_windows, window_factor
from xpcs_suite.inputs import (
    DEFAULT_FRAMES_KEY,
    InputError,
    frames_dataset,
    load_mask,
    open_hdf5,
    raw_frame_time,
    raw_mask,
    resolve_geometry,
)
from xpcs_suite.progress import Progress

__all__ = [
    "AnalysisOptions",
    "AnalysisSummary",
    "FitSummary",
    "analyze",
    "effective_q",
    "fit",
    "selected_backend",
]

Spacing = Literal["linear", "log"]


@dataclass(frozen=True)
class AnalysisOptions:
    """What :func:`analyze` does (the options of ``xpcs analyze``).

    Static counts must be integer multiples of the dynamic ones (every static bin inside one
    dynamic bin). ``n_segments``: frame segments of ``scattering_1d_segments``.
    ``chunk_frames``: frames per read (None: whole HDF5 chunks, about 256 MiB as float64).
    ``backend``: "numpy" or "jax" for this call (None: the environment's selection).
    """

    frames_key: str = DEFAULT_FRAMES_KEY
    poni: str | os.PathLike[str] | None = None
    geometry: str | os.PathLike[str] | None = None
    mask: str | os.PathLike[str] | None = None
    dynamic_q: int = 40
    static_q: int = 400
    dynamic_phi: int = 1
    static_phi: int = 1
    q_spacing: Spacing = "log"
    twotime: bool = False
    backend: str | None = None
    overwrite: bool = False
    n_segments: int = 10
    lags_per_level: int = 4
    chunk_frames: int | None = None
    progress: bool = True

    def __post_init__(self) -> None:
        for name in ("dynamic_q", "static_q", "dynamic_phi", "static_phi", "n_segments", "lags_per_level"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise InputError(f"{name.replace('_', '-')} must be a positive integer, got {value!r}")
        for kind in ("q", "phi"):
            dynamic, static = getattr(self, f"dynamic_{kind}"), getattr(self, f"static_{kind}")
            if static % dynamic:
                raise InputError(
                    f"--static-{kind} {static} is not a multiple of --dynamic-{kind} {dynamic}; every static "
                    f"bin must lie inside one dynamic bin (e.g. --static-{kind} {dynamic * 10})"
                )
        if self.q_spacing not in ("linear", "log"):
            raise InputError(f"q spacing must be 'linear' or 'log', got {self.q_spacing!r}")
        if self.poni is not None and self.geometry is not None:
            raise InputError("give either --poni FILE or --geometry FILE, not both")
        if self.backend not in (None, "numpy", "jax"):
            raise InputError(f"backend must be 'numpy' or 'jax', got {self.backend!r}")


@dataclass
class AnalysisSummary:
    """What :func:`analyze` did: sizes, sources, timings (s) per stage."""

    result: Path
    raw: Path
    backend: str
    n_frames: int
    frame_shape: tuple[int, int]
    n_valid_pixels: int
    frame_time_s: float
    geometry_source: str
    mask_source: str
    q_range: tuple[float, float]
    n_dynamic: int
    n_static: int
    n_delays: int
    twotime_bins: int
    timings: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        """A short human-readable summary."""
        rows, cols = self.frame_shape
        out = [
            f"wrote {self.result}",
            f"  frames         {self.n_frames} x {rows} x {cols} at {self.frame_time_s:g} s ({self.raw})",
            f"  geometry       {self.geometry_source}",
            f"  mask           {self.mask_source} ({self.n_valid_pixels} valid pixels)",
            f"  q range        {self.q_range[0]:.4g} .. {self.q_range[1]:.4g} 1/A (exact |q|)",
            f"  partitions     {self.n_dynamic} dynamic, {self.n_static} static bins",
            f"  multi-tau      {self.n_delays} delays"
            + (f"; two-time for {self.twotime_bins} bins" if self.twotime_bins else ""),
            f"  backend        {self.backend}",
            "  timings        " + ", ".join(f"{k} {v:.2f} s" for k, v in self.timings.items()),
        ]
        out += [f"  note           {note}" for note in self.notes]
        return out


def selected_backend(name: str | None) -> contextlib.AbstractContextManager[Any]:
    """A context that makes ``name`` ("numpy" or "jax") the backend, or keeps the selection (None)."""
    import xpcs_device

    if name is None:
        return contextlib.nullcontext(xpcs_device.get_backend())
    return xpcs_device.use_backend(name)


class _Timer:
    def __init__(self) -> None:
        self.timings: dict[str, float] = {}

    @contextlib.contextmanager
    def stage(self, name: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            self.timings[name] = self.timings.get(name, 0.0) + time.perf_counter() - start


def _host(x: Any) -> np.ndarray[Any, Any]:
    import xpcs_device

    b = xpcs_device.get_backend()
    return np.asarray(b.to_numpy(x)) if b.is_array(x) else np.asarray(x)


def _read_chunks(dataset: Any, chunk_frames: int | None) -> Iterator[np.ndarray[Any, Any]]:
    """Chunks of the frames; an HDF5 read error becomes one line naming the frames."""
    from xpcs_kernels.frames import iter_frame_chunks

    chunks = iter_frame_chunks(dataset, chunk_frames)
    position = 0
    while True:
        try:
            chunk = next(chunks)
        except StopIteration:
            return
        except OSError as exc:
            raise InputError(
                f"cannot read the frames of {dataset.file.filename!r} from frame {position} on "
                f"({' '.join(str(exc).split())}); the file is damaged or incomplete: copy it again"
            ) from None
        position += chunk.shape[0]
        yield chunk


def _mask(options: AnalysisOptions, h5: Any, shape: tuple[int, int]) -> tuple[np.ndarray[Any, Any], str]:
    if options.mask is not None:
        return load_mask(options.mask, shape), f"file {os.fspath(options.mask)}"
    own = raw_mask(h5)
    if own is not None:
        if own.shape != shape:
            raise InputError(
                f"the mask in {h5.filename!r} has shape {own.shape} but the frames are {shape}; "
                "pass --mask FILE with the mask of this detector"
            )
        if not own.any():
            raise InputError(f"the mask in {h5.filename!r} excludes every pixel; pass --mask FILE")
        return own, "raw file"
    return np.ones(shape, dtype=bool), "none (every pixel valid)"


def _frame_time(h5: Any, geometry_frame_time: float | None) -> float:
    value = raw_frame_time(h5)
    if value is None:
        value = geometry_frame_time
    if value is None:
        raise InputError(
            f"no frame time: {h5.filename!r} lacks /entry/instrument/detector_1/frame_time; pass "
            "--geometry FILE with frame_time_s (seconds)"
        )
    return value


def _raw_text(h5: Any, key: str) -> str | None:
    if key not in h5:
        return None
    value = h5[key][()]
    if isinstance(value, np.ndarray):
        value = value.ravel()[0] if value.size else b""
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def _raw_number(h5: Any, key: str) -> float | None:
    if key not in h5:
        return None
    try:
        value = float(np.asarray(h5[key][()], dtype=np.float64).ravel()[0])
    except (TypeError, ValueError, IndexError):
        return None
    return value if np.isfinite(value) and value > 0 else None


class _ProgressFrames:
    """An ``(N, H, W)`` frame source that reports each slice read (the two-time pass)."""

    def __init__(self, dataset: Any, progress: Progress) -> None:
        self._dataset = dataset
        self._progress = progress
        self.shape = tuple(dataset.shape)
        self.dtype = dataset.dtype
        self.ndim = 3

    def __len__(self) -> int:
        return int(self.shape[0])

    def __getitem__(self, index: Any) -> Any:
        out = self._dataset[index]
        self._progress.update(int(np.shape(out)[0]) if np.ndim(out) == 3 else 1)
        return out


def _chunk_frames(dataset: Any, requested: int | None) -> int:
    from xpcs_kernels.frames import auto_chunk_frames

    if requested is not None:
        return requested
    auto = auto_chunk_frames(tuple(dataset.shape[1:]))
    chunks = getattr(dataset, "chunks", None)
    if chunks:
        return max(int(chunks[0]), auto // int(chunks[0]) * int(chunks[0]))
    return auto


def analyze(
    raw_path: str | os.PathLike[str],
    result_path: str | os.PathLike[str],
    options: AnalysisOptions | None = None,
) -> AnalysisSummary:
    """Raw frames to an APS 8-ID-I result file (see the module docstring); returns a summary.

    Bad input raises :class:`~xpcs_suite.inputs.InputError` (one line saying what to fix)
    before anything is written; the result appears whole or not at all, and an existing
    result is refused unless ``options.overwrite``.
    """
    options = AnalysisOptions() if options is None else options
    check_output_path(result_path, overwrite=options.overwrite)
    if Path(result_path).resolve() == Path(raw_path).resolve():
        raise InputError(
            f"the result {os.fspath(result_path)!r} would replace the raw file; choose another -o"
        )
    timer = _Timer()
    with (
        selected_backend(options.backend) as backend,
        warnings.catch_warnings(record=True) as caught,
        contextlib.ExitStack() as stack,
    ):
        warnings.simplefilter("always", RuntimeWarning)
        with timer.stage("open"):
            h5 = stack.enter_context(open_hdf5(raw_path, what="raw file"))
            dataset = frames_dataset(h5, options.frames_key)
        summary = _analyze_open(h5, dataset, Path(raw_path), Path(result_path), options, timer, backend.name)
    summary.notes += sorted({" ".join(str(w.message).split()) for w in caught})
    summary.timings = timer.timings
    return summary


def _analyze_open(
    h5: Any,
    dataset: Any,
    raw_path: Path,
    result_path: Path,
    options: AnalysisOptions,
    timer: _Timer,
    backend: str,
) -> AnalysisSummary:
    from xpcs_kernels.multitau import finalize_multitau, init_multitau, update_multitau
    from xpcs_kernels.partitions import make_partitions
    from xpcs_kernels.qmap import compute_qmap
    from xpcs_kernels.reductions import finalize_reductions, init_reductions, update_reductions

    n_frames = int(dataset.shape[0])
    shape = (int(dataset.shape[1]), int(dataset.shape[2]))
    source = resolve_geometry(poni=options.poni, geometry_file=options.geometry, raw=h5)
    frame_time = _frame_time(h5, source.frame_time_s)
    mask, mask_source = _mask(options, h5, shape)

    with timer.stage("qmap+partitions"):
        qmap = compute_qmap(source.geometry, shape, quantities=("q_inv_angstrom", "phi_deg"))
        try:
            static, dynamic = make_partitions(
                qmap.q_inv_angstrom,
                qmap.phi_deg,
                mask,
                dynamic=(options.dynamic_q, options.dynamic_phi),
                static=(options.static_q, options.static_phi),
                spacing=options.q_spacing,
            )
        except ValueError as exc:
            raise InputError(f"partitions: {' '.join(str(exc).split())}") from None
        q_valid = _host(qmap.q_inv_angstrom)[mask]

    with timer.stage("reductions+multitau"):
        reductions = init_reductions(
            static.roi_map,
            static.num_labels,
            n_frames_total=n_frames,
            n_segments=min(options.n_segments, n_frames),
        )
        correlator = init_multitau(
            static, dynamic, n_frames_total=n_frames, lags_per_level=options.lags_per_level
        )
        with Progress("correlating", n_frames, enabled=options.progress) as bar:
            for chunk in _read_chunks(dataset, options.chunk_frames):
                reductions = update_reductions(reductions, chunk)
                correlator = update_multitau(correlator, chunk, consume=True)
                bar.update(chunk.shape[0])
        reduced = finalize_reductions(reductions, frame_time=frame_time)
        g2 = finalize_multitau(correlator)

    twotime_fields = None
    if options.twotime:
        with timer.stage("twotime"):
            twotime_fields = _twotime(dataset, static, dynamic, options)

    with timer.stage("write"):
        _write(
            h5, result_path, options, source, frame_time, mask, static, dynamic, reduced, g2, twotime_fields
        )

    return AnalysisSummary(
        result=result_path,
        raw=raw_path,
        backend=backend,
        n_frames=n_frames,
        frame_shape=shape,
        n_valid_pixels=int(mask.sum()),
        frame_time_s=frame_time,
        geometry_source=source.source,
        mask_source=mask_source,
        q_range=(float(q_valid.min()), float(q_valid.max())),
        n_dynamic=dynamic.num_labels,
        n_static=static.num_labels,
        n_delays=int(g2.delay_frames.size),
        twotime_bins=0 if twotime_fields is None else len(twotime_fields.maps),
    )


def _twotime(dataset: Any, static: Any, dynamic: Any, options: AnalysisOptions) -> Any:
    from xpcs_kernels.twotime import twotime
    from xpcs_suite.results import TwotimeFields

    n_frames = int(dataset.shape[0])
    with Progress("two-time", n_frames, enabled=options.progress) as bar:
        result = twotime(
            _ProgressFrames(dataset, bar),
            dynamic.roi_map,
            static.roi_map,
            n_segments=min(5, max(1, n_frames // 2)),
            chunk_frames=_chunk_frames(dataset, options.chunk_frames),
        )
    maps = _host(result.c2)
    return TwotimeFields(
        maps=list(maps),
        processed_bins=np.asarray(result.bins, dtype=np.int64),
        g2=result.g2,
        g2_segments=result.g2_segments,
        delay_list=result.delays,
    )


def _write(
    h5: Any,
    result_path: Path,
    options: AnalysisOptions,
    source: Any,
    frame_time: float,
    mask: np.ndarray[Any, Any],
    static: Any,
    dynamic: Any,
    reduced: Any,
    g2: Any,
    twotime_fields: Any,
) -> None:
    from xpcs_kernels.geometry import TiltedGeometry
    from xpcs_suite.results import (
        InstrumentFields,
        MultitauFields,
        QMapFields,
        ReductionsFields,
        write_result,
    )

    geometry = source.geometry
    qmap_fields = QMapFields.from_partitions(static, dynamic, mask, geometry)
    pixel_y, pixel_x = geometry.pixel_size_m
    detector = "/entry/instrument/detector_1"
    instrument = InstrumentFields(
        frame_time_s=frame_time,
        energy_kev=float(geometry.energy_kev),
        x_pixel_size_m=float(pixel_x),
        y_pixel_size_m=float(pixel_y),
        distance_m=float(geometry.distance_m),
        beam_center_x_px=float(qmap_fields.beam_center_x_px),
        beam_center_y_px=float(qmap_fields.beam_center_y_px),
        count_time_s=_raw_number(h5, f"{detector}/count_time"),
        start_time=_raw_text(h5, "/entry/start_time"),
        metadata={
            "raw_file": os.fspath(Path(h5.filename).resolve()),
            "frames_key": options.frames_key,
            "geometry_source": source.source,
            "geometry_kind": "tilted (PONI)"
            if isinstance(geometry, TiltedGeometry)
            else type(geometry).__name__,
            "q_definition": "exact |q| = 2 k0 sin(theta), 1/A",
            "q_spacing": options.q_spacing,
            "lags_per_level": options.lags_per_level,
        },
    )
    write_result(
        result_path,
        qmap=qmap_fields,
        reductions=ReductionsFields.from_reductions(reduced),
        instrument=instrument,
        multitau=MultitauFields(
            g2=g2.normalized_g2,
            g2_err=g2.normalized_g2_err,
            delay_list=g2.delay_frames,
            stride_frame=g2.stride,
            avg_frame=g2.avg,
            g2_static=g2.static_g2,
        ),
        twotime=twotime_fields,
        overwrite=options.overwrite,
    )


# ------------------------------------------------------------------------------ fits
@dataclass
class FitSummary:
    """What :func:`fit` did: the model, the diffusion fit, contrast, plots and timings (s)."""

    result: Path
    group: str
    model: str
    backend: str
    n_bins: int
    n_fitted: int
    n_used_for_diffusion: int
    diffusion_a2_per_s: float
    diffusion_err_a2_per_s: float
    diffusion_chi2_red: float
    diffusion_reason: str | None
    contrast_mean: float
    contrast_std: float
    tau_window_s: tuple[float, float]
    plots: list[Path] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    diffusion_err_method: str = ""
    """How ``diffusion_err_a2_per_s`` was obtained (the fit attribute ``diffusion_err_method``)."""

    def lines(self) -> list[str]:
        d = (
            f"{self.diffusion_a2_per_s:.5g} ± {self.diffusion_err_a2_per_s:.2g} Å²/s "
            f"(chi2_red {self.diffusion_chi2_red:.2f}, {self.n_used_for_diffusion} bins with "
            f"{self.tau_window_s[0]:.3g} s <= tau <= {self.tau_window_s[1]:.3g} s)"
            if self.diffusion_reason is None
            else f"not fitted: {self.diffusion_reason}"
        )
        out = [
            f"fit {self.group} in {self.result}",
            f"  model          {self.model}: {self.n_fitted} of {self.n_bins} bins fitted",
            f"  contrast       {self.contrast_mean:.4g} (spread over bins {self.contrast_std:.2g})",
            f"  diffusion D    {d}",
        ]
        if self.diffusion_reason is None and self.diffusion_err_method:
            out.append(f"  error of D     {self.diffusion_err_method}")
        out += [
            f"  backend        {self.backend}",
        ]
        if self.plots:
            out.append(f"  plots          {len(self.plots)} PNGs in {self.plots[0].parent}")
        out.append("  timings        " + ", ".join(f"{k} {v:.2f} s" for k, v in self.timings.items()))
        return out


# A relaxation time is trusted for tau(q) only well inside the measured delays: from the
# first delay to 1/40 of the longest one (about the run length). g2 normalised by the run's
# own means decays too fast by an amount that grows with tau / run length; over eight
# simulated runs the window 1/10 gave D too high by +0.94 sigma on average, 1/40 by -0.12
# (sigma then the tau(q) fit's error). With the jackknife error and the mixture correction,
# 60 default demo runs give a mean z of +0.13 +- 0.14 and a spread of 1.07.
_TAU_WINDOW_LONG = 1.0 / 40.0
_TAU_NAME = {"single": "tau", "stretched": "tau", "double": "tau1"}


def _usable_delays(g2: np.ndarray[Any, Any], err: np.ndarray[Any, Any], delays: np.ndarray[Any, Any]) -> Any:
    """Rows (delays) where every bin that has data has a finite g2 and a positive error: the
    last delays of a run hold too few frame pairs to give a spread (error 0)."""
    live = np.isfinite(g2).mean(axis=0) > 0.5
    good = (delays > 0) & np.all(~live | (np.isfinite(g2) & np.isfinite(err) & (err > 0)), axis=1)
    return good


def fit(
    result_path: str | os.PathLike[str],
    model: str = "single",
    *,
    bayes: bool = False,
    backend: str | None = None,
    plots: bool = True,
    plot_dir: str | os.PathLike[str] | None = None,
    seed: int = 0,
) -> FitSummary:
    """Fit ``model`` to the g2 of every dynamic bin of a result file (also files of the APS
    pipeline), then ``tau = 1 / (D q²)`` over the bins whose relaxation time lies well inside
    the delays, and store it as ``/xpcs/fit/<model>`` (``<model>_bayes`` with ``bayes``),
    replacing only a fit group of that name; then write the plots (``plots``).

    Least squares by default (:func:`xpcs_fit.fit_g2`, errors scaled by sqrt(chi2_red));
    ``bayes``: NumPyro NUTS (:func:`xpcs_fit.bayes.fit_g2_bayes`, JAX backend only).
    The error of D: a jackknife over the static bins (:mod:`xpcs_suite.jackknife`) when the
    file holds their g2 (``normalized_g2_static``, written by ``xpcs analyze``) and the fit
    is least squares; otherwise (files of the APS pipeline, ``bayes``) the error of the
    tau(q) fit, which takes the delays of g2 as independent and so is too small (by about
    1.4 on the simulated demo runs). The attribute ``diffusion_err_method`` says which.
    The dataset and attribute names are those of :func:`xpcs_suite.results.write_fit`, plus
    ``chi2_red`` (K,), ``used_for_diffusion`` (K,) and the attributes ``tau_window_s`` and
    ``diffusion_err_method``.
    """
    from xpcs_fit import PARAM_NAMES
    from xpcs_suite.results import read_result

    if model not in PARAM_NAMES:
        raise InputError(f"model must be one of {', '.join(PARAM_NAMES)}, got {model!r}")
    timer = _Timer()
    with timer.stage("read"):
        result = read_result(result_path, load_twotime=False)
    if result.g2 is None or result.g2_err is None or result.delays_s is None:
        raise InputError(
            f"{os.fspath(result_path)!r} has no multi-tau g2 (/xpcs/multitau); "
            "run `xpcs analyze` on the raw file"
        )
    rows = _usable_delays(result.g2, result.g2_err, result.delays_s)
    delays, g2, err = result.delays_s[rows], result.g2[rows], result.g2_err[rows]
    frames = result.delay_list[rows] if result.delay_list is not None else delays / delays[0]
    if delays.size < 4:
        raise InputError(
            f"{os.fspath(result_path)!r} has only {delays.size} usable delays; a g2 fit needs more"
        )
    group = f"{model}_bayes" if bayes else model
    with selected_backend(backend) as b, warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        with timer.stage("fit g2"):
            params, errors, chi2, success = _fit_g2(delays, frames, g2, err, model, bayes, seed)
        names = PARAM_NAMES[model]
        tau = params[:, names.index(_TAU_NAME[model])]
        tau_err = errors[:, names.index(_TAU_NAME[model])]
        window = (float(delays[0]), float(_TAU_WINDOW_LONG * delays[-1]))
        with timer.stage("fit tau(q)"):
            q_mean = effective_q(
                result.static_roi_map, result.dynamic_roi_map, result.q_static, result.q_dynamic
            )
            q_eff, corrected = q_mean, np.zeros(q_mean.shape, dtype=bool)
            diffusion = _fit_diffusion(q_eff, tau, tau_err, success, window)
            if model == "single" and np.isfinite(diffusion["D"]):
                q_eff, corrected = _mixture_q(
                    result, delays, frames, err, q_mean, params, success, diffusion["D"]
                )
                diffusion = _fit_diffusion(q_eff, tau, tau_err, success, window)
        with timer.stage("error of D"):
            fitted = _BinFits(params, q_eff, corrected, tau, tau_err)
            diffusion.update(
                _diffusion_error(result, rows, delays, frames, err, model, bayes, fitted, diffusion)
            )
        curve_delays = np.geomspace(delays[0], delays[-1], 200)
        curves = _curves(b, model, curve_delays, params)
        backend_name = b.name
    from xpcs_suite.results import write_fit

    contrast = params[success, names.index("contrast")]
    attrs: dict[str, str | int | float] = {
        "model": model,
        "param_names": ",".join(names),
        "method": "NumPyro NUTS posterior mean"
        if bayes
        else "least squares, errors scaled by sqrt(chi2_red)",
        "diffusion_a2_per_s": diffusion["D"],
        "diffusion_err_a2_per_s": diffusion["D_err"],
        "diffusion_chi2_red": diffusion["chi2"],
        "diffusion_err_method": diffusion["err_method"],
        "diffusion_model": "tau = 1 / (D q^2), q = q_effective (1/A): mean q^2 of the bin's static bins, "
        "for the single model corrected for the fit of one exponential to their mixture; tau in s",
        "tau_window_s": f"{window[0]:.6g},{window[1]:.6g}",
        "backend": backend_name,
    }
    if diffusion["reason"] is not None:
        attrs["diffusion_reason"] = diffusion["reason"]
    with timer.stage("write"):
        path = write_fit(
            result_path,
            group,
            {
                "params": params,
                "params_err": errors,
                "chi2_red": chi2,
                "q": result.q_dynamic,
                "q_effective": q_eff,
                "tau_s": tau,
                "tau_err_s": tau_err,
                "used_for_diffusion": diffusion["used"].astype(np.int8),
                "fit_delay_s": curve_delays,
                "fit_g2": curves,
            },
            attrs,
            overwrite=True,
        )
    written: list[Path] = []
    if plots:
        from xpcs_suite.plots import write_plots

        with timer.stage("plots"):
            written = write_plots(result_path, plot_dir)
    return FitSummary(
        result=Path(result_path),
        group=path,
        model=model,
        backend=backend_name,
        n_bins=int(success.size),
        n_fitted=int(success.sum()),
        n_used_for_diffusion=int(diffusion["used"].sum()),
        diffusion_a2_per_s=float(diffusion["D"]),
        diffusion_err_a2_per_s=float(diffusion["D_err"]),
        diffusion_chi2_red=float(diffusion["chi2"]),
        diffusion_reason=diffusion["reason"],
        contrast_mean=float(np.mean(contrast)) if contrast.size else float("nan"),
        contrast_std=float(np.std(contrast)) if contrast.size else float("nan"),
        tau_window_s=window,
        plots=written,
        timings=timer.timings,
        diffusion_err_method=diffusion["err_method"],
    )


def _fit_g2(
    delays: np.ndarray[Any, Any],
    frames: np.ndarray[Any, Any],
    g2: np.ndarray[Any, Any],
    err: np.ndarray[Any, Any],
    model: str,
    bayes: bool,
    seed: int,
) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any], np.ndarray[Any, Any], np.ndarray[Any, Any]]:
    """Least squares with the multi-tau window divided out (:mod:`xpcs_suite.g2_correction`:
    three rounds, each with the rate of the previous fit; single and stretched models), then
    NUTS on the corrected g2 when ``bayes``."""
    from xpcs_fit import PARAM_NAMES, fit_g2

    names = PARAM_NAMES[model]
    result = fit_g2(delays, g2, err, model)
    y, e = g2, err
    if model in ("single", "stretched"):
        windows = averaging_windows(frames)
        frame_s = delays / frames
        for _ in range(3):
            rate = frame_s[0] / result.value("tau")
            factor = window_factor(windows, rate)
            baseline = np.where(result.success, result.value("baseline"), 1.0)[None, :]
            y, e = baseline + (g2 - baseline) / factor, err / factor
            result = fit_g2(delays, y, e, model)
    if not bayes:
        return (np.array(result.params), np.array(result.errors), np.array(result.chi2_red), result.success)
    import xpcs_device

    if xpcs_device.get_backend().name != "jax":
        raise InputError(
            "--bayes needs the JAX backend: install xpcs-jax and run with XPCS_USE_JAX=1 (or --backend jax)"
        )
    from xpcs_fit.bayes import fit_g2_bayes

    posterior = fit_g2_bayes(delays, y, e, model, seed=seed, keep_samples=False)
    residual = (y - _curves(xpcs_device.get_backend(), model, delays, posterior.mean)) / e
    dof = max(1, delays.size - len(names))
    chi2 = np.where(posterior.success, np.sum(residual**2, axis=0) / dof, np.nan)
    return np.array(posterior.mean), np.array(posterior.std), chi2, np.asarray(posterior.success)


def _curves(
    b: Any, model: str, delays: np.ndarray[Any, Any], params: np.ndarray[Any, Any]
) -> np.ndarray[Any, Any]:
    """``(M, K)`` model curves at ``delays`` (NaN for bins without parameters)."""
    from xpcs_fit import g2_model

    values = np.array(b.to_numpy(g2_model(b, model, delays, np.nan_to_num(params, nan=1.0))))
    values[~np.all(np.isfinite(params), axis=1)] = np.nan
    return np.ascontiguousarray(values.T)


def effective_q(
    static_roi_map: np.ndarray[Any, Any],
    dynamic_roi_map: np.ndarray[Any, Any],
    q_static: np.ndarray[Any, Any],
    q_dynamic: np.ndarray[Any, Any],
) -> np.ndarray[Any, Any]:
    """The q (1/Å) whose Dq² is the decay rate of each dynamic bin's g2.

    The APS g2 of a dynamic bin is the plain mean of its static bins' g2, each decaying at
    D·q_s²; at the rates that set τ this is D·mean(q_s²), not D·q_centre² (the centre of
    a wide log bin lies below the root mean square of its static bins).
    Bins without static bins keep their centre."""
    static = np.asarray(static_roi_map).ravel()
    dynamic = np.asarray(dynamic_roi_map).ravel()
    both = (static > 0) & (dynamic > 0)
    k_s, k_d = int(q_static.size), int(q_dynamic.size)
    pairs = np.unique(dynamic[both].astype(np.int64) * (k_s + 1) + static[both])
    d, s = pairs // (k_s + 1), pairs % (k_s + 1)
    keep = (d <= k_d) & (s <= k_s)
    d, s = d[keep], s[keep]
    q2 = np.asarray(q_static, dtype=np.float64)[s - 1] ** 2
    sums = np.bincount(d - 1, q2, minlength=k_d)
    counts = np.bincount(d - 1, minlength=k_d)
    out = np.asarray(q_dynamic, dtype=np.float64).copy()
    has = counts > 0
    out[has] = np.sqrt(sums[has] / counts[has])
    return out


def _fit_diffusion(
    q: np.ndarray[Any, Any],
    tau: np.ndarray[Any, Any],
    tau_err: np.ndarray[Any, Any],
    success: np.ndarray[Any, Any],
    window: tuple[float, float],
) -> dict[str, Any]:
    from xpcs_fit import fit_tau_q

    used = (
        success
        & np.isfinite(q)
        & (q > 0)
        & np.isfinite(tau)
        & np.isfinite(tau_err)
        & (tau_err > 0)
        & (tau >= window[0])
        & (tau <= window[1])
    )
    out: dict[str, Any] = {"D": float("nan"), "D_err": float("nan"), "chi2": float("nan"), "used": used}
    if used.sum() < 3:
        out["reason"] = (
            f"only {int(used.sum())} bins have a relaxation time between {window[0]:.3g} s and "
            f"{window[1]:.3g} s (need 3); measure longer or with shorter frames"
        )
        return out
    result = fit_tau_q(q[used], tau[used], tau_err[used])
    out.update(
        D=result.diffusion,
        D_err=result.diffusion_err,
        chi2=result.diffusion_chi2_red,
        reason=result.diffusion_reason,
    )
    return out


_ERR_FROM_TAU_FIT = (
    "tau(q) fit, tau errors of the g2 fits scaled by sqrt(chi2_red) (delays taken as independent: "
    "too small, by about 1.4 on simulated runs)"
)


@dataclass(frozen=True)
class _BinFits:
    """What :func:`fit` found per dynamic bin (K,): g2 parameters (K, n_params), the q of
    the tau(q) fit, whether it carries the mixture correction, tau and its error (s)."""

    params: np.ndarray[Any, Any]
    q_eff: np.ndarray[Any, Any]
    corrected: np.ndarray[Any, Any]
    tau: np.ndarray[Any, Any]
    tau_err: np.ndarray[Any, Any]


def _diffusion_error(
    result: Any,
    rows: np.ndarray[Any, Any],
    delays: np.ndarray[Any, Any],
    frames: np.ndarray[Any, Any],
    err: np.ndarray[Any, Any],
    model: str,
    bayes: bool,
    fitted: _BinFits,
    diffusion: dict[str, Any],
) -> dict[str, Any]:
    """``D_err`` from a stratified jackknife over the static bins of the bins used for D
    (:mod:`xpcs_suite.jackknife`), with ``err_method`` saying so; the tau(q) fit's error,
    and why, where that is not possible."""
    if diffusion.get("reason") is not None or not np.isfinite(diffusion["D"]):
        return {"err_method": ""}
    why = None
    if bayes:
        why = "the NUTS fit (a jackknife would rerun it for every static bin)"
    elif result.g2_static is None:
        why = "the file holds no static-bin g2 (/xpcs/multitau/normalized_g2_static; APS pipeline files)"
    if why is None:
        try:
            d_err, n_static = _jackknife_d_err(
                result, rows, delays, frames, err, model, fitted, diffusion["used"], diffusion["D"]
            )
        except ValueError as exc:
            why = " ".join(str(exc).split())
        else:
            return {
                "D_err": d_err,
                "err_method": f"jackknife over the {n_static} static bins of the bins used (delete-one, "
                "stratified by dynamic bin)",
            }
    return {"err_method": f"{_ERR_FROM_TAU_FIT}; no jackknife: {why}"}


def _jackknife_d_err(
    result: Any,
    rows: np.ndarray[Any, Any],
    delays: np.ndarray[Any, Any],
    frames: np.ndarray[Any, Any],
    err: np.ndarray[Any, Any],
    model: str,
    fitted: _BinFits,
    used: np.ndarray[Any, Any],
    diffusion: float,
) -> tuple[float, int]:
    """``(D_err, number of static bins)``. Each replicate is the estimate of :func:`fit` on
    the data without one static bin: that bin's g2 refitted the same way, its q recomputed
    (with the mixture correction where the full fit has it), D by weighted least squares
    with the weights of the full fit. Raises ``ValueError`` (why) where it cannot."""
    from xpcs_fit import PARAM_NAMES
    from xpcs_suite.jackknife import leave_one_static_out, static_to_dynamic, stratified_jackknife_variance

    g2_static = np.asarray(result.g2_static, dtype=np.float64)
    n_static = int(result.q_static.size)
    if g2_static.shape != (result.g2.shape[0], n_static):
        raise ValueError(
            f"normalized_g2_static has shape {g2_static.shape}, expected {(result.g2.shape[0], n_static)}"
        )
    g2_static = g2_static[rows]
    owner = static_to_dynamic(result.static_roi_map, result.dynamic_roi_map, n_static)
    bins = np.flatnonzero(used)
    loo = leave_one_static_out(g2_static, result.q_static, owner, bins)
    # The file's g2 must be the mean of these static bins, or the replicates are not of D.
    mean = np.stack([g2_static[:, owner == k + 1].mean(axis=1) for k in bins], axis=1)
    if not np.allclose(mean, result.g2[rows][:, bins], rtol=1e-9, atol=1e-12):
        raise ValueError("normalized_g2 is not the mean of normalized_g2_static over each bin's static bins")
    k = loo.bins
    params, _, _, success = _fit_g2(delays, frames, loo.g2, err[:, k], model, False, 0)
    tau_r = params[:, PARAM_NAMES[model].index(_TAU_NAME[model])]
    if not np.all(success & np.isfinite(tau_r) & (tau_r > 0)):
        raise ValueError(f"{int(np.sum(~success))} leave-one-out g2 fits failed")
    q_r = np.array(loo.q)
    fix = np.flatnonzero(fitted.corrected[k])
    if fix.size:
        sets = [np.setdiff1d(np.flatnonzero(owner == k[r] + 1), [loo.left_out[r]]) for r in fix]
        contrast = fitted.params[k[fix], PARAM_NAMES["single"].index("contrast")]
        q_r[fix] = _mixture_fit_q(delays, frames, err[:, k[fix]], contrast, result.q_static, sets, diffusion)
        if not np.all(np.isfinite(q_r)):
            raise ValueError("the mixture correction failed for a leave-one-out bin")
    # tau = tau0 / q² is linear in tau0: the weighted least-squares tau0 (D = 1 / tau0) of each
    # replicate follows from the full sums with bin k's term replaced.
    tau, q = fitted.tau, fitted.q_eff
    w = 1.0 / fitted.tau_err**2
    num = np.sum((w * tau / q**2)[used])
    den = np.sum((w / q**4)[used])
    num_r = num - w[k] * tau[k] / q[k] ** 2 + w[k] * tau_r / q_r**2
    den_r = den - w[k] / q[k] ** 4 + w[k] / q_r**4
    variance = stratified_jackknife_variance(den_r / num_r, k)
    return float(np.sqrt(variance)), int(k.size)


def _mixture_q(
    result: Any,
    delays: np.ndarray[Any, Any],
    frames: np.ndarray[Any, Any],
    err: np.ndarray[Any, Any],
    q_mean: np.ndarray[Any, Any],
    params: np.ndarray[Any, Any],
    success: np.ndarray[Any, Any],
    diffusion: float,
) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]:
    """The q (1/Å) of each fitted bin whose ``D q²`` is the rate that the single-exponential
    fit finds in the bin's g2 for Brownian motion at ``diffusion`` (Å²/s), and where it was
    computed (elsewhere ``q_mean``).

    A bin's g2 is the mean of its static bins' g2, a mixture of exponentials with rates
    ``D q_s²``; one exponential fitted to it decays slower than ``D mean(q_s²)`` by about
    the relative variance of ``q_s²`` (0.1-0.2 % with the demo's 40 log bins: D low by
    half its error). :func:`_mixture_fit_q` fits the noise-free mixture exactly like the
    data. The ratio hardly depends on D, so one round suffices."""
    from xpcs_fit import PARAM_NAMES
    from xpcs_suite.jackknife import static_to_dynamic

    q_static = np.asarray(result.q_static, dtype=np.float64)
    owner = static_to_dynamic(result.static_roi_map, result.dynamic_roi_map, q_static.size)
    members = np.bincount(owner, minlength=q_mean.size + 1)[1:]
    bins = np.flatnonzero(success & (members >= 2) & np.isfinite(q_mean) & (q_mean > 0))
    out = np.array(q_mean, dtype=np.float64)
    corrected = np.zeros(out.shape, dtype=bool)
    if not bins.size:
        return out, corrected
    contrast = params[bins, PARAM_NAMES["single"].index("contrast")]
    sets = [np.flatnonzero(owner == k + 1) for k in bins]
    q = _mixture_fit_q(delays, frames, err[:, bins], contrast, q_static, sets, diffusion)
    good = np.isfinite(q)
    out[bins[good]] = q[good]
    corrected[bins[good]] = True
    return out, corrected


def _mixture_fit_q(
    delays: np.ndarray[Any, Any],
    frames: np.ndarray[Any, Any],
    err: np.ndarray[Any, Any],
    contrast: np.ndarray[Any, Any],
    q_static: np.ndarray[Any, Any],
    sets: list[np.ndarray[Any, Any]],
    diffusion: float,
) -> np.ndarray[Any, Any]:
    """``(n,)`` ``1 / sqrt(D tau)`` of the single-exponential fit (:func:`_fit_g2`, with the
    g2 errors ``err`` ``(n_delay, n)`` as weights) of ``1 + contrast * mean_s F_s exp(-2 D q_s²
    t)`` over each set of static bins (``F_s``: the multi-tau window of rate ``D q_s²``,
    :func:`xpcs_suite.g2_correction.window_factor`); NaN where the fit fails."""
    from xpcs_fit import PARAM_NAMES

    windows = averaging_windows(frames)
    frame_s = float(delays[0] / frames[0])
    curves = np.empty((delays.size, len(sets)))
    for i, members in enumerate(sets):
        rates = diffusion * np.asarray(q_static, dtype=np.float64)[members] ** 2  # 1/s
        factor = window_factor(windows, rates * frame_s)
        curves[:, i] = np.mean(factor * np.exp(-2.0 * np.outer(delays, rates)), axis=1)
    g2 = 1.0 + np.asarray(contrast)[None, :] * curves
    fitted, _, _, ok = _fit_g2(delays, frames, g2, err, "single", False, 0)
    tau = fitted[:, PARAM_NAMES["single"].index("tau")]
    good = ok & np.isfinite(tau) & (tau > 0)
    return np.where(good, 1.0 / np.sqrt(diffusion * np.where(good, tau, 1.0)), np.nan)
