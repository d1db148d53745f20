"""Compiled loops called from several Python threads at once, under numba's workqueue
threading layer (the fallback where neither OpenMP nor TBB is installed), which terminates
the process on concurrent parallel launches unless the kernels serialise them."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

pytest.importorskip("numba", reason="numba is a dependency of xpcs-kernels")

SCRIPT = textwrap.dedent(
    """
    import threading

    import numpy as np

    import xpcs_device
    from xpcs_kernels.multitau import multitau
    from xpcs_kernels.twotime import twotime
    from xpcs_kernels.twotime_sparse import twotime_events

    xpcs_device.set_backend("numpy")
    rng = np.random.default_rng(0)
    static = rng.integers(1, 9, size=(16, 40))
    dynamic = (static + 1) // 2
    frames = rng.poisson(0.5, size=(64, 16, 40)).astype(np.uint8)
    t, r, c = np.nonzero(frames)
    pixel, count = r * 40 + c, frames[t, r, c].astype(np.float64)

    jobs = {
        "multitau": lambda: multitau(frames, static, dynamic, compiled=True).normalized_g2,
        "twotime": lambda: twotime(frames, dynamic, static, dtype=np.float64, compiled=True).c2,
        "events": lambda: twotime_events(
            t, pixel, count, 64, dynamic, static, dtype=np.float64, compiled=True
        ).c2,
    }
    serial = {name: job() for name, job in jobs.items()}
    errors = []

    def run(name):
        try:
            for _ in range(5):
                np.testing.assert_array_equal(jobs[name](), serial[name])
        except Exception as exc:  # reported below: a thread's exception is otherwise lost
            errors.append(f"{name}: {exc!r}")

    threads = [threading.Thread(target=run, args=(name,)) for name in jobs for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors, errors
    import numba

    print("layer", numba.threading_layer())
    """
)


def test_concurrent_calls_under_workqueue() -> None:
    env = {**os.environ, "NUMBA_THREADING_LAYER": "workqueue", "XPCS_USE_JAX": "0"}
    proc = subprocess.run(
        [sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True, timeout=600, check=False
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "layer workqueue" in proc.stdout
