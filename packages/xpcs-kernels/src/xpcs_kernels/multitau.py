"""Multi-tau g2: a streaming per-pixel correlator with the APS delay list and normalisation.

One pass over frames that arrive in chunks, memory bounded by the multi-tau buffers
(about ``(2 * dpl + 4) * levels`` rows of P float64 values, independent of the number of
frames), in the functional style of :mod:`xpcs_kernels.reductions`::

    state = init_multitau(static_labels, dynamic_labels, n_frames_total=N)
    for chunk in iter_frame_chunks(dataset):
        state = update_multitau(state, chunk)
    result = finalize_multitau(state, frame_time=0.001)

or in one call with :func:`multitau`. Photon events (frame, pixel, count) go through
:func:`xpcs_kernels.multitau_sparse.multitau_events` with the same results.

Definitions (``lags_per_level`` = dpl = 4 by default):

- Effective frames: with ``stride`` s and ``avg`` a, effective frame k is the mean of the
  input frames ``k*s*a + j*s`` (j < a); a trailing incomplete block of ``s*a`` input frames
  is dropped (the APS rule: the frame range is rounded down to a multiple of ``s*a``).
- Levels and delays (:func:`delay_list`, boost_corr ``gen_tau_bin``): level 0 correlates
  lags 1..2dpl, level l >= 1 pair-sums the frames of level l-1 (an odd last frame is not
  passed up) and correlates relative lags dpl+1..2dpl, i.e. delays (dpl+1..2dpl)*2**l;
  a delay is kept while its relative lag is below the level's frame count ``N // 2**l``.
- Per pixel, lag ``tau`` of level l with ``n = N // 2**l`` frames x of the level (frame
  averages): ``G2 = <x[t] x[t+tau]>``, ``IP = <x[t]>``, ``IF = <x[t+tau]>``, all over
  ``t < n - tau`` (the symmetric normalisation).
- APS normalisation (:mod:`xpcs_kernels.multitau_normalize`): static bins first,
  ``g2_static = <G2>/(<IP><IF>)`` over each static bin's pixels, then the dynamic g2 is the
  mean of the static g2 of the static bins it contains; the error is the standard error of
  the per-pixel ``G2/(IP IF)`` over the dynamic bin's pixels that have photons.
- ``delay_list`` of the result: lag x stride x avg, times ``frame_time`` (seconds) when given.
- Partial g2 (``n_segments > 1``): the whole computation repeated independently on each
  of ``n_segments`` consecutive ranges of effective frames (``segment_bounds`` of
  :mod:`xpcs_kernels.reductions`), truncated to the delays of the shortest segment. It
  doubles the work.

Exactness: integer counts are summed exactly: inside a group of frames in int16 when the
largest count seen so far proves every sum stays below 2**15, in float32 below 2**24, in
int32 below 2**31, in float64 otherwise; the groups are added in float64, so integer
data give the exact sums of the definitions up to 2**53.

Bad input: labels that are not 2-D integer maps of the same shape, or not nested
(``check_nested``), or without a pixel in a static bin raise ``ValueError``; frames of
another shape raise ``ValueError``; NaN, infinite or negative counts raise
:class:`~xpcs_kernels.reductions.FrameValueError` (a ``ValueError``) naming the first
frame; fewer than 2 effective frames (no lag) raise ``ValueError`` at the end. Bins
without data give NaN and a ``RuntimeWarning``, never a number: a dynamic bin without a
pixel in a static bin (its whole column), a static bin without any photon at a delay
(that delay of its dynamic bin). Inputs are never modified.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

import xpcs_device
from xpcs_kernels import multitau_levels as lv
from xpcs_kernels.compiled import use_compiled
from xpcs_kernels.frames import _check_dtype, frame_count, iter_frame_chunks
from xpcs_kernels.multitau_normalize import BinMaps, Normalized, bin_maps, normalize
from xpcs_kernels.partitions import check_nested
from xpcs_kernels.reductions import FrameValueError, _frame_value_error, segment_bounds
from xpcs_protocol import Array, BackendProtocol

__all__ = [
    "MultitauResult",
    "MultitauState",
    "delay_list",
    "finalize_multitau",
    "init_multitau",
    "multitau",
    "update_multitau",
]

_DEFAULT_GROUP_PIXELS = 2**22  # level-0 group of frames ~ 4 Mi pixel-frames (stays in the last-level cache)
_COMPILED_GROUP_PIXELS = 2**24  # the compiled loop reads its group row by row: only rows need the cache


# ----------------------------------------------------------------------------- helpers
def _positive_int(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def delay_list(n_frames: int, lags_per_level: int = 4) -> np.ndarray[Any, Any]:
    """The APS multi-tau delays (int64, in frames) for a run of ``n_frames`` frames:
    ``1 .. 2*dpl``, then ``(dpl+1 .. 2*dpl) * 2**l`` while ``lag / 2**l < n_frames // 2**l``
    (``dpl = lags_per_level``; for dpl=4: 1..8, 10, 12, 14, 16, 20, 24, ...)."""
    n_frames = _positive_int(n_frames, "n_frames")
    dpl = _positive_int(lags_per_level, "lags_per_level")
    if n_frames < 2:
        raise ValueError(f"a correlation needs at least 2 frames (one lag), got n_frames={n_frames}")
    return np.asarray(
        [t * 2**level for level, lags in enumerate(lv.level_lags(n_frames, dpl)) for t in lags],
        dtype=np.int64,
    )


def _label_map(labels: Any, name: str) -> tuple[np.ndarray[Any, Any], int | None]:
    """A label map (array or Partition) as a host integer array and its bin count if known."""
    n_bins = None
    if hasattr(labels, "roi_map") and hasattr(labels, "num_labels"):
        n_bins = int(labels.num_labels)
        labels = labels.roi_map
    b = xpcs_device.get_backend()
    arr = np.asarray(b.to_numpy(labels)) if b.is_array(labels) else np.asarray(labels)
    if arr.ndim != 2:
        raise ValueError(f"{name} must be a 2-D (H, W) label map of the detector, got shape {arr.shape}")
    if arr.dtype.kind not in "iu":
        raise TypeError(
            f"{name} must be an integer label map (1..K, 0 = excluded), got dtype {arr.dtype}; "
            "pass Partition.roi_map"
        )
    if arr.size and int(arr.min()) < 0:
        raise ValueError(f"{name} has negative labels (min {int(arr.min())}); labels are 1..K, 0 = excluded")
    return arr, n_bins


def _make_maps(static_labels: Any, dynamic_labels: Any) -> BinMaps:
    static, ns = _label_map(static_labels, "static_labels")
    dynamic, nd = _label_map(dynamic_labels, "dynamic_labels")
    if static.shape != dynamic.shape:
        raise ValueError(
            f"static_labels has shape {static.shape} but dynamic_labels {dynamic.shape}; both "
            "partitions must cover the same detector"
        )
    n_static = int(static.max(initial=0)) if ns is None else ns
    n_dynamic = int(dynamic.max(initial=0)) if nd is None else nd
    if n_static == 0 or not (static > 0).any():
        raise ValueError("static_labels has no pixel in a bin (every label is 0); nothing to correlate")
    if int(static.max()) > n_static or int(dynamic.max(initial=0)) > n_dynamic:
        raise ValueError("a label exceeds the partition's number of bins (num_labels)")
    check_nested(static, dynamic)
    return bin_maps(static, dynamic, n_static, n_dynamic)


def _auto_group(n_pixels: int, compiled: bool) -> int:
    # the compiled loop's per-call cost (the float64 sums updated once per call) wants
    # larger groups; float32 stays exact for 2**24 / count**2 frames
    if compiled:
        target = max(8, min(512, _COMPILED_GROUP_PIXELS // max(1, n_pixels)))
    else:
        target = max(8, min(128, _DEFAULT_GROUP_PIXELS // max(1, n_pixels)))
    return 1 << (target.bit_length() - 1)


# ------------------------------------------------------------------------------ types
@dataclass(frozen=True, eq=False)
class MultitauState:
    """The running state of the streaming correlator (see :func:`init_multitau`).

    Treat it as opaque and immutable: pass it to :func:`update_multitau` and
    :func:`finalize_multitau`. Arrays live on the backend active at :func:`init_multitau`
    (``backend``), which must stay active.
    """

    backend: str
    maps: BinMaps
    lags_per_level: int
    stride: int
    avg: int
    n_frames_total: int | None
    """Input frames announced (None: unknown)."""
    segment_bounds: tuple[int, ...] | None
    """Effective-frame boundaries of the partial-g2 segments (None: no partial g2)."""
    group: int
    compiled: bool
    """Whether the lag sums and the normalisation run the compiled CPU loops
    (:func:`xpcs_kernels.compiled.use_compiled`, decided at :func:`init_multitau`)."""
    raw_dtype: np.dtype[Any] | None
    count_bound: int | None
    """Largest effective count seen so far for integer input (None: float input / nothing)."""
    core: lv.Core | None
    segment_core: lv.Core | None
    segment_results: tuple[Normalized, ...]
    carry: np.ndarray[Any, Any] | None
    """Input frames of an incomplete stride x avg block (host, only when stride*avg > 1)."""
    n_input: int
    """Input frames seen."""
    n_frames: int
    """Effective frames fed to the correlator."""


@dataclass(frozen=True, eq=False)
class MultitauResult:
    """Multi-tau g2 shaped for the APS result file (``/xpcs/multitau``); arrays of the
    active backend, float64. Definitions in the :mod:`xpcs_kernels.multitau` docstring."""

    normalized_g2: Array
    """``(n_delay, K_dynamic)`` g2 of each dynamic bin."""
    normalized_g2_err: Array
    """``(n_delay, K_dynamic)`` its standard error (pixel spread)."""
    delay_list: np.ndarray[Any, Any]
    """``(n_delay,)`` float64 delays: lag x stride x avg input frames, x frame_time in
    seconds when ``frame_time`` was given."""
    delay_frames: np.ndarray[Any, Any]
    """``(n_delay,)`` int64 lags in effective frames."""
    static_g2: Array
    """``(n_delay, K_static)`` g2 of each static bin (NaN for empty static bins)."""
    G2: Array | None
    """``(n_delay, H, W)`` per-pixel G2 (``keep_unnormalized=True``; NaN outside the static bins)."""
    IP: Array | None
    IF: Array | None
    g2_partial: Array | None
    """``(n_segments, n_delay_partial, K_dynamic)`` g2 of each segment (``n_segments > 1``)."""
    g2_partial_err: Array | None
    partial_delay_list: np.ndarray[Any, Any] | None
    segment_bounds: tuple[int, ...] | None
    """Effective-frame boundaries of the segments."""
    n_frames: int
    """Effective frames correlated."""
    stride: int
    avg: int
    frame_time: float | None
    lags_per_level: int
    static_num_pts: np.ndarray[Any, Any]
    dynamic_num_pts: np.ndarray[Any, Any]


# ------------------------------------------------------------------------- public API
def init_multitau(
    static_labels: Any,
    dynamic_labels: Any,
    *,
    frame_shape: tuple[int, int] | None = None,
    n_frames_total: int | None = None,
    lags_per_level: int = 4,
    stride: int = 1,
    avg: int = 1,
    n_segments: int = 1,
    group_frames: int | None = None,
    compiled: bool | None = None,
) -> MultitauState:
    """The empty correlator for frames of the label maps' shape.

    ``static_labels`` / ``dynamic_labels``: ``(H, W)`` integer label maps 1..K (0
    excluded) or :class:`~xpcs_kernels.partitions.Partition` objects, nested (every
    static bin inside one dynamic bin). ``n_frames_total``: input frames that will be
    streamed (required for ``n_segments > 1``; otherwise checked at the end if given).
    ``stride`` / ``avg``: APS frame stride and averaging. ``group_frames``: frames per
    compiled call at level 0 (a power of two >= 8; default from the pixel count).
    ``compiled``: None (default) runs the numba CPU loops where the arrays are on a CPU and
    numba is installed, True requires them, False keeps the backend's array formulation (see
    :mod:`xpcs_kernels.compiled`); every choice gives the same sums.
    """
    use_loops = use_compiled(compiled)
    dpl = _positive_int(lags_per_level, "lags_per_level")
    stride = _positive_int(stride, "stride")
    avg = _positive_int(avg, "avg")
    n_segments = _positive_int(n_segments, "n_segments")
    maps = _make_maps(static_labels, dynamic_labels)
    if frame_shape is not None and tuple(frame_shape) != maps.frame_shape:
        raise ValueError(
            f"frame_shape {tuple(frame_shape)} differs from the label maps' shape {maps.frame_shape}"
        )
    n_pixels = maps.static.shape[0]
    if group_frames is None:
        group = _auto_group(n_pixels, use_loops)
    else:
        group = _positive_int(group_frames, "group_frames")
        if group < 8 or group & (group - 1):
            raise ValueError(f"group_frames must be a power of two >= 8, got {group}")
    bounds = None
    if n_frames_total is not None:
        n_frames_total = _positive_int(n_frames_total, "n_frames_total")
        n_eff = n_frames_total // (stride * avg)
        if n_eff < 2:
            raise ValueError(
                f"{n_frames_total} frames with stride={stride}, avg={avg} give {n_eff} effective "
                "frame(s); a correlation needs at least 2 (one lag)"
            )
        if n_segments > 1:
            bounds = segment_bounds(n_eff, n_segments)
            if n_eff // n_segments < 2:
                raise ValueError(
                    f"segments of {n_eff // n_segments} effective frame(s) have no lag; lower n_segments"
                )
    elif n_segments > 1:
        raise ValueError(
            f"n_segments={n_segments} needs the number of frames up front to place the segment "
            "boundaries; pass n_frames_total"
        )
    return MultitauState(
        backend=xpcs_device.get_backend().name,
        maps=maps,
        lags_per_level=dpl,
        stride=stride,
        avg=avg,
        n_frames_total=n_frames_total,
        segment_bounds=bounds,
        group=group,
        compiled=use_loops,
        raw_dtype=None,
        count_bound=None,
        core=None,
        segment_core=None,
        segment_results=(),
        carry=None,
        n_input=0,
        n_frames=0,
    )


def _active_backend(state: MultitauState) -> BackendProtocol:
    b = xpcs_device.get_backend()
    if b.name != state.backend:
        raise RuntimeError(
            f"this multi-tau state was created under the {state.backend!r} backend but {b.name!r} "
            "is active now; keep one backend for init, update and finalize"
        )
    return b


def _effective_dtype(raw: np.dtype[Any], avg: int) -> np.dtype[Any]:
    if avg == 1:
        return raw
    if raw.kind == "f":
        return np.dtype(np.float64)
    return np.dtype(np.int64)


def _static_bound(eff: np.dtype[Any], raw: np.dtype[Any], avg: int) -> int | None:
    if raw.kind == "f":
        return None
    return int(np.iinfo(raw).max) * avg


def _check_values(data: np.ndarray[Any, Any], offset: int) -> int | None:
    """Raises for NaN, infinite or negative counts; returns the largest count of integer
    data (None for float data). The bound lets the correlator accumulate in float32 or
    int32 where that is exact; sparse 8-bit counts (max ~5) gain most, for ~2 ms/100 MB."""
    kind = data.dtype.kind
    bad = False
    if kind == "f":
        bad = not bool(np.isfinite(data).all()) or bool((data < 0).any())
    elif kind == "i":
        bad = data.size > 0 and int(data.min()) < 0
    if bad:
        err = _frame_value_error(data, offset, False)
        raise err if err is not None else FrameValueError(f"bad frame values from frame {offset}")
    if kind in "iu" and data.size:
        return int(data.max())
    return None


def _shape_chunk(state: MultitauState, chunk: Any) -> tuple[MultitauState, np.ndarray[Any, Any] | None]:
    """Validated effective frames ``(m, P)`` (host) of a chunk, and the state's bookkeeping."""
    if not hasattr(chunk, "dtype") or not hasattr(chunk, "shape"):
        chunk = np.asarray(chunk)
    b = xpcs_device.get_backend()
    if b.is_array(chunk):
        chunk = np.asarray(b.to_numpy(chunk))
    chunk = np.asarray(chunk)
    if chunk.ndim != 3:
        raise ValueError(
            f"a chunk of frames must be 3-D (n, H, W), got shape {chunk.shape}; a single frame is frame[None]"
        )
    dtype = _check_dtype(chunk.dtype, f"the chunk at frame {state.n_input}")
    if tuple(chunk.shape[1:]) != state.maps.frame_shape:
        raise ValueError(
            f"frames of shape {tuple(chunk.shape[1:])} (chunk at frame {state.n_input}) do not match the "
            f"label maps' shape {state.maps.frame_shape}; the partition must be made for this detector"
        )
    if state.raw_dtype is not None and dtype != state.raw_dtype:
        raise TypeError(
            f"the chunk at frame {state.n_input} has dtype {dtype} but earlier frames {state.raw_dtype}; "
            "convert the frames to one dtype"
        )
    n = chunk.shape[0]
    if state.n_frames_total is not None and state.n_input + n > state.n_frames_total:
        raise ValueError(
            f"frames {state.n_input}..{state.n_input + n - 1} go beyond "
            f"n_frames_total={state.n_frames_total}; "
            "the source has more frames than announced"
        )
    flat = chunk.reshape(n, -1)
    peak = _check_values(flat, state.n_input)
    state = replace(state, raw_dtype=dtype, n_input=state.n_input + n)
    if peak is not None:
        state = replace(state, count_bound=max(state.count_bound or 0, peak * state.avg))
    block = state.stride * state.avg
    if block > 1:
        data = flat if state.carry is None else np.concatenate([state.carry, flat])
        whole = data.shape[0] // block * block
        carry = data[whole:].copy() if whole < data.shape[0] else None
        picked = data[:whole].reshape(whole // block, state.avg, state.stride, data.shape[1])[:, :, 0]
        eff = picked.sum(axis=1, dtype=_effective_dtype(dtype, state.avg))
        state = replace(state, carry=carry)
        flat = eff
    if state.maps.pixels is not None:
        flat = np.take(flat, state.maps.pixels, axis=1)
    return state, (flat if flat.shape[0] else None)


def _bound(state: MultitauState) -> int | None:
    assert state.raw_dtype is not None
    eff = _effective_dtype(state.raw_dtype, state.avg)
    static = _static_bound(eff, state.raw_dtype, state.avg)
    if static is None:
        return None
    if state.count_bound is None:
        return static
    return min(static, state.count_bound)


def _new_core(state: MultitauState, n_eff: int | None) -> lv.Core:
    assert state.raw_dtype is not None
    eff = _effective_dtype(state.raw_dtype, state.avg)
    max_levels = len(lv.level_lags(n_eff, state.lags_per_level)) if n_eff is not None else 61
    return lv.new_core(
        state.maps.static.shape[0],
        state.lags_per_level,
        state.group,
        eff,
        _static_bound(eff, state.raw_dtype, state.avg),
        max_levels,
        compiled=state.compiled,
    )


def update_multitau(
    state: MultitauState, chunk: Any, *, jit: bool = True, consume: bool = False
) -> MultitauState:
    """A new state with the frames of ``chunk`` ``(n, H, W)`` added (``state`` unchanged).

    Raises before changing anything for frames of the wrong shape or dtype, NaN, infinite
    or negative values. The array work runs under ``get_backend().jit`` unless ``jit=False``.
    ``consume=True``: the caller gives ``state`` up (``state = update_multitau(state, chunk,
    consume=True)``), so the compiled CPU loop may add into its per-pixel sums in place: one
    copy of them in memory instead of two while the update runs (half the peak for large
    detectors); ``state`` must not be used afterwards.
    """
    b = _active_backend(state)
    state, frames = _shape_chunk(state, chunk)
    if frames is None:
        return state
    n_eff_total = None if state.n_frames_total is None else state.n_frames_total // (state.stride * state.avg)
    if n_eff_total is not None:
        frames = frames[: max(0, n_eff_total - state.n_frames)]
    bound = _bound(state)
    core = state.core if state.core is not None else _new_core(state, n_eff_total)
    core = lv.feed(b, replace(core, owned=consume), frames, bound, jit=jit)
    state = replace(state, core=core)
    if state.segment_bounds is not None:
        state = _feed_segments(b, state, frames, bound, jit, consume)
    return replace(state, n_frames=state.n_frames + frames.shape[0])


def _feed_segments(
    b: BackendProtocol,
    state: MultitauState,
    frames: np.ndarray[Any, Any],
    bound: int | None,
    jit: bool,
    owned: bool,
) -> MultitauState:
    bounds = state.segment_bounds
    assert bounds is not None
    position = state.n_frames
    end = position + frames.shape[0]
    while position < end:
        seg = len(state.segment_results)
        seg_end = bounds[seg + 1]
        take = min(end, seg_end) - position
        core = state.segment_core
        if core is None:
            core = _new_core(state, seg_end - bounds[seg])
        offset = position - state.n_frames
        core = lv.feed(b, replace(core, owned=owned), frames[offset : offset + take], bound, jit=jit)
        position += take
        if position == seg_end:
            core = lv.flush(b, core, bound, jit=jit)
            result = normalize(
                b,
                lv.level_sums(b, core, jit=jit),
                state.maps,
                avg=state.avg,
                what=f"segment {seg}",
                compiled=state.compiled,
                jit=jit,
            )
            state = replace(state, segment_core=None, segment_results=(*state.segment_results, result))
        else:
            state = replace(state, segment_core=core)
    return state


def finalize_multitau(
    state: MultitauState,
    *,
    frame_time: float | None = None,
    keep_unnormalized: bool = False,
    jit: bool = True,
) -> MultitauResult:
    """The g2 of everything streamed (see the module docstring). ``frame_time``: seconds
    per input frame (the delays are then in seconds); ``keep_unnormalized``: also return
    the per-pixel G2, IP and IF."""
    b = _active_backend(state)
    if state.n_frames_total is not None and state.n_input != state.n_frames_total:
        raise ValueError(
            f"n_frames_total={state.n_frames_total} was announced but {state.n_input} frames were streamed"
        )
    if state.n_frames < 2 or state.core is None:
        raise ValueError(
            f"{state.n_input} frame(s) with stride={state.stride}, avg={state.avg} give "
            f"{state.n_frames} effective frame(s); a correlation needs at least 2 (one lag)"
        )
    if frame_time is not None and (not np.isfinite(frame_time) or frame_time <= 0):
        raise ValueError(f"frame_time must be a positive number of seconds, got {frame_time!r}")
    bound = _bound(state)
    core = lv.flush(b, state.core, bound, jit=jit)
    sums = lv.level_sums(b, core, jit=jit)
    norm = normalize(
        b, sums, state.maps, avg=state.avg, keep_pixels=keep_unnormalized, compiled=state.compiled, jit=jit
    )
    return assemble_result(
        b,
        norm,
        state.segment_results if state.segment_bounds is not None else None,
        maps=state.maps,
        segment_bounds=state.segment_bounds,
        n_frames=state.n_frames,
        stride=state.stride,
        avg=state.avg,
        frame_time=frame_time,
        lags_per_level=state.lags_per_level,
    )


def assemble_result(
    b: BackendProtocol,
    norm: Any,
    parts: Sequence[Any] | None,
    *,
    maps: BinMaps,
    segment_bounds: tuple[int, ...] | None,
    n_frames: int,
    stride: int,
    avg: int,
    frame_time: float | None,
    lags_per_level: int,
) -> MultitauResult:
    """The result of the whole run's normalised sums ``norm`` and, with segments, of each
    segment's (``parts``, truncated to the shortest segment's delays); delays in seconds
    when ``frame_time`` is given. Shared by the dense and the photon-event paths."""
    scale = float(stride * avg) * (1.0 if frame_time is None else float(frame_time))
    g2_partial = g2_partial_err = partial_delays = None
    if parts is not None:
        n_delay = min(r.delays.shape[0] for r in parts)
        g2_partial = b.stack([r.g2[:n_delay] for r in parts])
        g2_partial_err = b.stack([r.g2_err[:n_delay] for r in parts])
        partial_delays = parts[0].delays[:n_delay].astype(np.float64) * scale
    return MultitauResult(
        normalized_g2=norm.g2,
        normalized_g2_err=norm.g2_err,
        delay_list=norm.delays.astype(np.float64) * scale,
        delay_frames=norm.delays,
        static_g2=norm.g2_static,
        G2=norm.G2,
        IP=norm.IP,
        IF=norm.IF,
        g2_partial=g2_partial,
        g2_partial_err=g2_partial_err,
        partial_delay_list=partial_delays,
        segment_bounds=segment_bounds,
        n_frames=n_frames,
        stride=stride,
        avg=avg,
        frame_time=frame_time,
        lags_per_level=lags_per_level,
        static_num_pts=maps.static_counts,
        dynamic_num_pts=maps.dynamic_counts,
    )


def multitau(
    frames_source: Any,
    static_labels: Any,
    dynamic_labels: Any,
    *,
    frame_time: float | None = None,
    lags_per_level: int = 4,
    stride: int = 1,
    avg: int = 1,
    n_segments: int = 1,
    keep_unnormalized: bool = False,
    chunk_frames: int | None = None,
    start: int = 0,
    stop: int | None = None,
    n_frames_total: int | None = None,
    group_frames: int | None = None,
    compiled: bool | None = None,
    jit: bool = True,
) -> MultitauResult:
    """Multi-tau g2 of frames ``[start, stop)`` of ``frames_source`` in one streaming pass.

    ``frames_source``: anything :func:`~xpcs_kernels.frames.iter_frame_chunks` reads (an
    ``(N, H, W)`` array, an ``h5py.Dataset``, an iterable of chunks or frames), read
    ``chunk_frames`` frames at a time. A plain iterable has no length, so
    ``n_segments > 1`` then needs ``n_frames_total``. Other arguments as in
    :func:`init_multitau` and :func:`finalize_multitau`.
    """
    known = frame_count(frames_source, start=start, stop=stop)
    if known is not None and n_frames_total is not None and known != n_frames_total:
        raise ValueError(f"n_frames_total={n_frames_total} but the source has {known} frames in the range")
    total = known if known is not None else n_frames_total
    if total is not None and total < 2:
        raise ValueError(
            f"the source has {total} frame(s) in the range; a correlation needs at least 2 (one lag)"
        )
    state = init_multitau(
        static_labels,
        dynamic_labels,
        n_frames_total=total,
        lags_per_level=lags_per_level,
        stride=stride,
        avg=avg,
        n_segments=n_segments,
        group_frames=group_frames,
        compiled=compiled,
    )
    shape = getattr(frames_source, "shape", None)
    if shape is not None and len(shape) == 3 and tuple(shape[1:]) != state.maps.frame_shape:
        raise ValueError(
            f"frames of shape {tuple(shape[1:])} do not match the label maps' shape "
            f"{state.maps.frame_shape}; "
            "the partition must be made for this detector"
        )
    chunks: Iterable[Any] = iter_frame_chunks(frames_source, chunk_frames, start=start, stop=stop)
    for chunk in chunks:
        state = update_multitau(state, chunk, jit=jit, consume=True)
    return finalize_multitau(state, frame_time=frame_time, keep_unnormalized=keep_unnormalized, jit=jit)
