"""Partitions against brute-force oracles: np.digitize / Python loops over pixels on small
maps, dict-based relabelling, and a realistic 512x512 flat-detector geometry.

Every kernel test runs on NumPy and, where JAX is installed, on JAX eagerly and under jit.
"""

from __future__ import annotations

import importlib.util
import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from xpcs_device import get_backend, reset_backend, use_backend
from xpcs_kernels.partitions import (
    Partition,
    PartitionSpec,
    bin_centers,
    bin_edges,
    check_nested,
    fold_phi,
    label_values,
    make_partition,
    make_partitions,
    partition_labels,
    relabel_occupied,
)

BACKENDS = ["numpy"] + (["jax"] if importlib.util.find_spec("jax") is not None else [])
HYPO = settings(deadline=None, max_examples=30, suppress_health_check=[HealthCheck.too_slow])
# JAX compiles the core once per map shape and spec: check it on a share of the examples
FEW = settings(HYPO, max_examples=20)


@pytest.fixture(autouse=True)
def _reset():
    reset_backend()
    yield
    reset_backend()


def np_(x):
    return np.asarray(get_backend().to_numpy(x))


# ------------------------------------------------------------------------- oracles
def ref_labels(values, valid, edges):
    """Python loop over elements, np.digitize per value; vmax closed into the last bin."""
    edges = np.asarray(edges)
    n = len(edges) - 1
    out = np.zeros(np.shape(values), dtype=np.int64)
    for idx, v in np.ndenumerate(np.asarray(values, dtype=float)):
        if valid is not None and not np.asarray(valid)[idx]:
            continue
        if not math.isfinite(v) or v < edges[0] or v > edges[-1]:
            continue
        out[idx] = n if v == edges[-1] else int(np.digitize(v, edges))
    return out


def ref_fold(phi, offset, fold):
    """Python: add the offset; fold 1: into (-180, 180] by whole turns; fold f > 1:
    shift by 180 and bring into [0, 360/f) (pySimpleMask's semantics)."""
    if fold > 1:
        return (phi + offset + 180.0) % (360.0 / fold)
    y = math.fmod(phi + offset, 360.0)
    while y > 180.0:
        y -= 360.0
    while y <= -180.0:
        y += 360.0
    return y


def aps_phi_labels(phi, mask, n_phi, offset, fold):
    """Phi bins as pySimpleMask assigns them (its partition semantics, written out here):
    offset added and wrapped through the complex exponential, fold f > 1 as mod(φ + 180,
    360/f), linear bins over the masked min..max, the maximum in the last bin."""
    x = np.rad2deg(np.angle(np.exp(1j * np.deg2rad(phi + offset))))
    if fold > 1:
        x = np.mod(x + 180.0, 360.0 / fold)
    lo, hi = x[mask].min(), x[mask].max()
    edges = np.linspace(lo, hi, n_phi + 1)
    labels = np.digitize(x, edges)
    labels[x == hi] = n_phi
    labels[~mask] = 0
    distance = np.min(np.abs(x[..., None] - edges), axis=-1)  # how close each pixel is to an edge
    return labels, distance


def ref_partition(q, phi_folded, valid, q_edges, phi_edges):
    """Pixel loop: combined grid label, dict relabel in natural order, index_mapping, num_pts."""
    n_phi = len(phi_edges) - 1
    lq = ref_labels(q, valid, q_edges)
    lp = ref_labels(phi_folded, valid, phi_edges) if phi_folded is not None else (lq > 0).astype(int)
    combined = np.zeros(q.shape, dtype=np.int64)
    for idx in np.ndindex(q.shape):
        if lq[idx] > 0 and lp[idx] > 0:
            combined[idx] = (lq[idx] - 1) * n_phi + lp[idx]
    occupied = sorted({int(c) for c in combined.ravel() if c > 0})
    new = {c: i + 1 for i, c in enumerate(occupied)}
    roi = np.array([new.get(int(c), 0) for c in combined.ravel()]).reshape(q.shape)
    counts = {c: int((combined == c).sum()) for c in occupied}
    return roi, np.array([c - 1 for c in occupied]), np.array([counts[c] for c in occupied])


