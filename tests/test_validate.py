"""Arguments are checked against the schema before anyone is asked; nothing is cast."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from toolchat.tools.model import Tool
from toolchat.tools.schema import function_schema
from toolchat.tools.validate import InvalidArguments, parse_arguments, validate_arguments


def make_tool(func) -> Tool:
    s = function_schema(func)
    return Tool(s.name, s.description, s.parameters, source=Path("x.py"), accepts_extra=s.accepts_extra)


def weather(city: str, days: int = 1, units: str = "metric", tags: list[str] | None = None):
    """Weather.

    Args:
        city: City
        days: Days
        units: Units (choices: ["metric", "imperial"])
        tags: Tags
    """


TOOL = make_tool(weather)


@pytest.fixture(autouse=True, params=["jsonschema-rs", "jsonschema"])
def library(request, monkeypatch):
    """Every test runs with jsonschema-rs and with the jsonschema fallback: the same messages."""
    if request.param == "jsonschema":
        monkeypatch.setitem(sys.modules, "jsonschema_rs", None)  # as where no wheel exists
    TOOL.validator = None
    yield request.param
    TOOL.validator = None


def problem(arguments) -> str:
    with pytest.raises(InvalidArguments) as info:
        validate_arguments(TOOL, arguments)
    return str(info.value)


def test_valid_arguments_pass():
    validate_arguments(TOOL, {"city": "Oslo", "days": 3, "units": "imperial", "tags": ["a"]})


def test_wrong_type_names_the_argument_and_is_not_cast():
    assert problem({"city": "Oslo", "days": "3"}) == "argument 'days' must be integer, got \"3\""
    assert "argument 'days' must be integer, got true" == problem({"city": "Oslo", "days": True})


def test_missing_unknown_enum_and_nested():
    assert problem({}) == "missing required argument 'city'"
    assert problem({"city": "Oslo", "colour": 1}) == "unexpected argument 'colour'"
    assert (
        problem({"city": "Oslo", "units": "kelvin"})
        == 'argument \'units\' must be one of "metric", "imperial", got "kelvin"'
    )
    assert problem({"city": "Oslo", "tags": ["a", 2]}) == "argument 'tags'[1] must be string, got 2"


def test_several_problems_are_all_named():
    message = problem({"days": "x", "extra": 1})
    assert "missing required argument 'city'" in message
    assert "argument 'days' must be integer" in message
    assert "unexpected argument 'extra'" in message


def test_kwargs_functions_take_extra_arguments():
    def f(a: int, **rest):
        """F."""

    validate_arguments(make_tool(f), {"a": 1, "anything": "goes"})


@pytest.mark.parametrize(
    "raw, expected",
    [
        ('{"a": 1}', {"a": 1}),
        ("", {}),
        (None, {}),
        ({"a": 1}, {"a": 1}),
        ("  ", {}),
    ],
)
def test_parse_arguments_accepts_strings_objects_and_nothing(raw, expected):
    assert parse_arguments(raw) == expected


@pytest.mark.parametrize(
    "raw, message",
    [
        ('{"a": ', "arguments are not valid JSON"),
        ("[1, 2]", "arguments must be a JSON object, not list"),
        ('"text"', "arguments must be a JSON object, not str"),
    ],
)
def test_parse_arguments_rejects_non_objects(raw, message):
    with pytest.raises(InvalidArguments, match=message):
        parse_arguments(raw)


@pytest.mark.parametrize("depth", [1_000, 100_000])
def test_arguments_nested_too_deep_are_invalid_not_a_crash(depth):
    raw = '{"city": ' + "[" * depth + "]" * depth + "}"
    with pytest.raises(InvalidArguments, match="nested too deeply"):
        validate_arguments(TOOL, parse_arguments(raw))


def test_an_edited_dict_nested_too_deep_is_invalid_too():
    value: list = []
    for _ in range(5_000):
        value = [value]
    assert "nested too deeply" in problem({"city": "Oslo", "tags": value})


def test_a_tool_whose_own_schema_is_invalid_says_so(library):
    tool = Tool("broken", "B.", {"type": "object", "properties": {"a": {"type": 12}}}, origin="mcp x")
    with pytest.raises(InvalidArguments, match="the tool's schema is itself invalid"):
        validate_arguments(tool, {"a": 1})


def test_validation_imports_no_jsonschema_when_jsonschema_rs_is_there(library):
    import subprocess

    if library != "jsonschema-rs":
        pytest.skip("the fallback is jsonschema itself")
    code = (
        "import sys\nfrom toolchat.tools import discover\nfrom toolchat.tools.validate import validate_arguments\n"
        "validate_arguments(discover([]).get('calculate'), {'expression': '1'})\n"
        "print('jsonschema' in sys.modules)"
    )
    assert (
        subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
        == "False"
    )
