import pytest

from xpcs_numpy import NumPyBackend
from xpcs_numpy.testing import BackendConformance


class TestNumPyConformance(BackendConformance):
    @pytest.fixture(scope="class")
    @classmethod
    def backend(cls):
        return NumPyBackend()