# ---------------------------------------------------------------------- edges/centres
@pytest.mark.parametrize("name", BACKENDS)
def test_edges_and_centres(name):
    with use_backend(name):
        e = np_(bin_edges(0.001, 0.1, 7))
        assert e[0] == 0.001
        assert e[-1] == 0.1
        assert len(e) == 8
        np.testing.assert_allclose(e, np.linspace(0.001, 0.1, 8), rtol=1e-14)
        np.testing.assert_allclose(np_(bin_centers(0.001, 0.1, 7)), (e[1:] + e[:-1]) / 2, rtol=1e-15)
        g = np_(bin_edges(0.001, 0.1, 5, "log"))
        assert g[0] == 0.001
        assert g[-1] == 0.1
        np.testing.assert_allclose(g, np.geomspace(0.001, 0.1, 6), rtol=1e-13)
        np.testing.assert_allclose(
            np_(bin_centers(0.001, 0.1, 5, "log")), np.sqrt(g[1:] * g[:-1]), rtol=1e-15
        )


@HYPO
@given(
    lo=st.floats(-1e3, 1e3),
    width=st.floats(1e-3, 1e3),
    n=st.integers(1, 60),
    m=st.integers(1, 7),
    spacing=st.sampled_from(["linear", "log"]),
)
def test_edges_of_n_bins_are_every_mth_edge_of_mn_bins(lo, width, n, m, spacing):
    if spacing == "log":
        lo = abs(lo) + 1e-3
    hi = lo + width
    with use_backend("numpy"):
        coarse, fine = np_(bin_edges(lo, hi, n, spacing)), np_(bin_edges(lo, hi, m * n, spacing))
    assert np.array_equal(coarse, fine[::m])  # bitwise: static bins nest exactly
    assert np.all(np.diff(fine) > 0)


# ------------------------------------------------------------------------ labelling
def _jitted_labels(b):
    return b.jit(label_values, static_argnums=(2, 3, 4, 5))


@pytest.mark.parametrize("name", BACKENDS)
@pytest.mark.parametrize("spacing", ["linear", "log"])
def test_values_exactly_on_every_edge_vmax_nan_masked(name, spacing):
    lo, hi, n = (0.1, 2.9, 7) if spacing == "linear" else (1e-3, 0.37, 9)
    with use_backend(name) as b:
        e = np_(bin_edges(lo, hi, n, spacing))
        below, above = np.nextafter(e, -np.inf), np.nextafter(e, np.inf)
        v = np.concatenate([e, below, above, [np.nan, np.inf, -np.inf, 0.0, -1.0, 10.0]])
        valid = np.ones(v.shape, bool)
        valid[3] = False  # a masked edge value
        expected = ref_labels(v, valid, e)
        assert expected[n] == n
        assert expected[0] == 1
        assert expected[n + 1] == 0
        assert expected[3] == 0
        for fn in (label_values, _jitted_labels(b)):
            got = fn(b.asarray(v), b.asarray(valid), lo, hi, n, spacing)
            assert b.is_array(got)
            np.testing.assert_array_equal(np_(got), expected)


@HYPO
@given(
    data=st.data(),
    n=st.integers(1, 40),
    spacing=st.sampled_from(["linear", "log"]),
)
def test_label_values_match_digitize(data, n, spacing):
    lo = data.draw(st.floats(0.01, 10.0) if spacing == "log" else st.floats(-100, 100), label="lo")
    hi = lo + data.draw(st.floats(0.01, 100.0), label="width")
    size = data.draw(st.integers(1, 40), label="size")
    with use_backend("numpy"):
        e = np_(bin_edges(lo, hi, n, spacing))
    pool = st.one_of(
        st.floats(lo - 1, hi + 1, allow_nan=False),
        st.sampled_from(list(e)),  # exactly on edges
        st.just(float("nan")),
    )
    v = np.array(data.draw(st.lists(pool, min_size=size, max_size=size), label="values"))
    valid = np.array(data.draw(st.lists(st.booleans(), min_size=size, max_size=size), label="valid"))
    expected = ref_labels(v, valid, e)
    for name in BACKENDS:
        with use_backend(name) as b:
            np.testing.assert_array_equal(np_(label_values(v, valid, lo, hi, n, spacing)), expected)
    if "jax" in BACKENDS and n <= 5:  # compile a few under jit too
        with use_backend("jax") as b:
            np.testing.assert_array_equal(np_(_jitted_labels(b)(v, valid, lo, hi, n, spacing)), expected)


def test_valid_none_means_all_valid():
    with use_backend("numpy"):
        np.testing.assert_array_equal(np_(label_values([0.0, 0.5, 1.0], None, 0.0, 1.0, 2)), [1, 2, 2])


