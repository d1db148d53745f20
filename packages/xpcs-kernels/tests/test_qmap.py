"""Q-maps against pyFAI and closed forms, on every backend."""

import importlib.util
import math

import numpy as np
import pytest

from xpcs_device import use_backend
from xpcs_kernels.geometry import ReflectionGeometry, TiltedGeometry, TransmissionGeometry
from xpcs_kernels.qmap import (
    COMMON_QUANTITIES,
    REFLECTION_QUANTITIES,
    compute_qmap,
    qmap_cache_clear,
    qmap_cache_info,
)

HAS_JAX = importlib.util.find_spec("jax") is not None
QMAP_BACKENDS = [
    pytest.param("numpy", id="numpy"),
    pytest.param("jax", id="jax", marks=[pytest.mark.jax, pytest.mark.skipif(not HAS_JAX, reason="no JAX")]),
]
SHAPE = (61, 83)
TILTS = [(0.0, 0.0, 0.0), (0.05, -0.03, 0.2), (-0.4, 0.3, -1.2), (0.0, 0.0, math.pi / 2)]


@pytest.fixture(params=QMAP_BACKENDS)
def qmap_backend(request):
    """Each available backend in turn, active for the test's thread."""
    with use_backend(request.param) as b:
        yield b


def as_numpy(qmap):
    return {name: np.asarray(value) for name, value in qmap.as_dict().items()}


def close(actual, expected, rtol, atol_scale=None):
    atol = rtol * np.max(np.abs(expected)) if atol_scale is None else atol_scale
    np.testing.assert_allclose(actual, expected, rtol=rtol, atol=atol)


# ----------------------------------------------------------------------- pyFAI oracle
def pyfai_oracle(geometry, shape):
    """pyFAI's 2θ, chi and q (Å⁻¹) at every pixel centre, in float64.

    ``ai.tth/chi/qFunction`` with float64 pixel indices; ``qArray()`` and friends keep pixel
    positions in float32 (1e-7 relative), compared separately below.
    """
    integrator = pytest.importorskip("pyFAI.integrator.azimuthal")
    detectors = pytest.importorskip("pyFAI.detectors")
    detector = detectors.Detector(
        pixel1=geometry.pixel1_m,
        pixel2=geometry.pixel2_m,
        max_shape=shape,
        orientation=geometry.detector_orientation,
    )
    ai = integrator.AzimuthalIntegrator(
        dist=geometry.distance_m,
        poni1=geometry.poni1_m,
        poni2=geometry.poni2_m,
        rot1=geometry.rot1_rad,
        rot2=geometry.rot2_rad,
        rot3=geometry.rot3_rad,
        detector=detector,
        wavelength=geometry.wavelength_m,
    )
    d1, d2 = np.indices(shape, dtype=np.float64)
    return ai, ai.tth(d1, d2), ai.chi(d1, d2), ai.qFunction(d1, d2) / 10.0


def aps_phi_from_chi(chi_rad):
    """φ_APS = -chi, with pyFAI's chi = π (negative x axis) at +180°."""
    phi = -np.degrees(chi_rad)
    return np.where(phi == -180.0, 180.0, phi)


@pytest.mark.parametrize("tilt", TILTS)
@pytest.mark.parametrize("orientation", [3, 1, 2, 4])
def test_tilted_matches_pyfai(qmap_backend, tilt, orientation):
    geometry = TiltedGeometry.from_pyfai(
        0.35, 0.0021, 0.0013, *tilt, 1.3e-10, 7.5e-5, 5.5e-5, orientation=orientation
    )
    _, tth, chi, q = pyfai_oracle(geometry, SHAPE)
    m = as_numpy(compute_qmap(geometry, SHAPE))
    close(m["q_inv_angstrom"], q, 1e-9)
    close(m["two_theta_deg"], np.degrees(tth), 1e-9)
    close(m["phi_deg"], aps_phi_from_chi(chi), 1e-9, atol_scale=1e-9)


