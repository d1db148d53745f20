import pytest

from xpcs_jax import JAXBackend
from xpcs_numpy.testing import BackendConformance


class TestJAXConformance(BackendConformance):
    @pytest.fixture(scope="class")
    @classmethod
    def backend(cls):
        return JAXBackend()
