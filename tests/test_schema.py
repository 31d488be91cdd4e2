"""Schemas derived from signatures and Google-style docstrings, as transformers derives them."""

from __future__ import annotations

import enum
from typing import Annotated, Any, Literal

from toolchat.tools.schema import enum_params, function_schema


class Color(enum.Enum):
    RED = "red"
    BLUE = "blue"


class Thing:
    pass


def params(func) -> dict[str, Any]:
    return function_schema(func).parameters


def test_the_guides_temperature_tool_with_choices():
    def get_current_temperature(location: str, unit: str):
        """
        Get the current temperature at a location.

        Args:
            location: The location to get the temperature for, in the format "City, Country"
            unit: The unit to return the temperature in. (choices: ["celsius", "fahrenheit"])
        """

    schema = function_schema(get_current_temperature)
    assert schema.description == "Get the current temperature at a location."
    assert schema.parameters == {
        "type": "object",
        "properties": {
            "location": {
                "type": "string",
                "description": 'The location to get the temperature for, in the format "City, Country"',
            },
            "unit": {
                "type": "string",
                "description": "The unit to return the temperature in.",
                "enum": ["celsius", "fahrenheit"],
            },
        },
        "required": ["location", "unit"],
    }
    assert schema.warnings == []


def test_continuation_lines_are_joined_and_returns_is_not_description():
    def f(a: int):
        """Do a thing.

        Longer explanation.

        Args:
            a: first line
                second line
                third line

        Returns:
            something
        """

    schema = function_schema(f)
    assert schema.description == "Do a thing.\n\nLonger explanation."
    assert schema.parameters["properties"]["a"]["description"] == "first line second line third line"


def test_defaults_make_arguments_optional():
    def f(a: int, b: str = "x", c: float | None = None):
        """F.

        Args:
            a: A
            b: B
            c: C
        """

    assert params(f)["required"] == ["a"]


def test_no_required_key_when_nothing_is_required():
    def current_time():
        """Get the current local time as a string."""

    assert params(current_time) == {"type": "object", "properties": {}}


def test_optional_and_union_use_standard_nullability():
    def f(a: int | None, b: int | None, c: int | str, d: int | str | None, e: list[int] | None):
        """F."""

    props = params(f)["properties"]
    assert props["a"] == {"type": ["integer", "null"]}
    assert props["b"] == {"type": ["integer", "null"]}
    assert props["c"] == {"type": ["integer", "string"]}
    assert props["d"] == {"type": ["integer", "string", "null"]}
    assert props["e"] == {"type": ["array", "null"], "items": {"type": "integer"}}
    assert "nullable" not in str(props)


def test_literal_and_enum_classes_become_enums():
    def f(mode: Literal["fast", "slow"], n: Literal[1, 2, 3], color: Color, maybe: Color | None = None):
        """F."""

    props = params(f)["properties"]
    assert props["mode"] == {"type": "string", "enum": ["fast", "slow"]}
    assert props["n"] == {"type": "integer", "enum": [1, 2, 3]}
    assert props["color"] == {"type": "string", "enum": ["red", "blue"]}
    assert props["maybe"] == {"type": ["string", "null"], "enum": ["red", "blue", None]}
    assert enum_params(f) == {"color": Color, "maybe": Color}


def test_containers_nested_tuple_dict_any():
    def f(
        a: list,
        b: list[list[str]],
        c: dict[str, int],
        d: dict,
        e: tuple[int, str],
        g: tuple[float, ...],
        h: Any,
        i: dict[str, list[float]],
    ):
        """F."""

    props = params(f)["properties"]
    assert props["a"] == {"type": "array"}
    assert props["b"] == {"type": "array", "items": {"type": "array", "items": {"type": "string"}}}
    assert props["c"] == {"type": "object", "additionalProperties": {"type": "integer"}}
    assert props["d"] == {"type": "object"}
    assert props["e"] == {
        "type": "array",
        "prefixItems": [{"type": "integer"}, {"type": "string"}],
        "minItems": 2,
        "maxItems": 2,
    }
    assert props["g"] == {"type": "array", "items": {"type": "number"}}
    assert props["h"] == {}
    assert props["i"] == {"type": "object", "additionalProperties": {"type": "array", "items": {"type": "number"}}}


def test_missing_docstring_and_hints_still_load_with_warnings():
    def bare(x, y=2):
        pass

    schema = function_schema(bare)
    assert schema.parameters == {"type": "object", "properties": {"x": {}, "y": {}}, "required": ["x"]}
    assert any("no docstring" in w for w in schema.warnings)
    assert any("no type hint for argument 'x'" in w for w in schema.warnings)
    assert any("no type hint for argument 'y'" in w for w in schema.warnings)


def test_undocumented_argument_is_a_warning():
    def f(a: int, b: int):
        """F.

        Args:
            a: A
        """

    schema = function_schema(f)
    assert "description" not in schema.parameters["properties"]["b"]
    assert schema.warnings == ["no description for argument 'b' in the docstring"]


def test_string_annotations_from_future_import_resolve():
    namespace: dict[str, Any] = {}
    exec("from __future__ import annotations\ndef f(a: int, b: list[str] | None = None):\n    '''F.'''\n", namespace)
    assert params(namespace["f"])["properties"] == {
        "a": {"type": "integer"},
        "b": {"type": ["array", "null"], "items": {"type": "string"}},
    }


def test_kwargs_are_not_parameters_but_allow_extra_arguments():
    def f(a: int, *args, **kwargs):
        """F."""

    schema = function_schema(f)
    assert list(schema.parameters["properties"]) == ["a"]
    assert schema.accepts_extra


def test_unsupported_type_accepts_anything_with_a_warning():
    def f(t: Thing):
        """F."""

    schema = function_schema(f)
    assert schema.parameters["properties"]["t"] == {}
    assert any("unsupported type Thing" in w for w in schema.warnings)


def test_positional_only_parameters_are_in_the_schema():
    def area(w: float, h: float, /, unit: str = "m") -> str:
        """Area.

        Args:
            w: Width
            h: Height
            unit: Unit
        """

    assert function_schema(area).parameters == {
        "type": "object",
        "properties": {
            "w": {"type": "number", "description": "Width"},
            "h": {"type": "number", "description": "Height"},
            "unit": {"type": "string", "description": "Unit"},
        },
        "required": ["w", "h"],
    }


def test_annotated_descriptions_are_read():
    def shout(
        text: Annotated[str, "The text"],
        times: Annotated[int | None, "How often"] = None,
        level: Annotated[int, "ignored: the docstring wins"] = 1,
    ) -> str:
        """Shout.

        Args:
            level: Loudness
        """

    schema = function_schema(shout)
    assert schema.parameters["properties"] == {
        "text": {"type": "string", "description": "The text"},
        "times": {"type": ["integer", "null"], "description": "How often"},
        "level": {"type": "integer", "description": "Loudness"},
    }
    assert schema.warnings == []