# ------------------------------------------------------------------------------- phi
@pytest.mark.parametrize("name", BACKENDS)
def test_fold_phi_offset_wrap_and_fold(name):
    with use_backend(name) as b:
        # offset: added (pySimpleMask), so the direction -phi_offset becomes 0; wrap to (-180, 180]
        np.testing.assert_array_equal(
            np_(fold_phi([170.0, -170.0, 180.0, -180.0, 0.0, 20.0], -20.0)),
            [150.0, 170.0, 160.0, 160.0, -20.0, 0.0],
        )
        np.testing.assert_array_equal(np_(fold_phi([-30.0, 170.0], 30.0)), [0.0, -160.0])
        np.testing.assert_array_equal(
            np_(fold_phi([180.0, -180.0, 0.0, 90.0], 0.0)), [180.0, 180.0, 0.0, 90.0]
        )
        # fold 2: opposite sectors share; range [0, 180): mod(phi + 180, 180)
        np.testing.assert_array_equal(
            np_(fold_phi([10.0, -170.0, 90.0, -90.0, 100.0], 0.0, 2)), [10.0, 10.0, 90.0, 90.0, 100.0]
        )
        # fold 4 with an offset: mod(phi + 30 + 180, 90)
        np.testing.assert_array_equal(
            np_(fold_phi([30.0, 120.0, -150.0, -60.0, 75.0, -30.0], 30.0, 4)),
            [60.0, 60.0, 60.0, 60.0, 15.0, 0.0],
        )
        # fold 3 (odd): direction 0 lands at 60, mid-range, as in pySimpleMask
        np.testing.assert_array_equal(
            np_(fold_phi([0.0, 120.0, -120.0, 60.0], 0.0, 3)), [60.0, 60.0, 60.0, 0.0]
        )
        out = np_(fold_phi([np.nan, np.inf, 1.0]))
        assert np.isnan(out[:2]).all()
        assert out[2] == 1.0
        jitted = b.jit(fold_phi, static_argnums=(1, 2))
        np.testing.assert_array_equal(np_(jitted(b.asarray([170.0, -170.0]), -20.0, 1)), [150.0, 170.0])


@HYPO
@given(
    phi=st.lists(st.floats(-180, 180), min_size=1, max_size=30),
    offset=st.floats(-720, 720),
    fold=st.integers(1, 12),
)
def test_fold_phi_against_python_loop(phi, offset, fold):
    w = 360.0 / fold
    outs = []
    for name in BACKENDS:
        with use_backend(name):
            outs.append(np_(fold_phi(np.array(phi), offset, fold)))
    for out in outs[1:]:
        np.testing.assert_array_equal(out, outs[0])  # identical on every backend
    for p, got in zip(phi, outs[0], strict=True):
        assert (-180.0 < got <= 180.0) if fold == 1 else (0.0 <= got <= w)  # w only by rounding
        want = ref_fold(p, offset, fold)
        turns = (got - want) / w  # equal up to rounding, or the same direction at the (-c, c] seam
        assert abs(turns - round(turns)) < 1e-9


# ---------------------------------------------------------------------- partitions
def _maps(data, shape_max=7):
    h = data.draw(st.integers(1, shape_max), label="h")
    w = data.draw(st.integers(1, shape_max), label="w")
    grid = st.lists(st.integers(0, 24), min_size=h * w, max_size=h * w)
    q = np.array(data.draw(grid, label="q"), dtype=float).reshape(h, w) / 4.0 + 0.25  # many exact edge hits
    phi = np.array(data.draw(grid, label="phi"), dtype=float).reshape(h, w) * 15.0 - 180.0
    mask = np.array(data.draw(st.lists(st.booleans(), min_size=h * w, max_size=h * w), label="mask")).reshape(
        h, w
    )
    return q, phi, mask


