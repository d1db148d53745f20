"""A simulated XPCS measurement of Brownian colloids, streamed frame chunk by frame chunk.

Model (every pixel independent; q is the exact ``|q|`` of
:func:`xpcs_kernels.qmap.compute_qmap` for a flat detector normal to the beam):

- **Field.** Each valid pixel ``p`` carries a complex Gaussian field with ``<|E|^2> = 1``,
  started from its stationary distribution and advanced frame by frame as
  ``E_t = rho_p E_{t-1} + sqrt(1 - rho_p^2) xi_t`` (``xi_t`` complex standard normal), with
  ``rho_p = exp(-Gamma_p dt)`` and ``Gamma_p = D q_p^2``. So ``g1(tau) = exp(-Gamma_p tau)``
  exactly at every lag ``tau = k dt``.
- **Contrast.** The intensity mixes the speckle with a constant:
  ``I_p(t) = Ibar_p ((1 - f) + f |E_t|^2)`` with ``f = sqrt(beta)``, so ``<I> = Ibar_p`` and
  ``g2 - 1 = beta g1^2 = beta exp(-2 D q^2 tau)`` for every ``tau >= dt``.
- **Mean intensity.** ``Ibar_p = peak_count * P(q_p R)``, the form factor of a sphere of
  radius ``R``: ``P(x) = (3 (sin x - x cos x) / x^3)^2``, so the intensity falls with q.
- **Counts.** Each frame samples ``I_p(t)`` at its start (count time short compared with
  ``1 / Gamma``) and records ``Poisson(I_p(t))`` photons; Poisson noise adds nothing to
  ``g2`` at nonzero lags.
- **Mask.** A round beam stop with its holder arm (a strip from the beam stop to the right
  edge of the detector) and a random sprinkle of dead pixels; masked pixels count 0.

Units: q in 1/Å, D in Å²/s, times in seconds, lengths in metres, energy in keV.

Everything is a pure function of the parameters: random numbers come from
``numpy.random.SeedSequence(seed)``, split into independent streams for the dead pixels
and, for each of a fixed number of pixel groups, the field and the counts, each consumed in
frame order, so the frames depend neither on the chunk size nor on the number of threads
that generate the groups (one per CPU core, at most one per group). Memory is one chunk plus
a few ``(H, W)`` maps whatever the frame count.

The defaults (1000 frames of 256 x 256 at 1 kHz, D = 2e6 Å²/s: spheres of about 25 nm
radius in a glycerol-rich solvent) put the relaxation time ``tau = 1 / (D q^2)`` between
about 3 frames at the detector edge and about 180 frames next to the beam stop, inside
the multi-tau delay range. The detector distance defaults to ``5 m * min(H, W) / 256``
so that the q range, and so the range of relaxation times, does not depend on ``shape``.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

import numpy as np

from xpcs_adapters import HDF5Adapter, ensure_numpy
from xpcs_kernels.geometry import TransmissionGeometry
from xpcs_kernels.qmap import compute_qmap
from xpcs_suite.__about__ import __version__
from xpcs_suite.atomic import atomic_output

__all__ = [
    "RAW_FRAMES_KEY",
    "SimulatedSample",
    "SimulationParameters",
    "iter_simulated_frames",
    "poisson_counts",
    "prepare_sample",
    "simulate_frames",
    "sphere_form_factor",
    "write_raw_file",
]

RAW_FRAMES_KEY = "/entry/data/data"
"""Where :func:`write_raw_file` puts the frames (the Eiger/NeXus convention)."""

_INT_DTYPES = ("uint8", "uint16", "uint32", "int32", "int64")
# Float64 working memory of one automatic chunk (noise, rates, counts): 64 MiB.
_CHUNK_BUDGET_BYTES = 64 * 1024**2
# HDF5 chunks of about 1 MiB: whole chunks fit h5py's default chunk cache.
_HDF5_CHUNK_BYTES = 1024**2
# The valid pixels are split into this many groups with their own random streams, generated
# in parallel threads (NumPy's generators release the GIL). Fixed, so that the frames of a
# seed are the same on every machine whatever its number of cores.
_PIXEL_GROUPS = 4
# Poisson sampling by inverse transform up to this rate (above: Generator.poisson), with this
# many vectorised passes over every draw before the rest continue on their own (at one
# photon per frame on average, about 1% of the draws exceed 3 photons).
_INVERSE_CDF_MAX_RATE = 10.0
_FULL_PASSES = 4


def sphere_form_factor(x: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    """``(3 (sin x - x cos x) / x^3)^2`` with ``x = q R``; 1 at ``x = 0``."""
    x = np.asarray(x, dtype=np.float64)
    small = np.abs(x) < 0.1
    xs = np.where(small, 1.0, x)
    amplitude = 3.0 * (np.sin(xs) - xs * np.cos(xs)) / xs**3
    # sin x - x cos x cancels for small x (relative error ~1e-16 / x^2); below 0.1 the series
    # of the amplitude, 3 sum_k (-1)^(k+1) 2k x^(2k-2) / (2k+1)!, is exact to 1e-18.
    x2 = x * x
    series = 1.0 - x2 / 10.0 + x2**2 / 280.0 - x2**3 / 15120.0 + x2**4 / 1330560.0
    amplitude = np.where(small, series, amplitude)
    return np.asarray(amplitude * amplitude)


def _positive(name: str, value: Any, hint: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating):
        raise ValueError(f"{name} must be a number ({hint}), got {value!r}")
    x = float(value)
    if not math.isfinite(x) or x <= 0.0:
        raise ValueError(f"{name} must be a positive, finite number ({hint}), got {value!r}")
    return x


def _count(name: str, value: Any, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


@dataclass(frozen=True)
class SimulationParameters:
    """Everything a simulated dataset depends on (validated on construction).

    Geometry fields left None get defaults from ``shape``: ``distance_m = 5 * min(H, W) /
    256``, beam centre at column ``0.47 W`` and row ``0.53 H`` (off the detector centre, as
    usual), ``beam_stop_radius_px = 0.07 min(H, W)``. ``count_time_s`` defaults to
    ``frame_time_s``.
    """

    n_frames: int = 1000
    shape: tuple[int, int] = (256, 256)
    diffusion_a2_per_s: float = 2.0e6
    """Diffusion coefficient D in Å²/s (Gamma = D q^2 with q in 1/Å)."""
    contrast: float = 0.3
    """Speckle contrast beta, ``0 < beta <= 1`` (``g2 - 1`` at zero lag)."""
    frame_time_s: float = 1.0e-3
    count_time_s: float | None = None
    energy_kev: float = 10.0
    distance_m: float | None = None
    pixel_size_m: float = 75.0e-6
    beam_center_x_px: float | None = None
    beam_center_y_px: float | None = None
    peak_count: float = 1.5
    """Mean photons per pixel and frame at q -> 0."""
    radius_angstrom: float = 200.0
    """Sphere radius R of the form factor (intensity falls with q R)."""
    beam_stop_radius_px: float | None = None
    dead_pixel_fraction: float = 0.002
    seed: int = 0
    dtype: str = "uint16"
    """Integer type of the counts, one of uint8, uint16, uint32, int32, int64."""

    def __post_init__(self) -> None:
        n = _count("n_frames", self.n_frames, 2)
        try:
            rows, cols = self.shape
        except (TypeError, ValueError):
            raise ValueError(f"shape must be (rows, columns), got {self.shape!r}") from None
        rows, cols = _count("shape rows", rows, 8), _count("shape columns", cols, 8)
        contrast = _positive("contrast", self.contrast, "beta, in (0, 1]")
        if contrast > 1.0:
            raise ValueError(
                f"contrast must lie in (0, 1] (beta = 1 is full coherence), got {self.contrast!r}"
            )
        for name, hint in (
            ("diffusion_a2_per_s", "Å²/s, e.g. 2e6"),
            ("frame_time_s", "seconds, e.g. 0.001"),
            ("energy_kev", "keV, e.g. 10"),
            ("pixel_size_m", "metres, e.g. 75e-6"),
            ("peak_count", "photons per pixel and frame, e.g. 1.5"),
            ("radius_angstrom", "Å, e.g. 200"),
        ):
            object.__setattr__(self, name, _positive(name, getattr(self, name), hint))
        side = min(rows, cols)
        defaults = {
            "count_time_s": self.frame_time_s,
            "distance_m": 5.0 * side / 256.0,
            "beam_center_x_px": 0.47 * cols,
            "beam_center_y_px": 0.53 * rows,
            "beam_stop_radius_px": 0.07 * side,
        }
        for name, default in defaults.items():
            value = getattr(self, name)
            if value is None:
                value = default
            elif name.startswith("beam_center"):
                if isinstance(value, bool) or not math.isfinite(float(value)):
                    raise ValueError(f"{name} must be a finite number of pixels, got {value!r}")
                value = float(value)
            else:
                value = _positive(name, value, "a positive number")
            object.__setattr__(self, name, float(value))
        if self.count_time_s > self.frame_time_s:  # type: ignore[operator]
            raise ValueError(
                f"count_time_s ({self.count_time_s}) cannot exceed frame_time_s ({self.frame_time_s})"
            )
        fraction = float(self.dead_pixel_fraction)
        if not 0.0 <= fraction < 0.5:
            raise ValueError(f"dead_pixel_fraction must lie in [0, 0.5), got {self.dead_pixel_fraction!r}")
        object.__setattr__(self, "dead_pixel_fraction", fraction)
        if isinstance(self.seed, bool) or not isinstance(self.seed, int | np.integer) or self.seed < 0:
            raise ValueError(f"seed must be a non-negative integer, got {self.seed!r}")
        if str(self.dtype) not in _INT_DTYPES:
            raise ValueError(f"dtype must be one of {', '.join(_INT_DTYPES)}, got {self.dtype!r}")
        object.__setattr__(self, "n_frames", n)
        object.__setattr__(self, "shape", (rows, cols))
        object.__setattr__(self, "contrast", contrast)
        object.__setattr__(self, "seed", int(self.seed))
        object.__setattr__(self, "dtype", str(self.dtype))

    @property
    def geometry(self) -> TransmissionGeometry:
        """The flat detector normal to the beam."""
        return TransmissionGeometry(
            self.energy_kev,
            self.distance_m,  # type: ignore[arg-type]  # set in __post_init__
            self.pixel_size_m,
            self.beam_center_x_px,  # type: ignore[arg-type]
            self.beam_center_y_px,  # type: ignore[arg-type]
        )

    def with_changes(self, **changes: Any) -> SimulationParameters:
        """A copy with some fields changed (validated again)."""
        return replace(self, **changes)


@dataclass(frozen=True, eq=False)
class SimulatedSample:
    """The time-independent truth of a simulation (NumPy arrays of shape ``(H, W)``)."""

    parameters: SimulationParameters
    q_inv_angstrom: np.ndarray[Any, Any] = field(repr=False)
    """Exact ``|q|`` of every pixel, 1/Å."""
    mask: np.ndarray[Any, Any] = field(repr=False)
    """True on valid pixels; False under the beam stop and its arm and on dead pixels."""
    mean_intensity: np.ndarray[Any, Any] = field(repr=False)
    """Expected photons per frame of every pixel (0 on masked pixels)."""
    decay_rate_per_s: np.ndarray[Any, Any] = field(repr=False)
    """Gamma = D q^2 of every pixel, 1/s."""

    @property
    def geometry(self) -> TransmissionGeometry:
        return self.parameters.geometry

    def expected_g2(self, lag_frames: np.ndarray[Any, Any] | float) -> np.ndarray[Any, Any]:
        """``1 + beta exp(-2 Gamma tau)`` per pixel for lags ``tau`` in frames (>= 1), shape
        ``lag_frames.shape + (H, W)``."""
        tau = np.asarray(lag_frames, dtype=np.float64)[..., None, None] * self.parameters.frame_time_s
        return np.asarray(1.0 + self.parameters.contrast * np.exp(-2.0 * self.decay_rate_per_s * tau))


def _seeds(seed: int) -> tuple[np.random.SeedSequence, np.random.SeedSequence, np.random.SeedSequence]:
    """Independent seed sequences of the dead pixels, the field and the counts."""
    layout, field_, counts = np.random.SeedSequence(seed).spawn(3)
    return layout, field_, counts


def _mask(params: SimulationParameters, rng: np.random.Generator) -> np.ndarray[Any, Any]:
    rows, cols = params.shape
    i = np.arange(rows, dtype=np.float64)[:, None]
    j = np.arange(cols, dtype=np.float64)[None, :]
    bcx, bcy = params.beam_center_x_px, params.beam_center_y_px
    radius = params.beam_stop_radius_px
    assert bcx is not None
    assert bcy is not None
    assert radius is not None
    stop = (i - bcy) ** 2 + (j - bcx) ** 2 <= radius**2
    # The holder arm: a strip a third of the stop's diameter wide, to the right edge.
    arm = (np.abs(i - bcy) <= radius / 3.0) & (j >= bcx)
    dead = rng.random((rows, cols)) < params.dead_pixel_fraction
    return np.asarray(~(stop | arm | dead))


def prepare_sample(params: SimulationParameters | None = None) -> SimulatedSample:
    """The q map, mask, mean intensity and decay rates of ``params`` (default parameters
    when None). The q map is computed on the active backend and returned as NumPy."""
    params = SimulationParameters() if params is None else params
    qmap = compute_qmap(params.geometry, params.shape, quantities=("q_inv_angstrom",))
    q = np.array(ensure_numpy(qmap.q_inv_angstrom), dtype=np.float64)
    mask = _mask(params, np.random.default_rng(_seeds(params.seed)[0]))
    mean = params.peak_count * sphere_form_factor(q * params.radius_angstrom)
    mean = np.where(mask, mean, 0.0)
    rate = params.diffusion_a2_per_s * q * q
    for array in (q, mask, mean, rate):
        array.flags.writeable = False
    return SimulatedSample(params, q, mask, mean, rate)


def _auto_chunk(n_pixels: int) -> int:
    # noise (2 values), rate and counts per pixel and frame, in float64
    return max(1, _CHUNK_BUDGET_BYTES // (32 * max(1, n_pixels)))


def iter_simulated_frames(
    sample: SimulatedSample | SimulationParameters | None = None, *, chunk_frames: int | None = None
) -> Iterator[np.ndarray[Any, Any]]:
    """The frames of a simulation as consecutive chunks ``(n, H, W)`` of integer counts
    (``parameters.dtype``), ``chunk_frames`` frames each (the last may have fewer; None:
    as many as fit in 64 MiB of working memory). The frames are the same whatever the
    chunk size. Raises ``OverflowError`` if a count does not fit the dtype."""
    if sample is None or isinstance(sample, SimulationParameters):
        sample = prepare_sample(sample)
    valid = np.flatnonzero(sample.mask)
    if chunk_frames is None:
        chunk_frames = _auto_chunk(valid.size)
    chunk_frames = _count("chunk_frames", chunk_frames, 1)
    return _frames(sample, valid, chunk_frames)


def poisson_counts(rng: np.random.Generator, rate: np.ndarray[Any, Any], out: np.ndarray[Any, Any]) -> None:
    """Poisson draws of mean ``rate`` (1-D, photons, >= 0) into ``out`` (int64, same shape).

    Inverse transform sampling: one uniform ``u`` per draw, ``N = min{k : u < F(k; rate)}``,
    with the cumulative distribution ``F`` summed in vectorised passes (float64, so exact up to
    rounding of 1e-16). For the rates of XPCS (about one photon) this is several times faster
    than ``Generator.poisson``, which runs a scalar loop with one ``exp`` per draw; rates above
    :data:`_INVERSE_CDF_MAX_RATE` use ``Generator.poisson`` from the same stream. The stream is
    consumed in a fixed order (all uniforms, then the bright draws), so the counts depend only on
    the rates and the generator's state."""
    u = rng.random(rate.size)
    bright = np.flatnonzero(rate > _INVERSE_CDF_MAX_RATE)
    lam = rate if not bright.size else np.where(rate > _INVERSE_CDF_MAX_RATE, 0.0, rate)
    p = np.exp(-lam)  # P(N = k), from k = 0
    cdf = p.copy()  # P(N <= k)
    np.less_equal(cdf, u, out=out, casting="unsafe")
    for k in range(1, _FULL_PASSES):
        p *= lam
        p *= 1.0 / k
        cdf += p
        out += cdf <= u
    # The few draws beyond the full passes, on their own (compacted) arrays.
    left = np.flatnonzero(cdf <= u)
    k = _FULL_PASSES
    ul, ll, pl, cl = u[left], lam[left], p[left], cdf[left]
    while left.size:
        pl *= ll / k
        cl += pl
        k += 1
        # pl == 0: the distribution's remaining mass is below float64 resolution
        more = (cl <= ul) & (pl > 0)
        left, ul, ll, pl, cl = left[more], ul[more], ll[more], pl[more], cl[more]
        out[left] += 1
    if bright.size:
        out[bright] = rng.poisson(rate[bright])


