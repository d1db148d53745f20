"""Parsing of the XPCS_* environment variables: one set of rules, errors that say what to do."""

from __future__ import annotations

import dataclasses

import pytest

from xpcs_device import ConfigurationError, DeviceSettings, read_settings
from xpcs_device.environment import parse_bool, parse_fraction

VAR = "XPCS_SOME_FLAG"
ACCEPTED_WORDS = ("true", "false", "1", "0", "yes", "no", "on", "off")


def _spellings(word: str) -> list[str]:
    variants = [word, word.upper(), word.title(), f"  {word}  ", f"\t{word.upper()}\n", f" {word.title()}"]
    return list(dict.fromkeys(variants))


TRUE_SPELLINGS = [s for word in ("true", "1", "yes", "on") for s in _spellings(word)] + ["tRuE", "yEs", "oN"]
FALSE_SPELLINGS = [s for word in ("false", "0", "no", "off") for s in _spellings(word)] + [
    "fAlSe",
    "nO",
    "oFf",
]
NOT_BOOLEANS = [
    "maybe",
    "2",
    "-1",
    "y",
    "n",
    "t",
    "f",
    "tru",
    "enable",
    "disabled",
    "0.0",
    "1.0",
    "true false",
    "yes!",
    "none",
    "null",
    "o n",
]


# ----------------------------------------------------------------------------- parse_bool
@pytest.mark.parametrize("value", TRUE_SPELLINGS)
@pytest.mark.parametrize("allow_auto", [False, True])
def test_parse_bool_true_spellings(value, allow_auto):
    assert parse_bool(VAR, value, default=False, allow_auto=allow_auto) is True


@pytest.mark.parametrize("value", FALSE_SPELLINGS)
@pytest.mark.parametrize("allow_auto", [False, True])
def test_parse_bool_false_spellings(value, allow_auto):
    assert parse_bool(VAR, value, default=True, allow_auto=allow_auto) is False


@pytest.mark.parametrize("value", [None, "", " ", "  \t\n"])
@pytest.mark.parametrize("default", [True, False, None])
def test_parse_bool_unset_or_empty_gives_the_default(value, default):
    assert parse_bool(VAR, value, default=default) is default
    assert parse_bool(VAR, value, default=default, allow_auto=True) is default


@pytest.mark.parametrize("value", ["auto", "AUTO", " Auto ", "aUtO\n"])
def test_parse_bool_auto_gives_none_only_when_allowed(value):
    assert parse_bool(VAR, value, default=True, allow_auto=True) is None
    with pytest.raises(ConfigurationError) as info:
        parse_bool(VAR, value, default=True)
    assert VAR in str(info.value)


@pytest.mark.parametrize("value", NOT_BOOLEANS)
@pytest.mark.parametrize("allow_auto", [False, True])
def test_parse_bool_rejects_other_values_naming_variable_and_accepted_values(value, allow_auto):
    with pytest.raises(ConfigurationError) as info:
        parse_bool(VAR, value, default=None, allow_auto=allow_auto)
    message = str(info.value)
    assert VAR in message
    assert repr(value) in message or value in message
    for word in ACCEPTED_WORDS:
        assert word in message, f"accepted value {word!r} missing from: {message}"
    # "auto" is offered exactly where it is accepted
    assert ("auto" in message) is allow_auto


def test_configuration_error_is_a_value_error():
    assert issubclass(ConfigurationError, ValueError)
    with pytest.raises(ValueError, match=VAR):
        parse_bool(VAR, "maybe", default=None)


# ------------------------------------------------------------------------- parse_fraction
@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("0.5", 0.5),
        ("1", 1.0),
        (" 1.0 ", 1.0),
        ("0.75", 0.75),
        (".25", 0.25),
        ("1e-3", 0.001),
        ("\t0.9\n", 0.9),
    ],
)
def test_parse_fraction_accepts_numbers_in_the_half_open_unit_interval(value, expected):
    result = parse_fraction("XPCS_GPU_MEMORY_FRACTION", value)
    assert isinstance(result, float)
    assert result == pytest.approx(expected)