def test_untilted_matches_pyfai_arrays_and_beam_centre(qmap_backend):
    """A transmission geometry equals pyFAI's with PONI = beam centre + half a pixel, and
    pyFAI's array API (float32 pixel positions) agrees to its own precision."""
    transmission = TransmissionGeometry(9.0, 2.5, (75e-6, 55e-6), 40.3, 17.0)
    tilted = TiltedGeometry.from_transmission(transmission)
    ai, tth, chi, q = pyfai_oracle(tilted, SHAPE)
    m = as_numpy(compute_qmap(transmission, SHAPE))
    close(m["q_inv_angstrom"], q, 1e-9)
    close(m["two_theta_deg"], np.degrees(tth), 1e-9)
    close(m["phi_deg"], aps_phi_from_chi(chi), 1e-9, atol_scale=1e-9)
    close(m["q_inv_angstrom"], ai.center_array(SHAPE, unit="q_nm^-1") / 10.0, 1e-6)
    # row 17 left of the beam lies on the negative x axis: +180°, never -180°
    assert np.all(m["phi_deg"][17, :40] == 180.0)
    assert np.all(m["phi_deg"] > -180.0)
    assert np.all(m["phi_deg"] <= 180.0)
    t = as_numpy(compute_qmap(tilted, SHAPE))
    for name in COMMON_QUANTITIES:
        close(t[name], m[name], 1e-12)


def test_transmission_closed_forms(qmap_backend):
    g = TransmissionGeometry(8.0, 1.5, (75e-6, 55e-6), 20.5, 30.25)
    m = as_numpy(compute_qmap(g, SHAPE))
    i, j = np.indices(SHAPE, dtype=np.float64)
    dx, dy, big_l = (j - 20.5) * 55e-6, -(i - 30.25) * 75e-6, 1.5
    r = np.hypot(dx, dy)
    big_r = np.sqrt(r * r + big_l * big_l)
    k0 = 2 * np.pi * 8.0 / 12.398419843320026
    two_theta = np.arctan2(r, big_l)
    close(m["q_inv_angstrom"], 2 * k0 * np.sin(two_theta / 2), 1e-12)
    close(m["q_aps_inv_angstrom"], k0 * r / big_r, 1e-12)
    close(m["qx_inv_angstrom"], k0 * dx / big_r, 1e-12)
    close(m["qy_inv_angstrom"], k0 * dy / big_r, 1e-12)
    close(m["qz_inv_angstrom"], k0 * (big_l / big_r - 1), 1e-9)
    close(m["phi_deg"], np.degrees(np.arctan2(dy, dx)), 1e-12, atol_scale=1e-12)
    close(m["two_theta_deg"], np.degrees(two_theta), 1e-12)
    # |q|² = qx² + qy² + qz²; APS q = |q| cos θ (relative gap 1 - cos θ)
    q2 = m["qx_inv_angstrom"] ** 2 + m["qy_inv_angstrom"] ** 2 + m["qz_inv_angstrom"] ** 2
    close(q2, m["q_inv_angstrom"] ** 2, 1e-12)
    close(m["q_aps_inv_angstrom"], m["q_inv_angstrom"] * np.cos(two_theta / 2), 1e-12)


def test_aps_q_relative_gap_at_3_and_30_degrees():
    k0 = 1.0
    for two_theta_deg, gap in ((3.0, 3.4e-4), (30.0, 3.4e-2)):
        big_l = 1.0
        r = math.tan(math.radians(two_theta_deg))
        g = TransmissionGeometry(12.398419843320026 / (2 * math.pi), big_l, r, 0.0, 0.0)
        m = as_numpy(compute_qmap(g, (1, 2), quantities=("q_inv_angstrom", "q_aps_inv_angstrom")))
        exact, aps = m["q_inv_angstrom"][0, 1], m["q_aps_inv_angstrom"][0, 1]
        assert math.isclose(exact, 2 * k0 * math.sin(math.radians(two_theta_deg) / 2), rel_tol=1e-12)
        assert math.isclose(1 - aps / exact, 1 - math.cos(math.radians(two_theta_deg) / 2), rel_tol=1e-9)
        assert math.isclose(1 - aps / exact, gap, rel_tol=0.05)


