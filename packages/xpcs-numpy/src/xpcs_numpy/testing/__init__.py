"""The backend conformance suite (needs pytest): :class:`BackendConformance`, its cases,
and :func:`assert_trees_close`. Third-party backends subclass ``BackendConformance``."""

from xpcs_numpy.testing.cases import CASES, ERROR_CASES, Case, ErrorCase
from xpcs_numpy.testing.suite import BackendConformance, assert_trees_close, run_case

__all__ = [
    "CASES",
    "ERROR_CASES",
    "BackendConformance",
    "Case",
    "ErrorCase",
    "assert_trees_close",
    "run_case",
]