class _PixelGroup:
    """The field of a group of valid pixels and its two random streams, advanced chunk by
    chunk in frame order."""

    def __init__(
        self,
        sample: SimulatedSample,
        pixels: np.ndarray[Any, Any],
        field_seed: np.random.SeedSequence,
        count_seed: np.random.SeedSequence,
    ) -> None:
        params = sample.parameters
        self.pixels = pixels
        self.rho = np.exp(-sample.decay_rate_per_s.ravel()[pixels] * params.frame_time_s)
        self.kick = np.sqrt(0.5 * (1.0 - self.rho * self.rho))  # each quadrature has variance 1/2
        f = math.sqrt(params.contrast)
        # I = Ibar ((1 - f) + f |E|^2) = offset + scale |E|^2
        mean = sample.mean_intensity.ravel()[pixels]
        self.offset, self.scale = mean * (1.0 - f), mean * f
        self.field_rng = np.random.default_rng(field_seed)
        self.count_rng = np.random.default_rng(count_seed)
        # Stationary start: <|E|^2> = 1, i.e. variance 1/2 for the real and imaginary parts.
        self.re, self.im = self.field_rng.standard_normal((2, pixels.size)) * math.sqrt(0.5)

    def fill(self, first: int, out: np.ndarray[Any, Any]) -> int:
        """Write the counts of frames ``first .. first + len(out) - 1`` into this group's
        columns of ``out`` (n, H * W); returns the largest count (before any cast)."""
        n, size = out.shape[0], self.pixels.size
        # Frame 0 is the start state; every later frame draws one (2, P) noise block.
        noise = self.field_rng.standard_normal((n - 1 if first == 0 else n, 2, size))
        rate = np.empty(size)
        counts = np.empty((n, size), dtype=np.int64)
        re, im, rho, kick = self.re, self.im, self.rho, self.kick
        k = 0
        # Frame by frame, so that the working arrays stay in cache.
        for t in range(n):
            if first + t > 0:
                re = rho * re + kick * noise[k, 0]
                im = rho * im + kick * noise[k, 1]
                k += 1
            np.multiply(re, re, out=rate)
            rate += im * im
            rate *= self.scale
            rate += self.offset
            poisson_counts(self.count_rng, rate, counts[t])
        self.re, self.im = re, im
        top = int(counts.max()) if counts.size else 0
        if top <= np.iinfo(out.dtype).max:
            out[:, self.pixels] = counts
        return top


