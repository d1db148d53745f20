from importlib.metadata import version

import xpcs_fit
from xpcs_device import get_backend


def test_version_matches_metadata():
    assert xpcs_fit.__version__ == version("xpcs-fit")


def test_installs_with_a_working_backend():
    # Installed alone, xpcs-fit must bring a usable backend (NumPy at least).
    backend = get_backend()
    assert float(backend.sum(backend.asarray([1.0, 2.0]))) == 3.0