@FEW
@given(data=st.data(), n_q=st.integers(1, 6), n_phi=st.integers(1, 5), fold=st.sampled_from([1, 2, 4]))
def test_make_partition_matches_pixel_loop(data, n_q, n_phi, fold):
    q, phi, mask = _maps(data)
    mask.flat[0] = True
    offset = data.draw(st.sampled_from([0.0, 30.0, -45.0]), label="offset")
    user_q = data.draw(st.sampled_from([None, (0.5, 5.0)]), label="q_range")
    folded = np.array([ref_fold(p, offset, fold) for p in phi.ravel()]).reshape(phi.shape)
    valid = mask.astype(bool)
    if user_q is None:
        if q[valid].min() == q[valid].max():
            return  # degenerate: covered by the error tests
        q_range = (q[valid].min(), q[valid].max())
    else:
        q_range = user_q
    if n_phi == 1:
        phi_range = (-180.0, 180.0) if fold == 1 else (0.0, 360.0 / fold)
    else:
        if folded[valid].min() == folded[valid].max():
            return
        phi_range = (folded[valid].min(), folded[valid].max())
    with use_backend("numpy"):
        q_edges = np_(bin_edges(*q_range, n_q))
        phi_edges = np_(bin_edges(*phi_range, n_phi))
    roi, index_mapping, num_pts = ref_partition(q, folded, valid, q_edges, phi_edges)
    results = []
    for name in BACKENDS if data.draw(st.booleans(), label="jax too") else ["numpy"]:
        with use_backend(name) as b:
            kwargs = {"n_q": n_q, "n_phi": n_phi, "q_range": user_q, "phi_offset": offset}
            if roi.max() == 0:  # the user q_range excludes everything
                with pytest.raises(ValueError, match="no valid pixel lies in"):
                    make_partition(q, phi, mask, symmetry_fold=fold, **kwargs)
                continue
            p = make_partition(q, phi, mask, symmetry_fold=fold, **kwargs)
            assert isinstance(p, Partition)
            assert b.is_array(p.roi_map)
            np.testing.assert_array_equal(np_(p.roi_map), roi)
            np.testing.assert_array_equal(np_(p.index_mapping), index_mapping)
            np.testing.assert_array_equal(np_(p.num_pts), num_pts)
            np.testing.assert_array_equal(np_(p.q_edges), q_edges)
            np.testing.assert_array_equal(np_(p.phi_edges), phi_edges)
            assert p.num_labels == len(index_mapping)
            results.append(p)
    if len(results) == 2:
        for f in ("roi_map", "index_mapping", "num_pts", "v_list_dim0", "v_list_dim1"):
            with use_backend("numpy"):
                a = np.asarray(getattr(results[0], f))
            assert np.array_equal(a, np.asarray(getattr(results[1], f)))


@pytest.mark.parametrize("name", BACKENDS)
def test_partition_fields_and_aps_names(name):
    q = np.array([[0.0, 1.0, 2.0, 3.0], [4.0, 5.0, 6.0, 7.0]])
    phi = np.array([[-90.0, 90.0, -90.0, 90.0], [-90.0, 90.0, -90.0, 90.0]])
    mask = np.ones_like(q)
    mask[0, 0] = 0
    with use_backend(name) as b:
        p = make_partition(q, phi, mask, n_q=4, n_phi=2, q_range=(0.0, 8.0), phi_range=(-180.0, 180.0))
        # q bins [0,2) [2,4) [4,6) [6,8]; phi bins [-180,0) [0,180]
        np.testing.assert_array_equal(np_(p.roi_map), [[0, 1, 2, 3], [4, 5, 6, 7]])
        np.testing.assert_array_equal(np_(p.index_mapping), [1, 2, 3, 4, 5, 6, 7])
        np.testing.assert_array_equal(np_(p.num_pts), [1] * 7)
        np.testing.assert_array_equal(np_(p.v_list_dim0), [1.0, 3.0, 5.0, 7.0])
        np.testing.assert_array_equal(np_(p.v_list_dim1), [-90.0, 90.0])
        iq, iphi = p.grid_index()
        np.testing.assert_array_equal(np_(iq), [0, 1, 1, 2, 2, 3, 3])
        np.testing.assert_array_equal(np_(iphi), [1, 0, 1, 0, 1, 0, 1])
        fields = p.aps_fields("dynamic")
        assert set(fields) == {
            "dynamic_roi_map",
            "dynamic_v_list_dim0",
            "dynamic_v_list_dim1",
            "dynamic_index_mapping",
            "dynamic_num_pts",
        }
        assert all(b.is_array(v) for v in fields.values())
        # the APS viewer reshapes the flat grid with {kind}_num_pts: the grid shape [n_q, n_phi]
        np.testing.assert_array_equal(np_(fields["dynamic_num_pts"]), [4, 2])
        assert np_(fields["dynamic_num_pts"]).dtype == np.int64
        with pytest.raises(ValueError, match="'static' or 'dynamic'"):
            p.aps_fields("other")  # type: ignore[arg-type]
        # q only
        p1 = make_partition(q, None, None, n_q=2)
        np.testing.assert_array_equal(np_(p1.roi_map), [[1, 1, 1, 1], [2, 2, 2, 2]])
        np.testing.assert_array_equal(np_(p1.v_list_dim1), [0.0])


