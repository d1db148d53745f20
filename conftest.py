"""Root pytest configuration shared by every package's tests and the integration tests."""

from __future__ import annotations

import os

# The ``backend`` and ``fresh_backend`` fixtures (and BACKENDS / needs_jax for tests that
# parametrise by hand) live in one place for every package.
pytest_plugins = ["xpcs_device.testing"]

# hatch's test matrix names the backend an environment was built for; the NumPy one has no
# JAX installed, so the JAX backend's own tests are not collected there.
if os.environ.get("XPCS_TEST_BACKEND") == "numpy":
    collect_ignore_glob = ["packages/xpcs-jax/*"]