def _frames(
    sample: SimulatedSample, valid: np.ndarray[Any, Any], step: int
) -> Iterator[np.ndarray[Any, Any]]:
    params = sample.parameters
    rows, cols = params.shape
    dtype = np.dtype(params.dtype)
    _, field_seed, count_seed = _seeds(params.seed)
    groups = [
        _PixelGroup(sample, pixels, fs, cs)
        for pixels, fs, cs in zip(
            np.array_split(valid, _PIXEL_GROUPS),
            field_seed.spawn(_PIXEL_GROUPS),
            count_seed.spawn(_PIXEL_GROUPS),
            strict=True,
        )
    ]
    with ThreadPoolExecutor(max_workers=min(_PIXEL_GROUPS, os.cpu_count() or 1)) as pool:
        for first in range(0, params.n_frames, step):
            n = min(step, params.n_frames - first)
            chunk = np.zeros((n, rows * cols), dtype=dtype)
            top = max(job.result() for job in [pool.submit(g.fill, first, chunk) for g in groups])
            if top > np.iinfo(dtype).max:
                raise OverflowError(
                    f"a count of {top} does not fit dtype {dtype.name}; use a wider dtype "
                    "(e.g. uint32) or a lower peak_count"
                )
            yield chunk.reshape(n, rows, cols)


