"""The error of D from the data's own scatter: a jackknife over the static bins.

Why: the g2 of one bin is correlated from delay to delay (every delay comes from the same
pixels and overlapping frame pairs), and the least-squares fits of g2 treat the delays as
independent, so their error of tau, and with it the error of D, is too small (on the
simulated demo runs by a factor of about 1.4).

How: the g2 of a dynamic bin is the plain mean of the g2 of the static bins inside it
(:mod:`xpcs_kernels.multitau_normalize`), and static bins hold disjoint pixels, so they are
independent pieces of the measurement whatever the correlation between delays. Leaving out
static bin ``j`` of dynamic bin ``h`` gives that bin a g2 (the mean of the others) and an
effective q (from the others' q, as :func:`xpcs_suite.pipeline.fit` computes it), a refitted
tau and a replicate ``D_hj``; the variance of ``D`` is the stratified delete-one jackknife
(strata = dynamic bins, :func:`stratified_jackknife_variance`)::

    var(D) = sum_h (n_h - 1) / n_h * sum_j (D_hj - mean_j D_hj)**2

which for a statistic linear in the static bins' g2 is exactly the sample estimate of its
variance (the unstratified form, ``(n - 1) / n`` over all replicates, would overestimate
it by ``n_h / (n_h - 1)``). It assumes independent static bins: where a speckle spans
several pixels, neighbouring static bins share a little of it and the error comes out
slightly low.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["LeaveOneOut", "leave_one_static_out", "static_to_dynamic", "stratified_jackknife_variance"]

_Array = np.ndarray[Any, Any]


def stratified_jackknife_variance(replicates: Any, strata: Any) -> float:
    """``sum_h (n_h - 1) / n_h * sum_j (x_hj - mean_h x)**2`` of the delete-one ``replicates``
    ``(R,)`` of a statistic, grouped by ``strata`` ``(R,)`` (any labels): every stratum needs
    at least 2 replicates, and every replicate must be finite."""
    x = np.asarray(replicates, dtype=np.float64)
    labels = np.asarray(strata)
    if x.ndim != 1 or labels.shape != x.shape:
        raise ValueError(
            f"replicates and strata must be 1-D of one length, got shapes {x.shape} and {labels.shape}"
        )
    if x.size == 0:
        raise ValueError("no replicates: a jackknife needs at least one stratum of 2 replicates")
    if not np.all(np.isfinite(x)):
        raise ValueError("every replicate must be finite (a failed refit cannot enter a jackknife)")
    _, index, counts = np.unique(labels, return_inverse=True, return_counts=True)
    if counts.min() < 2:
        raise ValueError("every stratum needs at least 2 replicates (delete-one of 2 or more groups)")
    means = np.bincount(index, x) / counts
    squares = np.bincount(index, (x - means[index]) ** 2)
    return float(np.sum((counts - 1) / counts * squares))


def static_to_dynamic(static_roi_map: Any, dynamic_roi_map: Any, n_static: int) -> _Array:
    """``(n_static,)`` the dynamic label (1-based) holding each static label's pixels, 0 for a
    static label without pixels inside a dynamic bin. Raises ``ValueError`` if a static label
    lies in two dynamic bins (the partitions are not nested)."""
    static = np.asarray(static_roi_map).ravel().astype(np.int64)
    dynamic = np.asarray(dynamic_roi_map).ravel().astype(np.int64)
    if static.shape != dynamic.shape:
        raise ValueError(
            f"the static and dynamic maps differ in size ({static.size} and {dynamic.size} pixels)"
        )
    both = (static > 0) & (dynamic > 0) & (static <= n_static)
    out = np.zeros(n_static, dtype=np.int64)
    s, d = static[both], dynamic[both]
    out[s - 1] = d
    if np.any(out[s - 1] != d):
        raise ValueError("a static bin lies in two dynamic bins: the partitions are not nested")
    return out


@dataclass(frozen=True)
class LeaveOneOut:
    """The replicates of :func:`leave_one_static_out`: column ``r`` of ``g2`` is dynamic bin
    ``bins[r]`` (0-based) without static bin ``left_out[r]`` (0-based); ``q`` its effective q."""

    g2: _Array
    """``(n_delay, R)`` mean g2 of the remaining static bins."""
    q: _Array
    """``(R,)`` root mean square of the remaining static bins' q."""
    bins: _Array
    left_out: _Array


def leave_one_static_out(g2_static: Any, q_static: Any, owner: Any, bins: Any) -> LeaveOneOut:
    """Delete-one replicates of the dynamic ``bins`` (0-based): each dynamic g2 is the mean of
    its static bins' g2 (``g2_static`` ``(n_delay, K_static)``, ``owner`` from
    :func:`static_to_dynamic`), recomputed without one of them at a time, with its q² the
    mean ``q_static**2`` of the rest. Bins with fewer than 2 static bins raise ``ValueError``."""
    g2s = np.asarray(g2_static, dtype=np.float64)
    q2 = np.asarray(q_static, dtype=np.float64) ** 2
    owner = np.asarray(owner, dtype=np.int64)
    columns: list[_Array] = []
    q_out: list[_Array] = []
    bin_of: list[_Array] = []
    left: list[_Array] = []
    for k in np.asarray(bins, dtype=np.int64):
        members = np.flatnonzero(owner == k + 1)
        n = members.size
        if n < 2:
            raise ValueError(
                f"dynamic bin {k + 1} holds {n} static bin(s); leaving one out needs at least 2 "
                "(analyse with more static than dynamic q bins, e.g. --static-q 10x --dynamic-q)"
            )
        block = g2s[:, members]
        total = block.sum(axis=1, keepdims=True)
        columns.append((total - block) / (n - 1))
        q_out.append(np.sqrt((q2[members].sum() - q2[members]) / (n - 1)))
        bin_of.append(np.full(n, k))
        left.append(members)
    if not columns:
        empty = np.zeros(0, dtype=np.int64)
        return LeaveOneOut(np.zeros((g2s.shape[0], 0)), np.zeros(0), empty, empty)
    return LeaveOneOut(
        np.concatenate(columns, axis=1),
        np.concatenate(q_out),
        np.concatenate(bin_of),
        np.concatenate(left),
    )