# -------------------------------------------------------------------------- reflection
def test_reflection_kinematics(qmap_backend):
    alpha_i = 0.2
    g = ReflectionGeometry(10.0, 4.0, 75e-6, 40.0, 50.0, alpha_i)
    m = as_numpy(compute_qmap(g, (120, 90)))
    assert set(m) == set(REFLECTION_QUANTITIES)
    # |q| identity: q_r² + qz² = |q|² = (2 k0 sin θ)²
    close(m["qr_inv_angstrom"] ** 2 + m["qz_inv_angstrom"] ** 2, m["q_inv_angstrom"] ** 2, 1e-12)
    # direct beam: alpha_f = -alpha_i, 2θ_f = 0, q = 0
    assert math.isclose(m["alpha_f_deg"][50, 40], -alpha_i, rel_tol=1e-12)
    assert abs(m["two_theta_f_deg"][50, 40]) < 1e-14
    assert abs(m["q_inv_angstrom"][50, 40]) < 1e-14
    # exact direction: u·n = sin alpha_f, with u = (dx, dy, L)/R
    i, j = np.indices((120, 90), dtype=np.float64)
    dx, dy, big_l = (j - 40) * 75e-6, -(i - 50) * 75e-6, 4.0
    big_r = np.sqrt(dx**2 + dy**2 + big_l**2)
    a = math.radians(alpha_i)
    close(np.sin(np.radians(m["alpha_f_deg"])), (dy * math.cos(a) - big_l * math.sin(a)) / big_r, 1e-12)
    close(np.radians(m["two_theta_f_deg"]), np.arctan2(dx, dy * math.sin(a) + big_l * math.cos(a)), 1e-12)
    k0 = 2 * np.pi * 10.0 / 12.398419843320026
    af, tf = np.radians(m["alpha_f_deg"]), np.radians(m["two_theta_f_deg"])
    close(m["qx_inv_angstrom"], k0 * (np.cos(af) * np.cos(tf) - math.cos(a)), 1e-9)
    close(m["qy_inv_angstrom"], k0 * np.cos(af) * np.sin(tf), 1e-12)
    close(m["qz_inv_angstrom"], k0 * (np.sin(af) + math.sin(a)), 1e-12)


def test_reflection_small_angle_limit_is_the_aps_approximation():
    alpha_i = 0.1
    g = ReflectionGeometry(10.0, 10.0, 20e-6, 50.0, 50.0, alpha_i)  # ±1 mm at 10 m: ±0.006°
    m = as_numpy(compute_qmap(g, (101, 101), quantities=("alpha_f_deg", "two_theta_f_deg")))
    i, j = np.indices((101, 101), dtype=np.float64)
    dx, dy = (j - 50) * 20e-6, -(i - 50) * 20e-6
    close(m["alpha_f_deg"], np.degrees(np.arctan(dy / 10.0)) - alpha_i, 1e-5)
    close(m["two_theta_f_deg"], np.degrees(np.arctan(dx / 10.0)), 1e-5)


@pytest.mark.parametrize(("orientation", "turns"), [("north", 0), ("west", 1), ("south", 2), ("east", 3)])
def test_reflection_orientation_rotates_the_image(qmap_backend, orientation, turns):
    """Turning the detector image so the surface normal points up gives the north map."""
    n = 41
    g = ReflectionGeometry(10.0, 2.0, 75e-6, 20.0, 20.0, 0.3, orientation=orientation)
    north = as_numpy(compute_qmap(ReflectionGeometry(10.0, 2.0, 75e-6, 20.0, 20.0, 0.3), (n, n)))
    turned = as_numpy(compute_qmap(g, (n, n)))
    # np.rot90 turns counter-clockwise; west (normal at the left edge) needs a clockwise turn
    for name in ("alpha_f_deg", "two_theta_f_deg", "qx_inv_angstrom", "qz_inv_angstrom", "q_inv_angstrom"):
        close(np.rot90(turned[name], k=-turns), north[name], 1e-12)


def test_reflection_at_zero_incidence_is_transmission():
    t = as_numpy(compute_qmap(TransmissionGeometry(10.0, 2.0, 75e-6, 20.0, 30.0), SHAPE))
    r = as_numpy(compute_qmap(ReflectionGeometry(10.0, 2.0, 75e-6, 20.0, 30.0, 0.0), SHAPE))
    close(r["qy_inv_angstrom"], t["qx_inv_angstrom"], 1e-12)
    close(r["qz_inv_angstrom"], t["qy_inv_angstrom"], 1e-12)
    close(r["qx_inv_angstrom"], t["qz_inv_angstrom"], 1e-12)
    for name in COMMON_QUANTITIES[:3]:
        close(r[name], t[name], 1e-12)