@pytest.mark.parametrize("value", [None, "", "   "])
def test_parse_fraction_unset_or_empty_is_none(value):
    assert parse_fraction("XPCS_GPU_MEMORY_FRACTION", value) is None


@pytest.mark.parametrize(
    "value",
    [
        "0",
        "0.0",
        "-0",
        "-0.1",
        "1.5",
        "1.0000001",
        "2",
        "abc",
        "nan",
        "NaN",
        "inf",
        "-inf",
        "Infinity",
        "0,5",
        "50%",
        "1/2",
    ],
)
def test_parse_fraction_rejects_values_outside_the_interval_naming_the_variable(value):
    with pytest.raises(ConfigurationError) as info:
        parse_fraction("XPCS_GPU_MEMORY_FRACTION", value)
    message = str(info.value)
    assert "XPCS_GPU_MEMORY_FRACTION" in message
    assert value in message
    assert "(0, 1]" in message


def test_parse_fraction_uses_the_given_variable_name():
    with pytest.raises(ConfigurationError, match="MY_FRACTION"):
        parse_fraction("MY_FRACTION", "3")


# -------------------------------------------------------------------------- read_settings
def test_read_settings_of_an_empty_mapping_is_all_defaults():
    assert read_settings({}) == DeviceSettings(use_jax=None, gpu_memory_fraction=None)


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        ({"XPCS_USE_JAX": "off", "XPCS_GPU_MEMORY_FRACTION": "0.25"}, DeviceSettings(False, 0.25)),
        ({"XPCS_USE_JAX": " YES "}, DeviceSettings(True, None)),
        ({"XPCS_USE_JAX": "auto", "XPCS_GPU_MEMORY_FRACTION": "1"}, DeviceSettings(None, 1.0)),
        ({"XPCS_USE_JAX": "", "XPCS_GPU_MEMORY_FRACTION": ""}, DeviceSettings(None, None)),
        ({"UNRELATED": "x", "XPCS_OTHER": "maybe"}, DeviceSettings(None, None)),
    ],
)
def test_read_settings_of_an_explicit_mapping(environ, expected):
    assert read_settings(environ) == expected


def test_read_settings_of_an_explicit_mapping_ignores_os_environ(monkeypatch):
    monkeypatch.setenv("XPCS_USE_JAX", "maybe")
    monkeypatch.setenv("XPCS_GPU_MEMORY_FRACTION", "7")
    assert read_settings({"XPCS_USE_JAX": "0"}) == DeviceSettings(False, None)


def test_read_settings_defaults_to_os_environ(monkeypatch):
    monkeypatch.setenv("XPCS_USE_JAX", "On")
    monkeypatch.setenv("XPCS_GPU_MEMORY_FRACTION", "0.6")
    assert read_settings() == DeviceSettings(use_jax=True, gpu_memory_fraction=0.6)


@pytest.mark.parametrize(
    ("environ", "variable"),
    [
        ({"XPCS_USE_JAX": "maybe"}, "XPCS_USE_JAX"),
        ({"XPCS_USE_JAX": "1", "XPCS_GPU_MEMORY_FRACTION": "1.5"}, "XPCS_GPU_MEMORY_FRACTION"),
        ({"XPCS_GPU_MEMORY_FRACTION": "abc"}, "XPCS_GPU_MEMORY_FRACTION"),
    ],
)
def test_read_settings_rejects_bad_values_naming_the_variable(environ, variable):
    with pytest.raises(ConfigurationError, match=variable):
        read_settings(environ)


def test_read_settings_error_for_use_jax_offers_auto():
    with pytest.raises(ConfigurationError) as info:
        read_settings({"XPCS_USE_JAX": "maybe"})
    assert "auto" in str(info.value)


def test_device_settings_are_immutable():
    settings = read_settings({"XPCS_USE_JAX": "1"})
    with pytest.raises(dataclasses.FrozenInstanceError):
        settings.use_jax = False  # type: ignore[misc]