@pytest.mark.parametrize("name", BACKENDS)
def test_relabel_against_dict_and_under_jit(name):
    rng = np.random.default_rng(3)
    labels = rng.choice([0, 2, 3, 7, 11, 12], size=(9, 11)).astype(np.int32)
    occupied = sorted(set(labels.ravel()) - {0})
    table = {c: i + 1 for i, c in enumerate(occupied)}
    expected = np.vectorize(lambda c: table.get(c, 0))(labels)
    with use_backend(name) as b:
        for fn in (relabel_occupied, b.jit(relabel_occupied, static_argnums=1)):
            roi, counts = fn(b.asarray(labels), 12)
            np.testing.assert_array_equal(np_(roi), expected)
            np.testing.assert_array_equal(np_(counts), np.bincount(labels.ravel(), minlength=13))


@pytest.mark.parametrize("name", BACKENDS)
def test_core_jitted_equals_eager(name):
    rng = np.random.default_rng(5)
    q = rng.uniform(0.0, 1.0, (40, 50))
    phi = rng.uniform(-180.0, 180.0, (40, 50))
    valid = rng.random((40, 50)) > 0.3
    spec = PartitionSpec(8, 6, (0.05, 0.95), (0.0, 180.0), "log", 20.0, 2)
    with use_backend(name) as b:
        eager = np_(partition_labels(q, phi, valid, spec))
        jitted = np_(
            b.jit(partition_labels, static_argnums=3)(b.asarray(q), b.asarray(phi), b.asarray(valid), spec)
        )
    np.testing.assert_array_equal(jitted, eager)
    folded = np.array([ref_fold(p, 20.0, 2) for p in phi.ravel()]).reshape(phi.shape)
    with use_backend("numpy"):
        lq = ref_labels(q, valid, np_(bin_edges(0.05, 0.95, 8, "log")))
        lp = ref_labels(folded, valid, np_(bin_edges(0.0, 180.0, 6)))
    np.testing.assert_array_equal(eager, np.where((lq > 0) & (lp > 0), (lq - 1) * 6 + lp, 0))


# -------------------------------------------------------------- static in dynamic
@FEW
@given(data=st.data(), dq=st.integers(1, 4), dp=st.integers(1, 3), kq=st.integers(1, 4), kp=st.integers(1, 3))
def test_integer_multiples_always_nest(data, dq, dp, kq, kp):
    q, phi, mask = _maps(data)
    mask.flat[0] = True
    valid = mask.astype(bool)
    if q[valid].min() == q[valid].max() or phi[valid].min() == phi[valid].max():
        return
    backends = BACKENDS if data.draw(st.integers(0, 2), label="jax too") == 0 else ["numpy"]
    for name in backends:
        with use_backend(name):
            s, d = make_partitions(q, phi, mask, dynamic=(dq, dp), static=(dq * kq, dp * kp))
            # every static label -> exactly one dynamic label, by a pixel loop
            sm, dm = np_(s.roi_map), np_(d.roi_map)
            owner = {}
            for sl, dl in zip(sm.ravel(), dm.ravel(), strict=True):
                if sl:
                    assert dl > 0
                    assert owner.setdefault(sl, dl) == dl
            assert s.spec.q_range == d.spec.q_range
            assert s.spec.phi_range == d.spec.phi_range


@pytest.mark.parametrize("name", BACKENDS)
def test_non_nested_counts_raise_naming_them(name):
    q = np.linspace(0.0, 1.0, 60).reshape(6, 10)
    phi = np.zeros_like(q)
    with (
        use_backend(name),
        pytest.raises(ValueError, match=r"static n_q, n_phi = \(3, 1\); dynamic n_q, n_phi = \(2, 1\)"),
    ):
        make_partitions(q, phi, None, dynamic=(2, 1), static=(3, 1))


@pytest.mark.parametrize("name", BACKENDS)
def test_check_nested_direct(name):
    s = np.array([[1, 1, 2, 2], [3, 3, 0, 0]])
    with use_backend(name):
        check_nested(s, np.array([[1, 1, 1, 1], [2, 2, 0, 1]]))  # fine
        with pytest.raises(ValueError, match=r"1 of 3 static bins .* static labels \[2\]"):
            check_nested(s, np.array([[1, 1, 1, 2], [2, 2, 0, 0]]))
        with pytest.raises(ValueError, match=r"static labels \[3\]"):
            check_nested(s, np.array([[1, 1, 1, 1], [0, 0, 0, 0]]))  # not inside any dynamic bin
        with pytest.raises(ValueError, match="pixels"):
            check_nested(s, np.zeros(3, int))


# --------------------------------------------------------------------------- errors
Q = np.linspace(0.01, 1.0, 20).reshape(4, 5)
PHI = np.linspace(-170.0, 170.0, 20).reshape(4, 5)