# ---------------------------------------------------------------- backends, dtype, cache
GEOMETRIES = [
    TransmissionGeometry(10.0, 5.0, 75e-6, 40.3, 20.7),
    TiltedGeometry.from_pyfai(0.35, 0.0021, 0.0013, 0.05, -0.03, 0.2, 1.3e-10, 7.5e-5, 5.5e-5),
    ReflectionGeometry(10.0, 5.0, 75e-6, 40.3, 20.7, 0.15, orientation="west"),
]


@pytest.mark.jax
@pytest.mark.skipif(not HAS_JAX, reason="no JAX")
@pytest.mark.parametrize("geometry", GEOMETRIES, ids=["transmission", "tilted", "reflection"])
def test_backends_agree(geometry):
    with use_backend("numpy"):
        eager = as_numpy(compute_qmap(geometry, SHAPE))
    with use_backend("jax") as b:
        jitted = compute_qmap(geometry, SHAPE)
        assert all(b.is_array(v) for v in jitted.as_dict().values())
        jitted = as_numpy(jitted)
    assert set(eager) == set(jitted)
    for name in eager:
        assert jitted[name].dtype == np.float64
        close(jitted[name], eager[name], 1e-12)


@pytest.mark.parametrize("geometry", GEOMETRIES, ids=["transmission", "tilted", "reflection"])
def test_float32_on_request(qmap_backend, geometry):
    m64 = as_numpy(compute_qmap(geometry, SHAPE))
    m32 = as_numpy(compute_qmap(geometry, SHAPE, dtype="float32"))
    for name in m64:
        assert m32[name].dtype == np.float32
        close(m32[name], m64[name], 2e-5)


def test_quantities_subset(qmap_backend):
    m = compute_qmap(GEOMETRIES[0], SHAPE, quantities=("phi_deg", "q_inv_angstrom"))
    assert set(m) == {"phi_deg", "q_inv_angstrom"}
    assert m.qx_inv_angstrom is None
    with pytest.raises(KeyError, match="'qx_inv_angstrom' is not in this QMap"):
        m["qx_inv_angstrom"]


def test_cache_reuses_the_compiled_function(qmap_backend):
    qmap_cache_clear()
    compute_qmap(TransmissionGeometry(10.0, 5.0, 75e-6, 1.0, 2.0), (32, 48))
    before = qmap_cache_info()
    compute_qmap(TransmissionGeometry(11.0, 4.0, 55e-6, 7.5, -3.0), (32, 48))  # new numbers, same statics
    after = qmap_cache_info()
    assert (after.hits, after.misses) == (before.hits + 1, before.misses)
    compute_qmap(TransmissionGeometry(11.0, 4.0, 55e-6, 7.5, -3.0), (32, 49))  # a new shape compiles
    assert qmap_cache_info().misses == before.misses + 1
    assert qmap_cache_info().maxsize is not None  # bounded


@pytest.mark.jax
@pytest.mark.skipif(not HAS_JAX, reason="no JAX")
def test_jax_traces_once_for_new_geometry_numbers():
    from xpcs_kernels import qmap as qmap_module

    with use_backend("jax") as b:
        qmap_cache_clear()
        for centre in (1.0, 2.5, 30.0):
            compute_qmap(TransmissionGeometry(10.0, 5.0, 75e-6, centre, 2.0), (32, 48))
        (fun,) = [
            qmap_module._compiled(b, "transmission", (32, 48), "float64", False, frozenset(COMMON_QUANTITIES))
        ]
        assert fun._cache_size() == 1