def simulate_frames(
    params: SimulationParameters | None = None,
) -> tuple[np.ndarray[Any, Any], SimulatedSample]:
    """All frames ``(N, H, W)`` in memory, with the sample (for small simulations)."""
    sample = prepare_sample(params)
    frames = np.concatenate(list(iter_simulated_frames(sample)), axis=0)
    return frames, sample


def _hdf5_chunk_frames(shape: tuple[int, int], itemsize: int) -> int:
    return max(1, _HDF5_CHUNK_BYTES // (shape[0] * shape[1] * itemsize))


def _scalar(adapter: HDF5Adapter, group: Any, name: str, value: float, units: str) -> None:
    dataset = adapter.write_dataset(group, name, np.float64(value))
    dataset.attrs["units"] = units


def _group(parent: Any, name: str, nx_class: str) -> Any:
    group = parent.require_group(name)
    group.attrs["NX_class"] = nx_class
    return group


def _write_metadata(h5: Any, sample: SimulatedSample, adapter: HDF5Adapter) -> None:
    params = sample.parameters
    entry = h5["entry"]
    entry.create_dataset("start_time", data=datetime.now(UTC).isoformat(timespec="seconds").encode())
    instrument = _group(entry, "instrument", "NXinstrument")
    detector = _group(instrument, "detector_1", "NXdetector")
    _scalar(adapter, detector, "frame_time", params.frame_time_s, "s")
    _scalar(adapter, detector, "count_time", params.count_time_s, "s")  # type: ignore[arg-type]
    _scalar(adapter, detector, "x_pixel_size", params.pixel_size_m, "m")
    _scalar(adapter, detector, "y_pixel_size", params.pixel_size_m, "m")
    _scalar(adapter, detector, "distance", params.distance_m, "m")  # type: ignore[arg-type]
    _scalar(adapter, detector, "beam_center_x", params.beam_center_x_px, "pixel")  # type: ignore[arg-type]
    _scalar(adapter, detector, "beam_center_y", params.beam_center_y_px, "pixel")  # type: ignore[arg-type]
    mask = adapter.write_dataset(detector, "mask", sample.mask.astype(np.uint8), compression="gzip")
    mask.attrs["description"] = "1 = valid pixel, 0 = masked (beam stop, its arm, dead pixels)"
    beam = _group(instrument, "incident_beam", "NXbeam")
    _scalar(adapter, beam, "incident_energy", params.energy_kev, "keV")
    sim = _group(_group(entry, "sample", "NXsample"), "simulation", "NXcollection")
    sim.attrs["software"] = f"xpcs-suite {__version__}"
    sim.attrs["model"] = "Brownian diffusion: g2 - 1 = contrast * exp(-2 D q^2 tau), q exact |q| in 1/A"
    _scalar(adapter, sim, "diffusion_coefficient", params.diffusion_a2_per_s, "A^2/s")
    _scalar(adapter, sim, "contrast", params.contrast, "")
    _scalar(adapter, sim, "peak_count", params.peak_count, "counts/pixel/frame")
    _scalar(adapter, sim, "sphere_radius", params.radius_angstrom, "A")
    _scalar(adapter, sim, "beam_stop_radius", params.beam_stop_radius_px, "pixel")  # type: ignore[arg-type]
    _scalar(adapter, sim, "dead_pixel_fraction", params.dead_pixel_fraction, "")
    adapter.write_dataset(sim, "seed", np.int64(params.seed))
    adapter.write_dataset(sim, "mean_intensity", sample.mean_intensity, compression="gzip")


def write_raw_file(
    path: str | os.PathLike[str],
    params: SimulationParameters | None = None,
    *,
    overwrite: bool = False,
    chunk_frames: int | None = None,
    compression: str | None = "gzip",
) -> SimulatedSample:
    """Write a simulated raw file (HDF5) and return its sample.

    Layout: frames ``(N, H, W)`` of integer counts at ``/entry/data/data`` (HDF5-chunked
    by whole frames, ~1 MiB a chunk; byte-shuffled and compressed with ``compression``: gzip
    level 1 by default, "lzf" (faster, larger) or None (fastest, largest));
    ``/entry/start_time``; ``/entry/instrument/detector_1/{frame_time, count_time}`` (s),
    ``{x_pixel_size, y_pixel_size, distance}`` (m), ``{beam_center_x, beam_center_y}``
    (pixels: column, row), ``mask`` (uint8, 1 = valid); ``/entry/instrument/incident_beam/
    incident_energy`` (keV); the truth in ``/entry/sample/simulation`` (``diffusion_coefficient``
    Å²/s, ``contrast``, ``peak_count``, ``sphere_radius`` Å, ``beam_stop_radius``,
    ``dead_pixel_fraction``, ``seed``, ``mean_intensity`` (H, W)). Every number has a
    ``units`` attribute.

    The file is written to a temporary file in the same folder and renamed at the end, so
    ``path`` is never left partial; an existing ``path`` is refused unless ``overwrite``.
    """
    import h5py  # the hdf5 extra; imported here so the module loads without it

    params = SimulationParameters() if params is None else params
    if compression not in ("gzip", "lzf", None):
        raise ValueError(f"compression must be 'gzip', 'lzf' or None, got {compression!r}")
    sample = prepare_sample(params)
    adapter = HDF5Adapter()
    rows, cols = params.shape
    dtype = np.dtype(params.dtype)
    h5_chunk = (min(params.n_frames, _hdf5_chunk_frames(params.shape, dtype.itemsize)), rows, cols)
    if chunk_frames is None:
        # whole HDF5 chunks per write, within the working-memory budget
        chunk_frames = h5_chunk[0] * max(1, _auto_chunk(int(sample.mask.sum())) // h5_chunk[0])
    options: dict[str, Any] = {"chunks": h5_chunk}
    if compression is not None:
        # Byte shuffling first: the high bytes of small counts are zeros, which both filters
        # then compress faster and better (gzip: ~20% smaller and ~1.5x faster here).
        options.update(compression=compression, shuffle=True)
        if compression == "gzip":
            options["compression_opts"] = 1
    with atomic_output(path, overwrite=overwrite) as temporary, h5py.File(temporary, "w") as h5:
        entry = _group(h5, "entry", "NXentry")
        data_group = _group(entry, "data", "NXdata")
        data_group.attrs["signal"] = "data"
        frames = data_group.create_dataset(
            "data", shape=(params.n_frames, rows, cols), dtype=dtype, **options
        )
        frames.attrs["units"] = "counts"
        position = 0
        for chunk in iter_simulated_frames(sample, chunk_frames=chunk_frames):
            frames[position : position + chunk.shape[0]] = adapter.to_hdf5(chunk)
            position += chunk.shape[0]
        _write_metadata(h5, sample, adapter)
    return sample