@pytest.mark.parametrize(
    ("kwargs", "exc", "match"),
    [
        ({"mask": np.ones((5, 4))}, ValueError, r"mask has shape \(5, 4\) but q_map has shape \(4, 5\)"),
        (
            {"phi_map": np.zeros((4, 4))},
            ValueError,
            r"phi_map has shape \(4, 4\) but q_map has shape \(4, 5\)",
        ),
        ({"q_map": Q.ravel()}, ValueError, "2-D"),
        ({"q_map": Q.astype(complex)}, TypeError, "real numbers"),
        ({"mask": np.zeros((4, 5))}, ValueError, "excludes every pixel"),
        ({"n_q": 0}, ValueError, "n_q must be a positive int"),
        ({"n_q": 2.5}, ValueError, "n_q must be a positive int"),
        ({"n_phi": True}, ValueError, "n_phi must be a positive int"),
        ({"spacing": "cubic"}, ValueError, "'linear' or 'log'"),
        ({"q_range": (1.0, 0.5)}, ValueError, "minimum < maximum"),
        ({"q_range": (0.0, math.nan)}, ValueError, "must be finite"),
        ({"q_range": 3.0}, TypeError, "pair"),
        ({"q_range": (-1.0, 1.0), "spacing": "log"}, ValueError, "log spacing needs a positive q_range"),
        ({"q_range": (2.0, 3.0)}, ValueError, r"no valid pixel lies in q_range .* 0 of 20 valid pixels"),
        ({"phi_range": (175.0, 179.0), "n_phi": 2}, ValueError, r"0 inside phi_range"),
        ({"phi_map": None, "n_phi": 3}, ValueError, "phi_map is None but n_phi = 3"),
        ({"symmetry_fold": 0}, ValueError, "symmetry_fold must be a positive int"),
        ({"phi_offset": math.inf}, ValueError, "phi_offset must be finite"),
        ({"nan": "ignore"}, ValueError, "'raise' or 'exclude'"),
        ({"n_q": 50000, "n_phi": 50000}, ValueError, "int32"),
        ({"q_range": (1.0, 1.0 + 1e-12), "n_q": 10}, ValueError, "too narrow"),
        ({"q_range": (1.0, 1.0 + 1e-12), "n_q": 10, "spacing": "log"}, ValueError, "narrower than"),
    ],
)
def test_bad_input_raises_clear_error(kwargs, exc, match):
    args = {"q_map": Q, "phi_map": PHI, "mask": None, "n_q": 3}
    args.update(kwargs)
    with use_backend("numpy"), pytest.raises(exc, match=match):
        make_partition(args.pop("q_map"), args.pop("phi_map"), args.pop("mask"), **args)


@pytest.mark.parametrize("name", BACKENDS)
def test_nan_policy(name):
    q = Q.copy()
    q[0, 0] = np.nan
    q[1, 1] = np.inf
    phi = PHI.copy()
    phi[2, 2] = np.nan
    mask = np.ones(q.shape, bool)
    with use_backend(name):
        with pytest.raises(
            ValueError, match=r"3 valid pixels have a non-finite .* \(2 in q_map, 1 in phi_map\)"
        ):
            make_partition(q, phi, mask, n_q=3)
        p = make_partition(q, phi, mask, n_q=3, nan="exclude")
        roi = np_(p.roi_map)
        assert roi[0, 0] == 0
        assert roi[1, 1] == 0
        assert roi[2, 2] == 0
        assert int(np.asarray(p.num_pts).sum()) == 17
        assert p.spec.q_range == (np.nanmin(Q[np.isfinite(q)]), 1.0)
        mask[0, 0] = mask[1, 1] = mask[2, 2] = False  # masked NaN are fine
        assert make_partition(q, phi, mask, n_q=3).num_labels == 3