def test_numpy_results_are_not_shared():
    with use_backend("numpy"):
        g = GEOMETRIES[0]
        first = compute_qmap(g, SHAPE)
        expected = first.q_inv_angstrom.copy()
        first.q_inv_angstrom[...] = -1.0
        first.phi_deg[...] = -1.0
        second = compute_qmap(g, SHAPE)
        np.testing.assert_array_equal(second.q_inv_angstrom, expected)
        assert not np.shares_memory(second.q_inv_angstrom, first.q_inv_angstrom)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"shape": (10,)}, ValueError, r"shape must be the detector's \(rows, columns\)"),
        ({"shape": (0, 5)}, ValueError, "at least one row and one column"),
        ({"shape": (2.5, 5)}, ValueError, "two integers"),
        ({"dtype": "int32"}, ValueError, "dtype must be 'float64' or 'float32'"),
        ({"dtype": "nonsense"}, ValueError, "dtype must be 'float64' or 'float32'"),
        ({"quantities": ("alpha_f_deg",)}, ValueError, r"alpha_f_deg unknown"),
        ({"quantities": ()}, ValueError, "non-empty selection"),
        ({"geometry": object()}, TypeError, "geometry must be a TransmissionGeometry"),
    ],
)
def test_bad_arguments(kwargs, error, match):
    args = {"geometry": GEOMETRIES[0], "shape": SHAPE}
    args.update(kwargs)
    geometry, shape = args.pop("geometry"), args.pop("shape")
    with pytest.raises(error, match=match):
        compute_qmap(geometry, shape, **args)


# ------------------------------------------------------------- arctan2 of compiled backends
def _arctan2_cases():
    rng = np.random.default_rng(42)
    n = 200_000
    y = rng.standard_normal(n) * np.exp(rng.uniform(-40, 40, n))
    x = rng.standard_normal(n) * np.exp(rng.uniform(-40, 40, n))
    # Ratios around the reduction boundary tan(pi/8), the diagonal, and sweeps in all quadrants.
    t = np.concatenate(
        [
            np.linspace(0.0, 1.0, 20_001),
            (math.sqrt(2) - 1) * (1 + np.arange(-40, 41) * 2.0**-52),
            1 + np.arange(-40, 41) * 2.0**-52,
        ]
    )
    ones = np.ones_like(t)
    y = np.concatenate([y, t, -t, t, -t, ones, -ones, ones, -ones])
    x = np.concatenate([x, ones, ones, -ones, -ones, t, t, -t, -t])
    # Axes, origin, huge and tiny magnitudes and ratios (not subnormals: XLA on CPU flushes them).
    special = [
        (0.0, 0.0),
        (0.0, 1.0),
        (0.0, -1.0),
        (1.0, 0.0),
        (-1.0, 0.0),
        (0.0, -1e-300),
        (3.0, -3.0),
        (1e-300, 1e300),
        (1e300, 1e-300),
        (-1e300, -1e-300),
        (1e-300, 1.0),
        (-1e-300, -2.0),
        (2.3e-308, 2.3e-308),
        (1e300, 1e300),
        (-7e299, 1e300),
        (1e-20, -1.0),
        (2.0, -1e-20),
    ]
    sy, sx = np.array(special).T
    y, x = np.concatenate([y, sy]), np.concatenate([x, sx])
    y[y == 0], x[x == 0] = 0.0, 0.0  # negative zeros (from -t) are checked on their own below
    return y, x


@pytest.mark.jax
@pytest.mark.skipif(not HAS_JAX, reason="no JAX")
def test_compiled_arctan2_within_2_ulp_of_numpy():
    import jax

    from xpcs_kernels.qmap import _arctan2

    y, x = _arctan2_cases()
    expected = np.arctan2(y, x)
    with use_backend("jax") as b:
        got = np.asarray(jax.jit(lambda yy, xx: _arctan2(b, yy, xx))(b.asarray(y), b.asarray(x)))
    ulps = np.abs(got - expected) / np.spacing(np.abs(expected))
    assert ulps.max() <= 2.0, (y[ulps.argmax()], x[ulps.argmax()])
    exact = {(0.0, 0.0): 0.0, (1.0, 0.0): math.pi / 2, (-1.0, 0.0): -math.pi / 2, (0.0, -1.0): math.pi}
    for (yy, xx), value in exact.items():
        assert got[(y == yy) & (x == xx)][0] == value
    # A negative zero counts as +0: the negative x axis is +pi, as phi in (-180, 180] wants.
    with use_backend("jax") as b:
        signed = np.asarray(_arctan2(b, b.asarray([-0.0, -0.0, 0.0]), b.asarray([-1.0, 1.0, -0.0])))
    assert signed.tolist() == [math.pi, 0.0, 0.0]
