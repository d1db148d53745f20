"""The ``xpcs`` command."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from typing import Any

from xpcs_suite.__about__ import __version__
from xpcs_suite.info import collect_info, format_info

__all__ = ["main"]


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="xpcs", description="XPCS analysis on NumPy or JAX.")
    parser.add_argument("--version", action="version", version=f"xpcs-suite {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    info = sub.add_parser("info", help="versions, selected backend and why, JAX devices")
    info.add_argument("--json", action="store_true", help="print machine-readable JSON")
    _add_simulate(sub)
    _add_analyze(sub)
    _add_fit(sub)
    demo = sub.add_parser(
        "demo",
        help="simulate, analyse, fit and plot a Brownian sample; compare the fitted D with the truth",
    )
    demo.add_argument("--out", metavar="DIR", help="folder for the files (default: a new ./xpcs-demo-<time>)")
    demo.add_argument(
        "--backend", choices=("numpy", "jax"), help="backend (default: the environment's choice)"
    )
    demo.add_argument("--quiet", action="store_true", help="no progress bars")
    plot = sub.add_parser("plot", help="PNG plots of a result file")
    plot.add_argument("result", help="result file (HDF5, APS 8-ID-I layout)")
    plot.add_argument(
        "-o", "--out", metavar="DIR", help="folder for the PNGs (default: RESULT_plots beside it)"
    )
    return parser


def _add_simulate(sub: Any) -> None:
    from xpcs_suite.simulation import SimulationParameters

    d = SimulationParameters()
    sim = sub.add_parser(
        "simulate",
        help="write a simulated raw file (Brownian colloids)",
        description="Write a simulated XPCS raw file of Brownian colloids: g2 - 1 = contrast * "
        "exp(-2 D q^2 tau), Poisson counts, a beam stop and dead pixels masked.",
    )
    sim.add_argument("out", help="output HDF5 file (frames at /entry/data/data)")
    sim.add_argument(
        "--frames", type=int, default=d.n_frames, help=f"number of frames (default {d.n_frames})"
    )
    sim.add_argument(
        "--shape",
        type=int,
        nargs=2,
        metavar=("H", "W"),
        default=d.shape,
        help="frame rows and columns (default 256 256)",
    )
    sim.add_argument(
        "--diffusion",
        type=float,
        default=d.diffusion_a2_per_s,
        metavar="D",
        help=f"diffusion coefficient in Å²/s (default {d.diffusion_a2_per_s:g})",
    )
    sim.add_argument(
        "--contrast", type=float, default=d.contrast, help=f"speckle contrast beta (default {d.contrast})"
    )
    sim.add_argument(
        "--frame-time",
        type=float,
        default=d.frame_time_s,
        metavar="S",
        help=f"seconds (default {d.frame_time_s:g})",
    )
    sim.add_argument(
        "--energy", type=float, default=d.energy_kev, metavar="KEV", help=f"keV (default {d.energy_kev:g})"
    )
    sim.add_argument("--distance", type=float, metavar="M", help="metres (default 5 * min(H, W) / 256)")
    sim.add_argument(
        "--peak-count",
        type=float,
        default=d.peak_count,
        help=f"mean counts per pixel and frame at q -> 0 (default {d.peak_count})",
    )
    sim.add_argument("--seed", type=int, default=d.seed, help=f"random seed (default {d.seed})")
    sim.add_argument("--overwrite", action="store_true", help="replace OUT if it exists")


def _add_analyze(sub: Any) -> None:
    from xpcs_suite.pipeline import AnalysisOptions

    d = AnalysisOptions()
    p = sub.add_parser(
        "analyze",
        help="raw frames to an APS 8-ID-I result file (q-map, SAXS, multi-tau g2, two-time)",
        description="Read the frames of RAW (HDF5) in one streaming pass and write RESULT in the APS "
        "8-ID-I NeXus layout. Geometry: --poni, else --geometry, else the raw file's NeXus fields.",
    )
    p.add_argument("raw", help="raw HDF5 file with the frames (N, H, W)")
    p.add_argument("-o", "--output", required=True, metavar="RESULT", help="result file to write (HDF5)")
    p.add_argument(
        "--frames-key",
        default=d.frames_key,
        metavar="KEY",
        help=f"dataset of the frames (default {d.frames_key})",
    )
    geometry = p.add_mutually_exclusive_group()
    geometry.add_argument("--poni", metavar="FILE", help="pyFAI PONI calibration")
    geometry.add_argument("--geometry", metavar="FILE", help="TOML geometry file (see xpcs_suite.inputs)")
    p.add_argument(
        "--mask", metavar="FILE", help="mask (.npy or HDF5; nonzero = valid); default: the raw file's"
    )
    for name, default, what in (
        ("dynamic-q", d.dynamic_q, "dynamic q bins"),
        ("static-q", d.static_q, "static q bins (a multiple of --dynamic-q)"),
        ("dynamic-phi", d.dynamic_phi, "dynamic phi bins"),
        ("static-phi", d.static_phi, "static phi bins (a multiple of --dynamic-phi)"),
    ):
        p.add_argument(
            f"--{name}", type=int, default=default, metavar="N", help=f"{what} (default {default})"
        )
    p.add_argument(
        "--q-spacing", choices=("linear", "log"), default=d.q_spacing, help=f"q bins (default {d.q_spacing})"
    )
    p.add_argument(
        "--twotime", action="store_true", help="also two-time correlation maps (N x N per dynamic bin)"
    )
    p.add_argument("--backend", choices=("numpy", "jax"), help="backend (default: the environment's choice)")
    p.add_argument("--overwrite", action="store_true", help="replace RESULT if it exists")
    p.add_argument("--quiet", action="store_true", help="no progress bars")


def _add_fit(sub: Any) -> None:
    p = sub.add_parser(
        "fit",
        help="fit g2 of a result file and tau(q) = 1/(D q^2); store under /xpcs/fit/<model>; plot",
    )
    p.add_argument("result", help="result file (written by xpcs analyze or the APS pipeline)")
    p.add_argument("--model", choices=("single", "stretched", "double"), default="single", help="g2 model")
    p.add_argument(
        "--bayes", action="store_true", help="NumPyro NUTS posterior (JAX backend) instead of least squares"
    )
    p.add_argument("--backend", choices=("numpy", "jax"), help="backend (default: the environment's choice)")
    p.add_argument("--no-plots", action="store_true", help="do not write the PNGs")
    p.add_argument("--plots", metavar="DIR", help="folder for the PNGs (default: RESULT_plots beside it)")


def _analyze(args: argparse.Namespace) -> int:
    from xpcs_suite.pipeline import AnalysisOptions, analyze

    options = AnalysisOptions(
        frames_key=args.frames_key,
        poni=args.poni,
        geometry=args.geometry,
        mask=args.mask,
        dynamic_q=args.dynamic_q,
        static_q=args.static_q,
        dynamic_phi=args.dynamic_phi,
        static_phi=args.static_phi,
        q_spacing=args.q_spacing,
        twotime=args.twotime,
        backend=args.backend,
        overwrite=args.overwrite,
        progress=not args.quiet,
    )
    summary = analyze(args.raw, args.output, options)
    print("\n".join(summary.lines()))
    return 0


def _fit(args: argparse.Namespace) -> int:
    from xpcs_suite.pipeline import fit

    summary = fit(
        args.result,
        args.model,
        bayes=args.bayes,
        backend=args.backend,
        plots=not args.no_plots,
        plot_dir=args.plots,
    )
    print("\n".join(summary.lines()))
    return 0


def _demo(args: argparse.Namespace) -> int:
    from xpcs_suite.demo import demo

    summary = demo(args.out, backend=args.backend, progress=not args.quiet)
    print("\n".join(summary.lines()))
    return 0


def _simulate(args: argparse.Namespace) -> int:
    import time

    from xpcs_suite.simulation import SimulationParameters, write_raw_file

    params = SimulationParameters(
        n_frames=args.frames,
        shape=tuple(args.shape),
        diffusion_a2_per_s=args.diffusion,
        contrast=args.contrast,
        frame_time_s=args.frame_time,
        energy_kev=args.energy,
        distance_m=args.distance,
        peak_count=args.peak_count,
        seed=args.seed,
    )
    start = time.perf_counter()
    sample = write_raw_file(args.out, params, overwrite=args.overwrite)
    elapsed = time.perf_counter() - start
    q = sample.q_inv_angstrom[sample.mask]
    tau = 1.0 / (params.diffusion_a2_per_s * q**2 * params.frame_time_s)
    print(f"wrote {args.out} in {elapsed:.1f} s")
    rows, cols = params.shape
    print(f"  frames         {params.n_frames} x {rows} x {cols} at {params.frame_time_s:g} s")
    print(f"  diffusion D    {params.diffusion_a2_per_s:g} Å²/s, contrast {params.contrast:g}")
    print(f"  q range        {q.min():.4g} .. {q.max():.4g} 1/Å ({int(sample.mask.sum())} valid pixels)")
    print(f"  tau = 1/(Dq²)  {tau.min():.3g} .. {tau.max():.3g} frames")
    return 0


def _plot(args: argparse.Namespace) -> int:
    from xpcs_suite.plots import write_plots

    for path in write_plots(args.result, args.out):
        print(path)
    return 0


def _info(args: argparse.Namespace) -> int:
    info = collect_info()
    print(json.dumps(info, indent=2) if args.json else format_info(info))
    return 0


_COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {
    "info": _info,
    "simulate": _simulate,
    "analyze": _analyze,
    "fit": _fit,
    "demo": _demo,
    "plot": _plot,
}


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``xpcs`` command; returns the exit status (2 for a usage or input error)."""
    args = _build_parser().parse_args(argv)
    try:
        return _COMMANDS[args.command](args)
    except Exception as exc:
        if args.debug:
            raise
        # One line that names the problem; --debug shows the traceback.
        print(f"xpcs {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