def test_log_default_range_needs_positive_q_and_degenerate_ranges():
    q = Q.copy()
    q[0, 0] = 0.0
    with use_backend("numpy"):
        with pytest.raises(ValueError, match=r"smallest valid q is 0\.0"):
            make_partition(q, PHI, None, n_q=3, spacing="log")
        p = make_partition(q, PHI, q > 0, n_q=3, spacing="log")
        assert np_(p.roi_map)[0, 0] == 0
        with pytest.raises(ValueError, match="every valid pixel has q"):
            make_partition(np.ones((3, 3)), np.zeros((3, 3)), None, n_q=3)
        with pytest.raises(ValueError, match="every valid pixel has folded phi"):
            make_partition(Q, np.zeros((4, 5)), None, n_q=3, n_phi=2)
        with pytest.raises(ValueError, match="log spacing needs a positive range"):
            bin_edges(0.0, 1.0, 3, "log")
        with pytest.raises(TypeError, match="must be a real number"):
            label_values([1.0], None, np.array([0.0, 1.0]), 2.0, 3)
        with pytest.raises(ValueError, match=r"valid has shape \(2,\) but values have shape \(1,\)"):
            label_values([1.0], [True, True], 0.0, 2.0, 3)
        with pytest.raises(TypeError, match=r"dynamic must be a pair"):
            make_partitions(Q, PHI, None, dynamic=3, static=(3, 1))  # type: ignore[arg-type]


# ------------------------------------------------------------------ realistic geometry
def flat_detector(shape=(512, 512), bcx=251.3, bcy=270.7, pixel=75e-6, distance=5.0, energy_kev=10.0):
    """q = k0·r/R (APS convention), φ = atan2(dy, dx) in degrees, plain NumPy."""
    k0 = 2 * np.pi / (12.398419843320026 / energy_kev)
    i, j = np.indices(shape, dtype=float)
    dx, dy = (j - bcx) * pixel, -(i - bcy) * pixel
    r = np.hypot(dx, dy)
    q = k0 * r / np.sqrt(r**2 + distance**2)
    phi = np.degrees(np.arctan2(dy, dx))
    mask = np.ones(shape, bool)
    mask[r < 18 * pixel] = False  # beam stop
    mask[(np.abs(dx) < 4 * pixel) & (dy < 0)] = False  # its arm, downwards
    mask[100:103, :] = False  # a module gap
    mask[7, 400] = False  # a dead pixel
    return q, phi, mask


@pytest.mark.parametrize("name", BACKENDS)
def test_realistic_flat_detector(name):
    q, phi, mask = flat_detector()
    with use_backend(name):
        s, d = make_partitions(q, phi, mask, dynamic=(12, 4), static=(48, 16), phi_offset=10.0)
        ls = make_partition(q, phi, mask, n_q=20, q_range=(2e-3, 0.05), spacing="log")
        static = {
            f: np.asarray(np_(getattr(s, f)))
            for f in ("roi_map", "index_mapping", "num_pts", "q_edges", "phi_edges")
        }
        dyn_roi = np_(d.roi_map)
        log_roi = np_(ls.roi_map)
        log_edges = np_(ls.q_edges)
    folded = 180.0 - np.mod(180.0 - (phi + 10.0), 360.0)
    assert (static["q_edges"][0], static["q_edges"][-1]) == (q[mask].min(), q[mask].max())
    assert (static["phi_edges"][0], static["phi_edges"][-1]) == (folded[mask].min(), folded[mask].max())
    # vectorised digitize oracle over the whole detector
    lq = np.clip(np.digitize(q, static["q_edges"]), 1, 48)
    lp = np.clip(np.digitize(folded, static["phi_edges"]), 1, 16)
    combined = np.where(mask, (lq - 1) * 16 + lp, 0)
    occupied = np.unique(combined[combined > 0])
    np.testing.assert_array_equal(static["index_mapping"], occupied - 1)
    np.testing.assert_array_equal(
        static["roi_map"],
        np.searchsorted(occupied, combined) + 1 - (combined == 0) * (1 + np.searchsorted(occupied, 0)),
    )
    np.testing.assert_array_equal(static["num_pts"], np.bincount(combined.ravel())[occupied])
    assert static["num_pts"].sum() == mask.sum()
    assert (dyn_roi[mask] > 0).all()
    assert (dyn_roi[~mask] == 0).all()
    # log q partition: positive, geometric
    expected_log = np.where(mask & (q >= 2e-3) & (q <= 0.05), np.clip(np.digitize(q, log_edges), 1, 20), 0)
    occ = np.unique(expected_log[expected_log > 0])
    np.testing.assert_array_equal(
        log_roi, np.where(expected_log > 0, np.searchsorted(occ, expected_log) + 1, 0)
    )
    np.testing.assert_allclose(np.diff(np.log(log_edges)), np.log(0.05 / 2e-3) / 20, rtol=1e-9)


