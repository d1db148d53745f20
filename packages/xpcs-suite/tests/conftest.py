"""Shared fixtures: a small simulated raw file and a result file built from it with the
kernels (partitions, reductions) and a brute-force multi-tau g2 in plain NumPy."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from xpcs_device import reset_backend
from xpcs_suite.results import InstrumentFields, MultitauFields, QMapFields, ReductionsFields

SMALL = {"n_frames": 240, "shape": (48, 56), "seed": 3}
LAGS = np.array([1, 2, 3, 4, 5, 6, 7, 8, 10, 12, 14, 16, 20, 24, 28, 32, 40, 48, 56, 64])


@pytest.fixture(autouse=True)
def _no_backend_selected(fresh_backend: None) -> None:
    """Every test of the suite starts and ends with no backend selected."""


@pytest.fixture(scope="session")
def two_bin_fields() -> Callable[..., dict[str, Any]]:
    """A factory of the smallest complete :func:`write_result` arguments: bins 1 and 2 of
    ``roi`` (the same map static and dynamic, q 0.01 and 0.02 1/Å), 3 delays, frame time 1 ms.
    ``mask`` defaults to all valid, ``image`` to ones, ``g2`` to ones."""

    def make(
        roi: np.ndarray,
        *,
        mask: np.ndarray | None = None,
        image: np.ndarray | None = None,
        g2: np.ndarray | None = None,
        beam_center_px: tuple[float, float] = (1.0, 2.0),
    ) -> dict[str, Any]:
        shape = roi.shape
        qmap = QMapFields(
            mask=np.ones(shape) if mask is None else mask,
            dynamic_roi_map=roi,
            static_roi_map=roi,
            dynamic_v_list_dim0=[0.01, 0.02],
            dynamic_v_list_dim1=[0.0],
            static_v_list_dim0=[0.01, 0.02],
            static_v_list_dim1=[0.0],
            dynamic_index_mapping=[0, 1],
            static_index_mapping=[0, 1],
            dynamic_num_pts=(2, 1),
            static_num_pts=(2, 1),
            beam_center_x_px=beam_center_px[0],
            beam_center_y_px=beam_center_px[1],
            detector_distance_m=5.0,
            pixel_size_m=75e-6,
        )
        g2 = np.ones((3, 2)) if g2 is None else g2
        return {
            "qmap": qmap,
            "reductions": ReductionsFields(
                np.ones(shape) if image is None else image, [2.0, 1.0], np.ones((2, 2)), np.ones((2, 10))
            ),
            "instrument": InstrumentFields(1e-3, 10.0, 75e-6, 75e-6, 5.0, *beam_center_px),
            "multitau": MultitauFields(g2, np.full(g2.shape, 0.01), [1, 2, 4]),
        }

    return make


def brute_force_g2(
    frames: np.ndarray, static_roi: np.ndarray, dynamic_roi: np.ndarray, lags: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """APS scheme at level 0 only: per pixel G2, IP, IF over the valid frame pairs; per static
    bin G2 / (IP IF) of the bin means; dynamic g2 = mean of its static bins; error = spread of
    the per-pixel g2 over the dynamic bin / sqrt(pixels)."""
    x = frames.reshape(frames.shape[0], -1).astype(np.float64)
    s, d = static_roi.ravel(), dynamic_roi.ravel()
    n_dyn = int(d.max())
    g2 = np.zeros((lags.size, n_dyn))
    err = np.zeros_like(g2)
    for i, lag in enumerate(lags):
        a, b = x[:-lag], x[lag:]
        big_g2, ip, i_f = (a * b).mean(0), a.mean(0), b.mean(0)
        with np.errstate(invalid="ignore", divide="ignore"):
            pixel = big_g2 / (ip * i_f)
        for k in range(1, n_dyn + 1):
            in_dyn = d == k
            statics = np.unique(s[in_dyn & (s > 0)])
            per_static = [big_g2[s == j].mean() / (ip[s == j].mean() * i_f[s == j].mean()) for j in statics]
            g2[i, k - 1] = np.mean(per_static)
            values = pixel[in_dyn & np.isfinite(pixel)]
            err[i, k - 1] = values.std() / np.sqrt(max(1, values.size))
    return g2, err


@pytest.fixture(scope="session")
def simulated_raw(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Any]:
    from xpcs_suite.simulation import SimulationParameters, write_raw_file

    path = tmp_path_factory.mktemp("raw") / "raw.h5"
    sample = write_raw_file(path, SimulationParameters(**SMALL))
    return path, sample


@pytest.fixture(scope="session")
def build_result(simulated_raw: tuple[Path, Any]) -> Callable[..., Path]:
    """``build_result(path, twotime=False, n_phi=1)``: writes a result file from the small
    simulation and returns its path."""
    import h5py

    from xpcs_kernels.partitions import make_partitions
    from xpcs_kernels.qmap import compute_qmap
    from xpcs_kernels.reductions import reduce_frames
    from xpcs_suite.results import (
        InstrumentFields,
        MultitauFields,
        QMapFields,
        ReductionsFields,
        TwotimeFields,
        write_result,
    )

    raw_path, sample = simulated_raw
    with h5py.File(raw_path, "r") as h5:
        frames = h5["/entry/data/data"][()]
    params = sample.parameters

    def build(path: Path, *, twotime: bool = False, n_phi: int = 1, overwrite: bool = False) -> Path:
        reset_backend()
        geometry = params.geometry
        qmap = compute_qmap(geometry, params.shape, quantities=("q_aps_inv_angstrom", "phi_deg"))
        q = np.asarray(qmap.q_aps_inv_angstrom)
        phi = np.asarray(qmap.phi_deg)
        static, dynamic = make_partitions(q, phi, sample.mask, dynamic=(4, n_phi), static=(16, n_phi))
        sroi, droi = np.asarray(static.roi_map), np.asarray(dynamic.roi_map)
        red = reduce_frames(frames, sroi, static.num_labels, n_segments=4, frame_time=params.frame_time_s)
        g2, err = brute_force_g2(frames, sroi, droi, LAGS)
        two = None
        if twotime:
            maps, g2_two, g2_seg = [], [], []
            seg = frames.shape[0] // 4
            x = frames.reshape(frames.shape[0], -1).astype(np.float64)
            for k in range(1, dynamic.num_labels + 1):
                ts = x[:, droi.ravel() == k]
                mean = ts.mean(1)
                c2 = (ts @ ts.T) / ts.shape[1] / np.outer(mean, mean)
                maps.append(c2)
                g2_two.append([np.diagonal(c2, t).mean() for t in range(c2.shape[0])])
                blocks = [c2[i * seg : (i + 1) * seg, i * seg : (i + 1) * seg] for i in range(4)]
                g2_seg.append([[np.diagonal(b, t).mean() for b in blocks] for t in range(seg)])
            two = TwotimeFields(
                maps=maps,
                processed_bins=np.arange(1, dynamic.num_labels + 1),
                g2=np.asarray(g2_two).T,
                g2_segments=np.moveaxis(np.asarray(g2_seg), 0, 2),
            )
        return write_result(
            path,
            qmap=QMapFields.from_partitions(static, dynamic, sample.mask, geometry),
            reductions=ReductionsFields.from_reductions(red),
            instrument=InstrumentFields(
                frame_time_s=params.frame_time_s,
                energy_kev=params.energy_kev,
                x_pixel_size_m=params.pixel_size_m,
                y_pixel_size_m=params.pixel_size_m,
                distance_m=params.distance_m,
                beam_center_x_px=params.beam_center_x_px,
                beam_center_y_px=params.beam_center_y_px,
                start_time="2025-01-01T00:00:00+00:00",
                metadata={"sample": "simulated colloids"},
            ),
            multitau=MultitauFields(g2=g2, g2_err=err, delay_list=LAGS),
            twotime=two,
            overwrite=overwrite,
        )

    return build
