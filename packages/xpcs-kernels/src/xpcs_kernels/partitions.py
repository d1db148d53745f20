"""Qxφ partitions of a detector, with the APS 8-ID-I semantics (issue 4).

A partition gives every pixel a 1-based label (0 = excluded) from its q and φ values.
The work is split in two:

- a **jittable core** of pure functions with static sizes: :func:`fold_phi`,
  :func:`label_values`, :func:`partition_labels` (combined labels in the full
  ``n_q x n_phi`` grid) and :func:`relabel_occupied` (labels compressed to the occupied
  ones, with the counts of the full grid); ranges and bin counts are static, so use
  ``b.jit(partition_labels, static_argnums=3)``;
- a small **eager** step, :func:`make_partition` / :func:`make_partitions`, which
  validates the input, chooses the default ranges from the data, calls the core and
  extracts what has a data-dependent size (``index_mapping``, ``num_pts``: which labels
  are occupied cannot be known inside ``jit``). :func:`check_nested` is eager too.

Binning rules (the same on every backend, eager or under ``jit``):

- Edges: ``e_k = vmin + (vmax - vmin) * (k / n)`` (linear) or
  ``exp(ln vmin + (ln vmax - ln vmin) * (k / n))`` (log), computed in Python float64,
  with ``e_0 = vmin`` and ``e_n = vmax`` exactly. Since ``k / n == (m k) / (m n)`` in
  floating point, the edges of ``n`` bins are exactly every ``m``-th edge of ``m n``
  bins over the same range (static bins nest in dynamic bins without rounding
  exceptions).
- Labels: bin ``i`` (1-based) holds ``e_{i-1} <= v < e_i``; the last bin also holds
  ``v == vmax``; values outside ``[vmin, vmax]``, NaN, ±inf and invalid pixels get 0.
  This is exactly ``numpy.digitize(v, edges)`` with ``vmax`` closed, but computed by
  arithmetic, not search: ``t = (v - vmin) · n / (vmax - vmin)`` (log: on ``ln v``)
  gives the nearest edge ``j``, and one comparison with ``e_j`` settles the bin, so
  labels never depend on rounding of the arithmetic, nor on the backend.
- φ (degrees), as pySimpleMask (the APS mask and partition tool) bins it: the offset is
  **added**, ``φ + phi_offset`` (a pixel at φ = -phi_offset gets 0; the map turns by
  +phi_offset), wrapped into ``(-180, 180]``:
  ``φ' = 180 - mod(180 - (φ + phi_offset), 360)``. With symmetry fold ``f > 1`` (bins
  cover ``w = 360/f`` degrees) it is then ``φ' = mod(φ + phi_offset + 180, w)``, in
  ``[0, w)``, pySimpleMask's ``mod(φ' + 180, 360/f)``: with ``f = 2`` the directions φ
  and φ + 180 (opposite sectors) share a bin, and direction 0 (after the offset) lands
  at 0 for even ``f``, at ``w/2`` for odd ``f``.
- Combined label in the grid: ``(i_q - 1) · n_phi + i_phi`` (1-based, 0 = excluded);
  then relabelled to the occupied labels in natural order, ``1 .. K``.
  ``index_mapping[l - 1]`` is the zero-based flat grid index ``(i_q - 1) · n_phi +
  (i_phi - 1)`` of label ``l``; empty grid bins are simply not occupied (they have no
  label).
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field
from typing import Literal

from xpcs_device import get_backend, place_on_device
from xpcs_protocol import Array, ArrayLike

__all__ = [
    "Partition",
    "PartitionSpec",
    "bin_centers",
    "bin_edges",
    "check_nested",
    "fold_phi",
    "label_values",
    "make_partition",
    "make_partitions",
    "partition_labels",
    "relabel_occupied",
]

Spacing = Literal["linear", "log"]
NanPolicy = Literal["raise", "exclude"]

_INT32_MAX = 2**31 - 1
# Narrowest bin allowed, relative to the magnitude of the range (linear) or in ln v (log),
# so that the arithmetic guess of a bin is never more than half a bin off.
_MIN_REL_WIDTH = 1e-9


# ------------------------------------------------------------------------ validation
def _check_count(name: str, n: object) -> int:
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"{name} must be a positive int (a static number of bins), got {n!r}")
    return n


def _check_spacing(spacing: object) -> Spacing:
    if spacing == "linear":
        return "linear"
    if spacing == "log":
        return "log"
    raise ValueError(f"spacing must be 'linear' or 'log', got {spacing!r}")


def _check_real(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        # numpy / 0-d scalars are accepted through float(); arrays and tracers are not
        try:
            out = float(value)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            raise TypeError(
                f"{name} must be a real number (a static Python float), got {type(value).__name__}"
            ) from None
        if getattr(value, "ndim", 0) != 0:
            raise TypeError(f"{name} must be a scalar, got an array of shape {value.shape}")  # type: ignore[attr-defined]
    else:
        out = float(value)
    if not math.isfinite(out):
        raise ValueError(f"{name} must be finite, got {out!r}")
    return out


def _check_range(name: str, vmin: object, vmax: object, n: int, spacing: Spacing) -> tuple[float, float]:
    lo = _check_real(f"{name} minimum", vmin)
    hi = _check_real(f"{name} maximum", vmax)
    if not lo < hi:
        raise ValueError(f"{name} must satisfy minimum < maximum, got ({lo!r}, {hi!r})")
    if spacing == "log":
        if lo <= 0:
            raise ValueError(
                f"log spacing needs a positive {name}, got ({lo!r}, {hi!r}); "
                "use spacing='linear' or a range above 0"
            )
        width = (math.log(hi) - math.log(lo)) / n
        if width < _MIN_REL_WIDTH:
            raise ValueError(
                f"{n} log bins over {name} ({lo!r}, {hi!r}) are narrower than {_MIN_REL_WIDTH} in ln(v); "
                "use fewer bins, a wider range or spacing='linear'"
            )
    elif (hi - lo) / n < _MIN_REL_WIDTH * max(abs(lo), abs(hi)):
        raise ValueError(
            f"{n} bins over {name} ({lo!r}, {hi!r}) are too narrow for float64 values of that "
            f"magnitude (width below {_MIN_REL_WIDTH} of max(|min|, |max|)); use fewer bins or a wider range"
        )
    return lo, hi


# ------------------------------------------------------------------- edges, centres
def _edge_values(vmin: float, vmax: float, n: int, spacing: Spacing) -> list[float]:
    """The ``n + 1`` edges as Python floats (the definition every label follows)."""
    if spacing == "log":
        l0, l1 = math.log(vmin), math.log(vmax)
        inner = [math.exp(l0 + (l1 - l0) * (k / n)) for k in range(1, n)]
    else:
        inner = [vmin + (vmax - vmin) * (k / n) for k in range(1, n)]
    return [vmin, *inner, vmax]


def _center_values(edges: list[float], spacing: Spacing) -> list[float]:
    pairs = itertools.pairwise(edges)
    if spacing == "log":
        return [math.sqrt(a * b) for a, b in pairs]
    return [0.5 * (a + b) for a, b in pairs]


def bin_edges(vmin: float, vmax: float, n: int, spacing: Spacing = "linear") -> Array:
    """The ``n + 1`` edges of ``n`` bins over ``[vmin, vmax]`` (float64, active backend).

    Linear: ``vmin + (vmax - vmin) * (k / n)``; log: the same on ``ln v`` (``vmin > 0``).
    The first and last edges are ``vmin`` and ``vmax`` exactly.
    """
    n = _check_count("n", n)
    spacing = _check_spacing(spacing)
    lo, hi = _check_range("range", vmin, vmax, n, spacing)
    return get_backend().asarray(_edge_values(lo, hi, n, spacing), dtype="float64")


def bin_centers(vmin: float, vmax: float, n: int, spacing: Spacing = "linear") -> Array:
    """Centres of the bins of :func:`bin_edges`: arithmetic means of the edges (linear) or
    geometric means (log)."""
    n = _check_count("n", n)
    spacing = _check_spacing(spacing)
    lo, hi = _check_range("range", vmin, vmax, n, spacing)
    centres = _center_values(_edge_values(lo, hi, n, spacing), spacing)
    return get_backend().asarray(centres, dtype="float64")


# --------------------------------------------------------------------- jittable core
def fold_phi(phi: ArrayLike, phi_offset: float = 0.0, symmetry_fold: int = 1) -> Array:
    """Azimuth in degrees plus ``phi_offset``, wrapped as pySimpleMask does (jittable,
    elementwise): into ``(-180, 180]`` for ``symmetry_fold`` 1, into ``[0, 360/f)`` for
    fold ``f > 1``.

    ``f = 1``: ``φ' = 180 - mod(180 - (φ + phi_offset), 360)``; ``f > 1``:
    ``φ' = mod(φ + phi_offset + 180, 360/f)``, with ``numpy.mod`` semantics bit for bit.
    Non-finite values, and values beyond ``±2**50`` degrees (where a double holds no
    fraction of a turn), give NaN; ``|phi_offset|`` must stay below ``2**50`` too.
    """
    b = get_backend()
    offset = _check_real("phi_offset", phi_offset)
    if abs(offset) >= _LARGEST_ANGLE:
        raise ValueError(f"phi_offset must be an angle in degrees below 2**50 in magnitude, got {offset!r}")
    fold = _check_count("symmetry_fold", symmetry_fold)
    x = b.astype(b.asarray(phi), "float64")
    usable = b.abs(x) < _LARGEST_ANGLE  # False for NaN and inf
    safe = b.where(usable, x, 0.0)
    if fold == 1:
        folded = 180.0 - _mod(180.0 - (safe + offset), 360.0)
    else:
        folded = _mod((safe + offset) + 180.0, 360.0 / fold)
    return b.where(usable, folded, math.nan)


# Azimuths beyond this many degrees are not angles: |φ + offset ± 180| then stays below
# 2**52, where floor(|y| / m) * m is exact for an integer m (see _mod).
_LARGEST_ANGLE = 2.0**50


def _mod(y: Array, m: float) -> Array:
    """``numpy.mod(y, m)`` for a static ``m > 0`` and ``|y| < 2**52``, bit for bit
    (jittable, elementwise).

    A compiled backend's ``mod`` is one scalar ``fmod`` call per value. For an integer
    ``m`` (360, and 360/f for every fold f that divides 360) the same bits come from
    vectorisable arithmetic: ``t = |y| - floor(|y|/m) m`` is exact (the multiple of ``m``
    is an exact double below 2**53 and the difference a multiple of ``ulp(|y|)`` below
    ``2 m``); correcting the floor's possible off-by-one is exact too, which gives
    ``fmod(|y|, m)``. A negative ``y`` then takes ``m - t``, the one rounding that
    ``numpy.mod`` applies to ``fmod(y, m) + m``. Other ``m`` keep the backend's ``mod``.
    (Subnormal inputs count as zero where the backend flushes them, as XLA on CPU does.)
    """
    b = get_backend()
    if not float(m).is_integer():
        return b.mod(y, m)
    a = b.abs(y)
    t = a - b.floor(a / m) * m
    t = b.where(t < 0.0, t + m, t)
    t = b.where(t >= m, t - m, t)
    return b.where(b.logical_and(y < 0.0, t != 0.0), m - t, t)


def label_values(
    values: ArrayLike,
    valid: ArrayLike | None,
    vmin: float,
    vmax: float,
    n: int,
    spacing: Spacing = "linear",
) -> Array:
    """1-based bin labels (int32) of ``values`` in ``n`` bins over ``[vmin, vmax]``.

    0 where ``valid`` is false (None: every element is valid), outside the range, NaN or
    ±inf. Bin ``i`` holds ``e_{i-1} <= v < e_i`` and the last bin also ``v == vmax``
    (edges of :func:`bin_edges`), computed by arithmetic (nearest edge from
    ``(v - vmin) · n / (vmax - vmin)``, then one comparison with that edge), not search.
    Jittable: ``vmin``, ``vmax``, ``n`` and ``spacing`` are static.
    """
    b = get_backend()
    n = _check_count("n", n)
    spacing = _check_spacing(spacing)
    lo, hi = _check_range("range", vmin, vmax, n, spacing)
    if n > _INT32_MAX - 1:
        raise ValueError(f"n must be below 2**31 - 1 (labels are int32), got {n}")
    edges = b.asarray(_edge_values(lo, hi, n, spacing), dtype="float64")
    v = b.astype(b.asarray(values), "float64")
    inside = b.logical_and(v >= lo, v <= hi)  # False for NaN
    if valid is not None:
        ok = b.asarray(valid)
        if tuple(ok.shape) != tuple(v.shape):
            raise ValueError(f"valid has shape {tuple(ok.shape)} but values have shape {tuple(v.shape)}")
        inside = b.logical_and(inside, ok != 0)
    safe = b.where(inside, v, lo)  # keeps logs, casts and comparisons clean
    if spacing == "log":
        l0 = math.log(lo)
        t = (b.log(safe) - l0) * (n / (math.log(hi) - l0))
    else:
        t = (safe - lo) * (n / (hi - lo))
    # nearest edge j in [0, n] (ties either way): the true bin is j or j + 1, since the guess
    # is far better than half a bin; floor(t + 0.5) vectorises, a separate fraction test did not
    j = b.astype(b.clip(b.floor(t + 0.5), 0, n), "int32")
    e_j = b.take(edges, j)
    label = b.clip(j + b.astype(safe >= e_j, "int32"), 1, n)  # 1-based; clip closes vmax into bin n
    return b.where(inside, label, 0)


@dataclass(frozen=True)
class PartitionSpec:
    """Static description of a qxφ partition (hashable: the static argument of the core).

    ``q_range`` and ``phi_range`` are explicit here (``make_partition`` resolves the data
    defaults); ``phi_range`` is on the folded azimuth (see :func:`fold_phi`). ``spacing``
    applies to q; φ bins are always linear.
    """

    n_q: int
    n_phi: int
    q_range: tuple[float, float]
    phi_range: tuple[float, float]
    spacing: Spacing = "linear"
    phi_offset: float = 0.0
    symmetry_fold: int = 1

    def __post_init__(self) -> None:
        _check_count("n_q", self.n_q)
        _check_count("n_phi", self.n_phi)
        if self.n_q * self.n_phi > _INT32_MAX - 1:
            raise ValueError(
                f"n_q * n_phi = {self.n_q * self.n_phi} labels do not fit int32 label maps; use fewer bins"
            )
        spacing = _check_spacing(self.spacing)
        _check_range("q_range", *_pair("q_range", self.q_range), self.n_q, spacing)
        _check_range("phi_range", *_pair("phi_range", self.phi_range), self.n_phi, "linear")
        _check_real("phi_offset", self.phi_offset)
        _check_count("symmetry_fold", self.symmetry_fold)

    @property
    def n_labels(self) -> int:
        """Size of the full grid, ``n_q * n_phi``."""
        return self.n_q * self.n_phi

    def q_edges(self) -> list[float]:
        return _edge_values(*self.q_range, self.n_q, self.spacing)

    def phi_edges(self) -> list[float]:
        return _edge_values(*self.phi_range, self.n_phi, "linear")


def _pair(name: str, value: object) -> tuple[float, float]:
    items: tuple[object, ...] = ()
    if isinstance(value, tuple | list):
        items = tuple(value)
    if len(items) != 2:
        raise TypeError(f"{name} must be a pair (minimum, maximum), got {value!r}")
    return _check_real(f"{name} minimum", items[0]), _check_real(f"{name} maximum", items[1])


def partition_labels(
    q_map: ArrayLike, phi_map: ArrayLike | None, valid: ArrayLike, spec: PartitionSpec
) -> Array:
    """Combined labels in the full grid (int32, same shape as the maps; jittable with
    ``spec`` static): ``(i_q - 1) · n_phi + i_phi``, 0 where invalid or outside either range.

    ``phi_map`` may be None when ``spec.n_phi == 1`` (every pixel then has ``i_phi = 1``).
    """
    b = get_backend()
    q_lo, q_hi = spec.q_range
    label_q = label_values(q_map, valid, q_lo, q_hi, spec.n_q, spec.spacing)
    if phi_map is None:
        if spec.n_phi != 1:
            raise ValueError(f"phi_map is None but n_phi = {spec.n_phi}; pass the azimuth map or n_phi=1")
        return label_q
    phi = fold_phi(phi_map, spec.phi_offset, spec.symmetry_fold)
    label_phi = label_values(phi, valid, *spec.phi_range, spec.n_phi, "linear")
    both = b.logical_and(label_q > 0, label_phi > 0)
    return b.where(both, (label_q - 1) * spec.n_phi + label_phi, 0)


def relabel_occupied(labels: ArrayLike, n_labels: int) -> tuple[Array, Array]:
    """Labels ``0 .. n_labels`` compressed to the occupied ones in natural order (jittable,
    ``n_labels`` static).

    Returns ``(roi_map, counts)``: ``roi_map`` (int32) has 1..K for the K occupied labels
    and 0 where ``labels`` is 0; ``counts`` (length ``n_labels + 1``, int) is the number of
    pixels of every grid label (``counts[0]``: excluded pixels). Values outside
    ``[0, n_labels]`` are not allowed.
    """
    b = get_backend()
    n_labels = _check_count("n_labels", n_labels)
    lab = b.asarray(labels)
    counts = b.bincount(lab, length=n_labels + 1)
    occupied = b.astype(counts > 0, "int32")
    occupied = b.concatenate([b.zeros(1, dtype="int32"), occupied[1:]])
    table = b.astype(b.cumsum(occupied) * occupied, "int32")
    return b.take(table, b.astype(lab, "int32")), counts


# ------------------------------------------------------------------------ eager step
@dataclass(frozen=True, eq=False)
class Partition:
    """A qxφ partition of a detector, ready for the APS result file (arrays of the active
    backend).

    - ``roi_map``: labels (int32, the maps' shape), 0 = excluded, 1..K = occupied bins in
      natural order of the qxφ grid;
    - ``index_mapping``: zero-based flat grid index ``(i_q - 1) · n_phi + (i_phi - 1)`` of
      each label 1..K (int64, length K);
    - ``num_pts``: pixels per label 1..K (int64, length K);
    - ``v_list_dim0`` / ``v_list_dim1``: centres of all ``n_q`` q bins / ``n_phi`` φ bins;
    - ``q_edges`` / ``phi_edges``: the ``n + 1`` edges; ``spec``: the static description.
    """

    roi_map: Array
    index_mapping: Array
    num_pts: Array
    v_list_dim0: Array
    v_list_dim1: Array
    q_edges: Array
    phi_edges: Array
    spec: PartitionSpec = field(repr=True)

    @property
    def num_labels(self) -> int:
        """K, the number of occupied bins (labels 1..K)."""
        return int(self.index_mapping.shape[0])

    @property
    def n_q(self) -> int:
        return self.spec.n_q

    @property
    def n_phi(self) -> int:
        return self.spec.n_phi

    def grid_index(self) -> tuple[Array, Array]:
        """Zero-based ``(i_q, i_phi)`` of each label 1..K."""
        return self.index_mapping // self.n_phi, self.index_mapping % self.n_phi

    def aps_fields(self, kind: Literal["static", "dynamic"]) -> dict[str, Array]:
        """The ``/xpcs/qmap`` datasets of this partition, named for ``kind``:
        ``{kind}_roi_map``, ``{kind}_v_list_dim0``, ``{kind}_v_list_dim1``,
        ``{kind}_index_mapping``, ``{kind}_num_pts``. ``{kind}_num_pts`` is the grid shape
        ``[n_q, n_phi]`` (int64), which the APS viewer reshapes with, not ``num_pts``."""
        if kind not in ("static", "dynamic"):
            raise ValueError(f"kind must be 'static' or 'dynamic', got {kind!r}")
        return {
            f"{kind}_roi_map": self.roi_map,
            f"{kind}_v_list_dim0": self.v_list_dim0,
            f"{kind}_v_list_dim1": self.v_list_dim1,
            f"{kind}_index_mapping": self.index_mapping,
            f"{kind}_num_pts": get_backend().asarray([self.n_q, self.n_phi], dtype="int64"),
        }


@dataclass(frozen=True)
class _Prepared:
    q: Array
    phi: Array | None
    valid: Array


def _prepare(q_map: ArrayLike, phi_map: ArrayLike | None, mask: ArrayLike | None, nan: object) -> _Prepared:
    b = get_backend()
    if nan not in ("raise", "exclude"):
        raise ValueError(f"nan must be 'raise' or 'exclude', got {nan!r}")
    q = b.asarray(place_on_device(q_map))
    if q.ndim != 2:
        raise ValueError(f"q_map must be a 2-D (H, W) map, got shape {tuple(q.shape)}")
    if q.dtype.kind not in "fiu":
        raise TypeError(f"q_map must hold real numbers, got dtype {q.dtype}")
    q = b.astype(q, "float64")
    phi: Array | None = None
    if phi_map is not None:
        phi = b.asarray(place_on_device(phi_map))
        if tuple(phi.shape) != tuple(q.shape):
            raise ValueError(
                f"phi_map has shape {tuple(phi.shape)} but q_map has shape {tuple(q.shape)}; "
                "they must describe the same pixels"
            )
        if phi.dtype.kind not in "fiu":
            raise TypeError(f"phi_map must hold real numbers (degrees), got dtype {phi.dtype}")
        phi = b.astype(phi, "float64")
    if mask is None:
        valid = b.ones(q.shape, dtype="bool")
    else:
        m = b.asarray(place_on_device(mask))
        if tuple(m.shape) != tuple(q.shape):
            raise ValueError(
                f"mask has shape {tuple(m.shape)} but q_map has shape {tuple(q.shape)}; "
                "the mask must have one entry per pixel (nonzero = valid)"
            )
        valid = m != 0
    n_valid = int(b.count_nonzero(valid))
    if n_valid == 0:
        raise ValueError(
            f"the mask excludes every pixel (0 of {q.shape[0]}x{q.shape[1]} valid): nothing to partition"
        )
    valid = _apply_nan_policy(q, phi, valid, n_valid, nan)
    return _Prepared(q, phi, valid)


def _apply_nan_policy(q: Array, phi: Array | None, valid: Array, n_valid: int, nan: object) -> Array:
    """``valid`` without the non-finite pixels, or a ValueError counting them (``nan="raise"``)."""
    b = get_backend()
    q_bad = b.logical_and(valid, b.logical_not(b.isfinite(q)))
    # an azimuth beyond 2**50 degrees is no angle (fold_phi gives NaN): counted with the NaNs
    phi_bad = None if phi is None else b.logical_and(valid, b.logical_not(b.abs(phi) < _LARGEST_ANGLE))
    bad = q_bad if phi_bad is None else b.logical_or(q_bad, phi_bad)
    n_bad = int(b.count_nonzero(bad))
    if n_bad == 0:
        return valid
    if nan == "raise":
        n_q_bad = int(b.count_nonzero(q_bad))
        n_phi_bad = 0 if phi_bad is None else int(b.count_nonzero(phi_bad))
        raise ValueError(
            f"{n_bad} valid pixels have a non-finite (NaN or inf) q or phi (or |phi| >= 2**50 degrees) "
            f"({n_q_bad} in q_map, {n_phi_bad} in phi_map); mask them, or pass nan='exclude' to "
            "leave them out of every bin"
        )
    if n_bad == n_valid:
        raise ValueError(f"all {n_valid} valid pixels have a non-finite q or phi: nothing to partition")
    return b.logical_and(valid, b.logical_not(bad))


def _masked_min_max(values: Array, valid: Array) -> tuple[float, float]:
    b = get_backend()
    lo = float(b.min(b.where(valid, values, math.inf)))
    hi = float(b.max(b.where(valid, values, -math.inf)))
    return lo, hi


def _resolve_ranges(
    prep: _Prepared,
    *,
    n_phi: int,
    q_range: tuple[float, float] | None,
    phi_range: tuple[float, float] | None,
    spacing: Spacing,
    phi_offset: float,
    symmetry_fold: int,
) -> tuple[tuple[float, float], tuple[float, float]]:
    if q_range is None:
        lo, hi = _masked_min_max(prep.q, prep.valid)
        if spacing == "log" and lo <= 0:
            raise ValueError(
                f"log spacing needs positive q, but the smallest valid q is {lo!r}; mask those pixels "
                "(the beam centre) or pass q_range=(q_min > 0, q_max)"
            )
        if not lo < hi:
            raise ValueError(f"every valid pixel has q = {lo!r}: no default q_range; pass q_range")
        q_rng = (lo, hi)
    else:
        q_rng = _pair("q_range", q_range)
    if phi_range is not None:
        phi_rng = _pair("phi_range", phi_range)
    elif prep.phi is None or n_phi == 1:
        fold = _check_count("symmetry_fold", symmetry_fold)
        phi_rng = (-180.0, 180.0) if fold == 1 else (0.0, 360.0 / fold)
    else:
        folded = fold_phi(prep.phi, phi_offset, symmetry_fold)
        lo, hi = _masked_min_max(folded, prep.valid)
        if not lo < hi:
            raise ValueError(
                f"every valid pixel has folded phi = {lo!r}: no default phi_range; pass phi_range"
            )
        phi_rng = (lo, hi)
    return q_rng, phi_rng


def _build(prep: _Prepared, spec: PartitionSpec) -> Partition:
    b = get_backend()
    if prep.phi is None and spec.n_phi != 1:
        raise ValueError(f"phi_map is None but n_phi = {spec.n_phi}; pass the azimuth map or n_phi=1")
    core = b.jit(partition_labels, static_argnums=3)
    relabel = b.jit(relabel_occupied, static_argnums=1)
    labels = core(prep.q, prep.phi, prep.valid, spec)
    roi_map, counts = relabel(labels, spec.n_labels)
    # eager: which grid labels are occupied has a data-dependent size
    grid_counts = counts[1:]
    index_mapping = b.astype(b.nonzero(grid_counts > 0)[0], "int64")
    if int(index_mapping.shape[0]) == 0:
        _explain_empty(prep, spec)
    num_pts = b.astype(b.take(grid_counts, index_mapping), "int64")
    q_edges = spec.q_edges()
    phi_edges = spec.phi_edges()
    return Partition(
        roi_map=roi_map,
        index_mapping=index_mapping,
        num_pts=num_pts,
        v_list_dim0=b.asarray(_center_values(q_edges, spec.spacing), dtype="float64"),
        v_list_dim1=b.asarray(_center_values(phi_edges, "linear"), dtype="float64"),
        q_edges=b.asarray(q_edges, dtype="float64"),
        phi_edges=b.asarray(phi_edges, dtype="float64"),
        spec=spec,
    )


def _explain_empty(prep: _Prepared, spec: PartitionSpec) -> None:
    b = get_backend()
    n_valid = int(b.count_nonzero(prep.valid))
    in_q = int(b.count_nonzero(label_values(prep.q, prep.valid, *spec.q_range, spec.n_q, spec.spacing)))
    qlo, qhi = _masked_min_max(prep.q, prep.valid)
    msg = (
        f"no valid pixel lies in q_range {spec.q_range} x phi_range {spec.phi_range}: "
        f"{in_q} of {n_valid} valid pixels are inside q_range (valid q spans [{qlo!r}, {qhi!r}])"
    )
    if prep.phi is not None:
        folded = fold_phi(prep.phi, spec.phi_offset, spec.symmetry_fold)
        plo, phi_hi = _masked_min_max(folded, prep.valid)
        in_phi = int(b.count_nonzero(label_values(folded, prep.valid, *spec.phi_range, spec.n_phi)))
        msg += f", {in_phi} inside phi_range (valid folded phi spans [{plo!r}, {phi_hi!r}])"
    raise ValueError(msg + "; widen the ranges or leave them None for the data's min/max")


def make_partition(
    q_map: ArrayLike,
    phi_map: ArrayLike | None,
    mask: ArrayLike | None,
    *,
    n_q: int,
    n_phi: int = 1,
    q_range: tuple[float, float] | None = None,
    phi_range: tuple[float, float] | None = None,
    spacing: Spacing = "linear",
    phi_offset: float = 0.0,
    symmetry_fold: int = 1,
    nan: NanPolicy = "raise",
) -> Partition:
    """A qxφ partition of the pixels where ``mask`` is nonzero (eager; the labelling itself
    runs in the jitted core).

    ``q_map`` (any q convention; the APS files use ``k0·r/R``) and ``phi_map`` (degrees,
    may be None when ``n_phi == 1``) are 2-D maps of the same shape; ``mask`` has that
    shape too (None: every pixel valid).

    - ``q_range`` default: min and max of q over the valid pixels (log spacing needs them
      positive); ``phi_range`` default: min and max of the folded φ over the valid pixels
      when ``n_phi > 1``, the whole folded circle when ``n_phi == 1`` (``[-180, 180]``,
      or ``[0, 360/f]`` for a fold ``f > 1``).
      Pixels outside an explicit range get label 0.
    - ``nan``: non-finite q or φ (NaN, ±inf) in a valid pixel raise a ``ValueError`` with
      their count (``"raise"``, default) or are left out of every bin (``"exclude"``).
    - Errors (never a silent empty result): shapes differ, the mask excludes every pixel,
      or no valid pixel falls in ``q_range x phi_range``. Empty bins are not errors: they
      just get no label.
    """
    prep = _prepare(q_map, phi_map, mask, nan)
    spacing = _check_spacing(spacing)
    n_q = _check_count("n_q", n_q)
    n_phi = _check_count("n_phi", n_phi)
    if phi_map is None and n_phi != 1:
        raise ValueError(f"phi_map is None but n_phi = {n_phi}; pass the azimuth map or n_phi=1")
    offset = _check_real("phi_offset", phi_offset)
    fold = _check_count("symmetry_fold", symmetry_fold)
    q_rng, phi_rng = _resolve_ranges(
        prep,
        n_phi=n_phi,
        q_range=q_range,
        phi_range=phi_range,
        spacing=spacing,
        phi_offset=offset,
        symmetry_fold=fold,
    )
    spec = PartitionSpec(n_q, n_phi, q_rng, phi_rng, spacing, offset, fold)
    return _build(prep, spec)


def make_partitions(
    q_map: ArrayLike,
    phi_map: ArrayLike | None,
    mask: ArrayLike | None,
    *,
    dynamic: tuple[int, int],
    static: tuple[int, int],
    q_range: tuple[float, float] | None = None,
    phi_range: tuple[float, float] | None = None,
    spacing: Spacing = "linear",
    phi_offset: float = 0.0,
    symmetry_fold: int = 1,
    nan: NanPolicy = "raise",
) -> tuple[Partition, Partition]:
    """``(static, dynamic)`` partitions over the same ranges, checked so that every static
    bin lies inside exactly one dynamic bin (:func:`check_nested`).

    ``dynamic`` and ``static`` are ``(n_q, n_phi)``. Default ranges are resolved once from
    the data (as in :func:`make_partition`, with the larger ``n_phi`` deciding the φ rule)
    and shared. Static counts that are integer multiples of the dynamic counts always
    nest; other counts raise a ``ValueError`` naming them when a static bin straddles.
    """
    pairs = {}
    for name, value in (("dynamic", dynamic), ("static", static)):
        try:
            nq, nphi = value
        except (TypeError, ValueError):
            raise TypeError(f"{name} must be a pair (n_q, n_phi), got {value!r}") from None
        pairs[name] = (_check_count(f"{name} n_q", nq), _check_count(f"{name} n_phi", nphi))
    prep = _prepare(q_map, phi_map, mask, nan)
    spacing = _check_spacing(spacing)
    offset = _check_real("phi_offset", phi_offset)
    fold = _check_count("symmetry_fold", symmetry_fold)
    if phi_map is None and max(pairs["dynamic"][1], pairs["static"][1]) != 1:
        raise ValueError("phi_map is None but n_phi > 1; pass the azimuth map or n_phi=1")
    q_rng, phi_rng = _resolve_ranges(
        prep,
        n_phi=max(pairs["dynamic"][1], pairs["static"][1]),
        q_range=q_range,
        phi_range=phi_range,
        spacing=spacing,
        phi_offset=offset,
        symmetry_fold=fold,
    )
    parts = {
        name: _build(prep, PartitionSpec(nq, nphi, q_rng, phi_rng, spacing, offset, fold))
        for name, (nq, nphi) in pairs.items()
    }
    check_nested(
        parts["static"].roi_map,
        parts["dynamic"].roi_map,
        static_counts=pairs["static"],
        dynamic_counts=pairs["dynamic"],
    )
    return parts["static"], parts["dynamic"]


def check_nested(
    static_roi_map: ArrayLike,
    dynamic_roi_map: ArrayLike,
    *,
    static_counts: tuple[int, int] | None = None,
    dynamic_counts: tuple[int, int] | None = None,
) -> None:
    """Raise ``ValueError`` unless every static label lies inside exactly one dynamic label
    (eager, vectorised: no loop over labels).

    For each static label one of its pixels' dynamic labels is taken as representative
    (a scatter); the check fails where a pixel of that static label has another dynamic
    label, or dynamic label 0. ``*_counts`` only make the message name the ``(n_q, n_phi)``.
    """
    b = get_backend()
    s = b.ravel(b.astype(b.asarray(place_on_device(static_roi_map)), "int64"))
    d = b.ravel(b.astype(b.asarray(place_on_device(dynamic_roi_map)), "int64"))
    if tuple(s.shape) != tuple(d.shape):
        raise ValueError(
            f"static roi map has {s.shape[0]} pixels but the dynamic one {d.shape[0]}; they must match"
        )
    if s.shape[0] == 0:
        return
    n_static = int(b.max(s))
    if n_static <= 0:
        return
    rep = b.index_set(b.zeros(n_static + 1, dtype="int64"), s, d)  # any pixel's dynamic label
    bad = b.logical_and(s > 0, b.logical_or(d != b.take(rep, s), d == 0))
    if not bool(b.any(bad)):
        return
    bad_labels = b.to_numpy(b.unique(b.where(bad, s, 0)))
    bad_labels = [int(x) for x in bad_labels if x > 0]
    n_used = int(b.count_nonzero(b.bincount(s, length=n_static + 1)[1:]))
    counts = ""
    if static_counts is not None and dynamic_counts is not None:
        counts = f" (static n_q, n_phi = {static_counts}; dynamic n_q, n_phi = {dynamic_counts})"
    raise ValueError(
        f"{len(bad_labels)} of {n_used} static bins do not lie inside exactly one dynamic bin{counts}, "
        f"e.g. static labels {bad_labels[:5]}; make each static count an integer multiple of the "
        "dynamic one over the same q and phi ranges"
    )