@pytest.mark.parametrize("name", BACKENDS)
@pytest.mark.parametrize(
    ("offset", "fold", "n_phi"),
    [(0.0, 1, 12), (30.0, 1, 8), (-75.0, 1, 5), (30.0, 2, 6), (10.0, 3, 4), (-45.0, 4, 3)],
)
def test_phi_bins_as_pysimplemask_assigns_them(name, offset, fold, n_phi):
    q, phi, mask = flat_detector()
    expected, distance = aps_phi_labels(phi, mask, n_phi, offset, fold)
    with use_backend(name):
        p = make_partition(q, phi, mask, n_q=1, n_phi=n_phi, phi_offset=offset, symmetry_fold=fold)
        roi = np_(p.roi_map)
        assert np_(p.index_mapping).tolist() == list(range(n_phi))  # every phi bin occupied: label = bin
    clear = distance > 1e-9  # pySimpleMask's wrap through exp/angle moves values by ~1e-14
    assert clear[mask].mean() > 0.99
    np.testing.assert_array_equal(roi[clear], expected[clear])
    # A pixel at a known direction: φ = -offset is direction 0 after the offset.
    with use_backend(name):
        (zero,) = np_(fold_phi(np.array([-offset]), offset, fold))
    assert zero == (0.0 if fold == 1 else 180.0 % (360.0 / fold))


# ------------------------------------------------------- remainder without fmod (speed)
def _mod_cases(m):
    """Values where a remainder is delicate: multiples of m and their neighbours, tiny and
    signed zeros, both signs, up to just below 2**52 (no subnormals: XLA on CPU flushes them)."""
    base = [0.0, -0.0, 1e-300, -1e-300, 1e-20, -1e-20, 0.5, -0.5, 179.99999999999997]
    for k in (1, 2, 3, 7, 1000, 2**20, 2**40, 2**52 // int(m) - 1):
        for v in (k * m, -k * m):
            base += [v, np.nextafter(v, np.inf), np.nextafter(v, -np.inf)]
    rng = np.random.default_rng(3)
    base += list(rng.uniform(-4 * m, 4 * m, 400)) + list(rng.uniform(-1e15, 1e15, 100))
    values = np.array(base)
    return values[np.abs(values) < 2.0**52]


@pytest.mark.parametrize("name", BACKENDS)
@pytest.mark.parametrize("m", [360.0, 180.0, 120.0, 90.0, 45.0, 1.0])
def test_mod_is_numpy_mod_bit_for_bit(name, m):
    """The arithmetic remainder equals numpy.mod exactly (sign of zero included)."""
    from xpcs_kernels.partitions import _mod

    values = _mod_cases(m)
    want = np.mod(values, m)
    with use_backend(name) as b:
        for fun in (lambda y: _mod(y, m), b.jit(lambda y: _mod(y, m))):
            got = np_(fun(b.asarray(values)))
            assert got.tobytes() == want.tobytes(), values[got != want][:5]


@pytest.mark.parametrize("name", BACKENDS)
def test_mod_non_integer_modulus_uses_the_backend_mod(name):
    from xpcs_kernels.partitions import _mod

    values = _mod_cases(360.0 / 7)
    with use_backend(name) as b:
        np.testing.assert_allclose(
            np_(_mod(b.asarray(values), 360.0 / 7)), np.mod(values, 360.0 / 7), rtol=1e-15
        )


@pytest.mark.parametrize("name", BACKENDS)
def test_fold_phi_beyond_any_angle_is_nan(name):
    """|phi| >= 2**50 degrees holds no fraction of a turn: NaN, like a non-finite value."""
    big = 2.0**50
    with use_backend(name) as b:
        out = np_(
            b.jit(fold_phi, static_argnums=(1, 2))(b.asarray([big, -big, np.nextafter(big, 0), 10.0]), 0.0, 2)
        )
        assert np.isnan(out[:2]).all()
        assert out[2] == np.mod(np.nextafter(big, 0) + 180.0, 180.0)
        assert out[3] == 10.0
        with pytest.raises(ValueError, match="phi_offset must be an angle"):
            fold_phi([0.0], 2.0**50)


@pytest.mark.parametrize("name", BACKENDS)
def test_make_partition_counts_huge_phi_with_the_nans(name):
    q = np.linspace(0.01, 0.02, 12).reshape(3, 4)
    phi = np.linspace(-170.0, 170.0, 12).reshape(3, 4)
    phi[1, 2] = 1e300
    with use_backend(name):
        with pytest.raises(ValueError, match=r"1 valid pixels have a non-finite .*2\*\*50"):
            make_partition(q, phi, None, n_q=2, n_phi=2)
        part = make_partition(q, phi, None, n_q=2, n_phi=2, nan="exclude")
        roi = np_(part.roi_map)
        assert roi[1, 2] == 0
        assert (np.delete(roi.ravel(), 6) > 0).all()
