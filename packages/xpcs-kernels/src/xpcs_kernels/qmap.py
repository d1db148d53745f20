"""Q-maps: per-pixel momentum transfer and angles for a detector geometry.

:func:`compute_qmap` returns a :class:`QMap` of backend arrays, one value per pixel
(row ``i``, column ``j``), with the units in the names:

``q_inv_angstrom``
    Exact ``|q| = 2·k0·sin θ``, computed without trigonometry or cancellation as
    ``k0 · (r/R) · √(2 / (1 + z/R))`` (r: distance from the beam axis, R: from the sample).
``q_aps_inv_angstrom``
    The APS convention ``k0·sin 2θ = k0·r/R`` (pySimpleMask, XPCS Viewer): the component
    transverse to the beam, smaller than ``|q|`` by the factor ``cos θ``. Partitions may be
    built on either; say which (the APS tools use this one).
``phi_deg``
    APS azimuth ``atan2(dy, dx)`` with ``dx = (j - bcx)·p``, ``dy = -(i - bcy)·p`` (up is
    +y), counter-clockwise from +x, in (-180, 180].
``qx_inv_angstrom``, ``qy_inv_angstrom``, ``qz_inv_angstrom``
    Transmission and tilted: lab frame, z along the beam, x to the right and y up in the
    image (``k0·(dx, dy, z - R)/R``; ``qz`` again cancellation-free). Reflection: sample
    frame, x along the beam in the surface, y in the surface across the beam, z along the
    surface normal (GISAXS convention).
``two_theta_deg``
    Scattering angle 2θ.
``alpha_f_deg``, ``two_theta_f_deg``, ``qr_inv_angstrom`` (reflection only, None otherwise)
    Exit angle above the surface, in-plane angle, and ``√(qx² + qy²)``.

**Tilted detectors (pyFAI).** Pixel centres are placed as pyFAI does, at
``((i + 0.5)·pixel1 - poni1, (j + 0.5)·pixel2 - poni2, dist)`` in detector coordinates
(rows reversed for pyFAI orientations 1 and 2, columns for 1 and 4), and rotated with
pyFAI's ``R = R3·R2·R1`` into pyFAI's lab frame ``(t1, t2, t3)``. The APS lab frame used
here is ``x = t2``, ``y = -t1``, ``z = t3`` (a proper rotation), so 2θ and ``|q|`` equal
pyFAI's and **φ = -chi** (pyFAI's ``chi = atan2(t1, t2)``), except that pyFAI's
``chi = π`` (the discontinuity) maps to φ = 180°, not -180°. pyFAI's ``qArray`` is in nm⁻¹:
divide by 10 for Å⁻¹.

**Precision.** ``dtype="float64"`` (default) computes everything in float64.
``dtype="float32"`` sets up the per-row and per-column vectors in float64, then does the
per-pixel work natively in float32 (about 1e-6 relative; the cancellation-free forms keep
small q accurate).

**Performance.** The flat detector is separable: dx depends on the column only and dy
on the row only, so the offsets are 1-D vectors broadcast into the 2-D work; a tilted
detector is separable as a sum (each lab coordinate is ``row_term[i] + column_term[j]``).
Each (backend, geometry kind, shape, dtype) has one compiled function, kept in a bounded
LRU cache (:func:`qmap_cache_info`); geometry numbers are traced arguments, so a new beam
centre or distance reuses it. NumPy results are new arrays on every call. On compiled
backends φ and the other angles use a polynomial ``arctan2`` (within 2 ulp of NumPy's,
about 7x faster than XLA's float64 ``atan2`` on CPU); NumPy's own is used on NumPy.
On CPU, writing fresh float64 outputs is the larger cost: glibc gives every block of
32 MiB or more (one 2048 x 2048 map) new ``mmap`` pages, and their page faults cost more
than the arithmetic (``tools/bench/bench_qmap.py`` prints that floor, and the effect of
letting glibc reuse freed memory).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, fields
from typing import Any, Literal

import numpy as np

from xpcs_device import get_backend, place_on_device
from xpcs_kernels.geometry import ReflectionGeometry, TiltedGeometry, TransmissionGeometry
from xpcs_protocol import BackendProtocol
from xpcs_protocol.types import Array

__all__ = [
    "COMMON_QUANTITIES",
    "REFLECTION_QUANTITIES",
    "Geometry",
    "QMap",
    "compute_qmap",
    "qmap_cache_clear",
    "qmap_cache_info",
]

Geometry = TransmissionGeometry | TiltedGeometry | ReflectionGeometry
_DTYPES = ("float64", "float32")
_CACHE_SIZE = 64
_DEG = 180.0 / math.pi

COMMON_QUANTITIES: tuple[str, ...] = (
    "q_inv_angstrom",
    "q_aps_inv_angstrom",
    "phi_deg",
    "qx_inv_angstrom",
    "qy_inv_angstrom",
    "qz_inv_angstrom",
    "two_theta_deg",
)
"""Quantities of every geometry kind."""
REFLECTION_QUANTITIES: tuple[str, ...] = (
    *COMMON_QUANTITIES,
    "alpha_f_deg",
    "two_theta_f_deg",
    "qr_inv_angstrom",
)
"""Quantities of a :class:`~xpcs_kernels.geometry.ReflectionGeometry`."""


@dataclass(frozen=True)
class QMap:
    """Per-pixel quantities of a geometry (see the module docstring for each).

    Quantities not computed (not asked for with ``quantities=``, or reflection-only ones
    for other geometries) are None; ``qmap["name"]`` raises ``KeyError`` for them.
    """

    q_inv_angstrom: Array | None = None
    q_aps_inv_angstrom: Array | None = None
    phi_deg: Array | None = None
    qx_inv_angstrom: Array | None = None
    qy_inv_angstrom: Array | None = None
    qz_inv_angstrom: Array | None = None
    two_theta_deg: Array | None = None
    alpha_f_deg: Array | None = None
    two_theta_f_deg: Array | None = None
    qr_inv_angstrom: Array | None = None

    def as_dict(self) -> dict[str, Array]:
        """The arrays present, by name."""
        return {f.name: getattr(self, f.name) for f in fields(self) if getattr(self, f.name) is not None}

    def __iter__(self) -> Iterator[str]:
        return iter(self.as_dict())

    def __getitem__(self, name: str) -> Array:
        value = self.as_dict().get(name)
        if value is None:
            raise KeyError(f"{name!r} is not in this QMap; it has {', '.join(self.as_dict())}")
        return value


# ------------------------------------------------------------------------- arctan2
# R(s) with atan(u) = u + u·s·R(s), s = u², on s in [0, (√2 - 1)²]: interpolation at the
# 11 Chebyshev nodes of that interval of the exact R (mpmath, 60 digits), monomial
# coefficients rounded to float64; relative error of R below 3e-16, which reaches the
# result scaled by s·|R| <= 0.06.
_ATAN_R = (
    -0.3333333333333333,
    0.1999999999999552,
    -0.14285714284666542,
    0.11111111015256361,
    -0.09090904578123903,
    0.07692183190826087,
    -0.06664511447381948,
    0.0585814891280221,
    -0.0508544973794026,
    0.03923165829558719,
    -0.01917688711906226,
)
_TAN_PI_8 = math.sqrt(2.0) - 1.0
# pi, pi/2, pi/4 as float64 plus the remainder (the low part), so the quadrant steps round once.
_PI_LO, _PI_2_LO, _PI_4_LO = 1.2246467991473532e-16, 6.123233995736766e-17, 3.061616997868383e-17


def _arctan2(b: BackendProtocol, y: Array, x: Array) -> Array:
    """``arctan2(y, x)`` in radians, (-π, π], within 2 ulp of ``numpy.arctan2`` for finite
    inputs of magnitude up to 1e300, except that a negative zero counts as +0 (so the
    negative x axis gives +π; the kernels pass no negative zeros anyway) and subnormal
    inputs may count as zero (XLA on CPU flushes them).

    NumPy's own ``arctan2`` is SIMD-vectorised and used as is. XLA's float64 ``atan2`` on
    CPU is a scalar library call per element, about 7x slower than this branch-free
    reduction to ``[0, tan(π/8)]`` and a degree-10 polynomial, which compiles to vector code.
    """
    if b.name == "numpy":
        return b.arctan2(y, x)
    ax, ay = b.abs(x), b.abs(y)
    big, small = b.maximum(ax, ay), b.minimum(ax, ay)
    # atan(small/big) for a ratio above tan(π/8) is π/4 + atan((small - big)/(small + big)),
    # from small and big directly: one rounding less than going through the ratio.
    above = small > _TAN_PI_8 * big
    u = b.where(above, small - big, small) / b.where(above, small + big, b.where(big > 0, big, 1.0))
    s = u * u
    poly = _ATAN_R[-1]
    for c in reversed(_ATAN_R[:-1]):
        poly = poly * s + c
    r = u + u * s * poly
    r = b.where(above, math.pi / 4 + (r + _PI_4_LO), r)
    r = b.where(ay > ax, (math.pi / 2 - r) + _PI_2_LO, r)
    r = b.where(x < 0, (math.pi - r) + _PI_LO, r)
    return b.where(y < 0, -r, r)


# --------------------------------------------------------------------------- kernels
def _clean_zero(b: BackendProtocol, v: Array) -> Array:
    """``-0.0`` replaced by ``+0.0`` so that φ is +180°, never -180°, on the negative x axis."""
    return b.where(v == 0.0, b.zeros_like(v), v)


def _axis(b: BackendProtocol, n: int, scale: Array, centre: Array) -> Array:
    """``scale · (index - centre)`` for ``index = 0 .. n-1``, float64."""
    return scale * (b.arange(n, dtype="float64") - centre)


def _derive(
    b: BackendProtocol,
    x: Array,
    y: Array,
    z: Array,
    k0: Array,
    wanted: frozenset[str],
    incidence: tuple[Array, Array] | None,
) -> dict[str, Array]:
    """The ``wanted`` quantities from lab coordinates ``x``, ``y``, ``z`` (broadcastable
    to 2-D), with as few full-size operations as possible (NumPy pays for each one)."""
    out: dict[str, Array] = {}
    r2 = x * x + y * y
    # One reciprocal square root and no other full-size intermediate: XLA keeps a sqrt or
    # a division used twice as an array of its own, so R itself is never formed.
    inv_r = 1.0 / b.sqrt(r2 + z * z)
    k0_inv_r = k0 * inv_r
    # z/R - 1 = -(r/R)²/(1 + z/R): the lab qz without cancellation; |q|² = -2·k0·qz_lab
    qz_lab = -k0_inv_r * (r2 * inv_r) / (1.0 + z * inv_r)
    if "q_inv_angstrom" in wanted:
        out["q_inv_angstrom"] = b.sqrt((-2.0 * k0) * qz_lab)
    if "q_aps_inv_angstrom" in wanted:
        out["q_aps_inv_angstrom"] = k0_inv_r * b.sqrt(r2)
    if "phi_deg" in wanted:
        out["phi_deg"] = _arctan2(b, y, x) * _DEG
    if "two_theta_deg" in wanted:
        out["two_theta_deg"] = _arctan2(b, b.sqrt(r2), z) * _DEG
    if incidence is None:
        if "qx_inv_angstrom" in wanted:
            out["qx_inv_angstrom"] = x * k0_inv_r
        if "qy_inv_angstrom" in wanted:
            out["qy_inv_angstrom"] = y * k0_inv_r
        if "qz_inv_angstrom" in wanted:
            out["qz_inv_angstrom"] = qz_lab
        return out
    out.update(_reflection(b, x, y, z, k0_inv_r, qz_lab, wanted, incidence))
    return out


def _reflection(
    b: BackendProtocol,
    x: Array,
    y: Array,
    z: Array,
    k0_inv_r: Array,
    qz_lab: Array,
    wanted: frozenset[str],
    incidence: tuple[Array, Array],
) -> dict[str, Array]:
    """Sample-frame q and exit angles of grazing incidence (``qz_lab = k0 (z/R - 1)``)."""
    out: dict[str, Array] = {}
    sin_ai, cos_ai = incidence
    # u = (x, y, z)/R; surface normal n = (0, cos alpha_i, -sin alpha_i);
    # in-surface beam direction d = (0, sin alpha_i, cos alpha_i).
    # qx = k0 (u·d - cos alpha_i), qy = k0 u·x̂, qz = k0 (u·n + sin alpha_i), each without cancellation.
    qx = y * sin_ai * k0_inv_r + cos_ai * qz_lab
    qy = x * k0_inv_r
    qz = y * cos_ai * k0_inv_r - sin_ai * qz_lab
    if "qx_inv_angstrom" in wanted:
        out["qx_inv_angstrom"] = qx
    if "qy_inv_angstrom" in wanted:
        out["qy_inv_angstrom"] = qy
    if "qz_inv_angstrom" in wanted:
        out["qz_inv_angstrom"] = qz
    if "qr_inv_angstrom" in wanted:
        out["qr_inv_angstrom"] = b.sqrt(qx * qx + qy * qy)
    along = y * sin_ai + z * cos_ai  # R (u·d)
    if "alpha_f_deg" in wanted:
        normal = y * cos_ai - z * sin_ai  # R (u·n)
        out["alpha_f_deg"] = _arctan2(b, normal, b.sqrt(x * x + along * along)) * _DEG
    if "two_theta_f_deg" in wanted:
        out["two_theta_f_deg"] = _arctan2(b, x, along) * _DEG
    return out


def _flat_kernel(
    b: BackendProtocol,
    shape: tuple[int, int],
    dtype: str,
    x_on_rows: bool,
    reflection: bool,
    wanted: frozenset[str],
    params: Array,
) -> dict[str, Array]:
    # params: k0, L, s_row, c_row, s_col, c_col, sin alpha_i, cos alpha_i
    n_rows, n_cols = shape
    row = _clean_zero(b, _axis(b, n_rows, params[2], params[3]))
    col = _clean_zero(b, _axis(b, n_cols, params[4], params[5]))
    row = b.astype(b.expand_dims(row, 1), dtype)
    col = b.astype(b.expand_dims(col, 0), dtype)
    k0 = b.astype(params[0], dtype)
    z = b.astype(params[1], dtype)
    x, y = (row, col) if x_on_rows else (col, row)
    incidence = (b.astype(params[6], dtype), b.astype(params[7], dtype)) if reflection else None
    return _derive(b, x, y, z, k0, wanted, incidence)


def _tilted_kernel(
    b: BackendProtocol, shape: tuple[int, int], dtype: str, wanted: frozenset[str], params: Array
) -> dict[str, Array]:
    # params: k0, L, s1, c1, s2, c2, then R (row-major, 9 numbers)
    n_rows, n_cols = shape
    x1 = _axis(b, n_rows, params[2], params[3])
    x2 = _axis(b, n_cols, params[4], params[5])
    length = params[1]

    # APS lab frame: x = t2, y = -t1, z = t3 with t = R · (x1, x2, L); each a row term plus
    # a column term.
    def lab(k: int, sign: float) -> Array:
        rows = sign * (params[6 + 3 * k] * x1 + params[8 + 3 * k] * length)
        cols = sign * (params[7 + 3 * k] * x2)
        rows = b.astype(b.expand_dims(_clean_zero(b, rows), 1), dtype)
        cols = b.astype(b.expand_dims(_clean_zero(b, cols), 0), dtype)
        return rows + cols

    x, y, z = lab(1, 1.0), lab(0, -1.0), lab(2, 1.0)
    return _derive(b, x, y, z, b.astype(params[0], dtype), wanted, None)


# ----------------------------------------------------------------------------- cache
@functools.lru_cache(maxsize=_CACHE_SIZE)
def _compiled(
    b: BackendProtocol,
    kind: str,
    shape: tuple[int, int],
    dtype: str,
    x_on_rows: bool,
    wanted: frozenset[str],
) -> Callable[[Array], dict[str, Array]]:
    """The (jitted) kernel for one backend, geometry kind, shape, dtype and set of quantities."""
    fun: Callable[[Array], dict[str, Array]]
    if kind == "tilted":
        fun = functools.partial(_tilted_kernel, b, shape, dtype, wanted)
    else:
        fun = functools.partial(_flat_kernel, b, shape, dtype, x_on_rows, kind == "reflection", wanted)
    compiled: Callable[[Array], dict[str, Array]] = b.jit(fun)
    return compiled


def qmap_cache_info() -> Any:
    """``functools.lru_cache`` statistics of the compiled q-map functions."""
    return _compiled.cache_info()


def qmap_cache_clear() -> None:
    """Forget every compiled q-map function (the next call compiles again)."""
    _compiled.cache_clear()


# ------------------------------------------------------------------------ parameters
def _wavenumber(wavelength_m: float) -> float:
    return 2.0 * math.pi / (wavelength_m * 1e10)


def _parameters(geometry: Geometry, shape: tuple[int, int]) -> tuple[str, bool, list[float]]:
    """(kind, x_on_rows, parameter vector) for the kernels."""
    if not isinstance(geometry, (TransmissionGeometry, TiltedGeometry, ReflectionGeometry)):
        raise TypeError(
            f"geometry must be a TransmissionGeometry, TiltedGeometry or ReflectionGeometry, "
            f"got {type(geometry).__name__}"
        )
    if isinstance(geometry, TiltedGeometry):
        p1, p2 = geometry.pixel1_m, geometry.pixel2_m
        c1 = geometry.poni1_m / p1 - 0.5
        c2 = geometry.poni2_m / p2 - 0.5
        s1, s2 = p1, p2
        if geometry.detector_orientation in (1, 2):  # rows counted from the other edge
            s1, c1 = -p1, shape[0] - 1.0 - c1
        if geometry.detector_orientation in (1, 4):  # columns counted from the other edge
            s2, c2 = -p2, shape[1] - 1.0 - c2
        rotation = [value for row in geometry.rotation_matrix() for value in row]
        k0 = _wavenumber(geometry.wavelength_m)
        return "tilted", False, [k0, geometry.distance_m, s1, c1, s2, c2, *rotation]
    p_row, p_col = geometry.pixel_size_m
    bcx, bcy = geometry.beam_center_x_px, geometry.beam_center_y_px
    k0 = _wavenumber(geometry.wavelength_m)
    if isinstance(geometry, TransmissionGeometry):
        return "transmission", False, [k0, geometry.distance_m, -p_row, bcy, p_col, bcx, 0.0, 1.0]
    alpha = math.radians(geometry.incidence_angle_deg)
    # (dx', dy') from dx = p_col (j - bcx) on columns, dy = -p_row (i - bcy) on rows
    row_scale, col_scale, x_on_rows = {
        "north": (-p_row, p_col, False),  # x' = dx, y' = dy
        "south": (p_row, -p_col, False),  # x' = -dx, y' = -dy
        "west": (-p_row, -p_col, True),  # x' = dy, y' = -dx
        "east": (p_row, p_col, True),  # x' = -dy, y' = dx
    }[geometry.orientation]
    params = [k0, geometry.distance_m, row_scale, bcy, col_scale, bcx, math.sin(alpha), math.cos(alpha)]
    return "reflection", x_on_rows, params


def _check_shape(shape: Any) -> tuple[int, int]:
    try:
        dims = tuple(shape)
    except TypeError:
        dims = ()
    if len(dims) != 2 or not all(isinstance(n, (int, np.integer)) and not isinstance(n, bool) for n in dims):
        raise ValueError(f"shape must be the detector's (rows, columns) as two integers, got {shape!r}")
    rows, cols = int(dims[0]), int(dims[1])
    if rows <= 0 or cols <= 0:
        raise ValueError(f"shape must have at least one row and one column, got {shape!r}")
    return rows, cols


def _check_quantities(kind: str, quantities: Iterable[str] | None) -> frozenset[str]:
    available = REFLECTION_QUANTITIES if kind == "reflection" else COMMON_QUANTITIES
    if quantities is None:
        return frozenset(available)
    if isinstance(quantities, str):
        quantities = (quantities,)
    wanted = frozenset(quantities)
    unknown = sorted(wanted.difference(available))
    if unknown or not wanted:
        raise ValueError(
            f"quantities must be a non-empty selection of {', '.join(available)} for a {kind} geometry; "
            f"got {sorted(wanted) if wanted else 'nothing'}"
            + (f" ({', '.join(unknown)} unknown)" if unknown else "")
        )
    return wanted


def compute_qmap(
    geometry: Geometry,
    shape: tuple[int, int],
    *,
    dtype: Literal["float64", "float32"] = "float64",
    quantities: Iterable[str] | None = None,
) -> QMap:
    """Per-pixel q and angles of ``geometry`` on a detector of ``shape = (rows, columns)``,
    on the active backend (see the module docstring for the quantities and conventions).

    ``quantities`` (names of :class:`QMap` fields) computes only those, the others being
    None; the default is every quantity of the geometry's kind. Each full-size output
    costs time and memory (a float64 2048 x 2048 map is 32 MiB), so ask only for what is used.
    """
    dims = _check_shape(shape)
    try:
        name = np.dtype(dtype).name
    except TypeError:
        name = repr(dtype)
    if name not in _DTYPES:
        raise ValueError(f"dtype must be 'float64' or 'float32', got {dtype!r}")
    kind, x_on_rows, params = _parameters(geometry, dims)
    wanted = _check_quantities(kind, quantities)
    b = get_backend()
    fun = _compiled(b, kind, dims, name, x_on_rows, wanted)  # type: ignore[arg-type]  # hashed by identity
    arrays = fun(place_on_device(np.asarray(params, dtype=np.float64)))
    return QMap(**arrays)
