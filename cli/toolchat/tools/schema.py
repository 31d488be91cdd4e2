"""JSON schema of a function's arguments, derived as transformers' `get_json_schema` does.

Nullability is standard JSON Schema (`"type": ["integer", "null"]`), not OpenAPI's `nullable`.
"""

from __future__ import annotations

import collections.abc
import enum
import inspect
import types
import typing
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import PurePath
from typing import Any, Literal, Union, get_args, get_origin

from toolchat.tools.docstring import parse_docstring

_BASIC: dict[Any, str] = {int: "integer", float: "number", str: "string", bool: "boolean"}
_ARRAYS = (
    list,
    set,
    frozenset,
    collections.abc.Sequence,
    collections.abc.Iterable,
    collections.abc.Set,
    collections.abc.MutableSequence,
)
_OBJECTS = (dict, collections.abc.Mapping, collections.abc.MutableMapping)


@dataclass
class FunctionSchema:
    name: str
    description: str
    parameters: dict[str, Any]
    warnings: list[str] = field(default_factory=list)
    accepts_extra: bool = False


class UnsupportedType(Exception):
    pass


def function_schema(func: Callable[..., Any]) -> FunctionSchema:
    """The name, description and parameter schema of `func`, plus warnings on what is missing."""
    name = func.__name__
    doc = parse_docstring(inspect.getdoc(func))
    warnings: list[str] = []
    if not doc.description:
        warnings.append("no docstring: the model gets no description of this tool")
    hints = _type_hints(func, warnings)
    properties: dict[str, Any] = {}
    required: list[str] = []
    accepts_extra = False
    for param in inspect.signature(func).parameters.values():
        if param.kind is param.VAR_KEYWORD:
            accepts_extra = True
            continue
        if param.kind is param.VAR_POSITIONAL or param.name == "self":
            continue
        prop = _param_schema(param.name, hints, warnings)
        annotated = _annotated_description(hints.get(param.name))
        if doc.args.get(param.name):
            prop["description"] = doc.args[param.name]
        elif annotated:
            prop["description"] = annotated
        elif doc.description:
            warnings.append(f"no description for argument '{param.name}' in the docstring")
        if param.name in doc.choices:
            prop["enum"] = doc.choices[param.name]
        properties[param.name] = prop
        if param.default is inspect.Parameter.empty:
            required.append(param.name)
    parameters: dict[str, Any] = {"type": "object", "properties": properties}
    if required:
        parameters["required"] = required
    return FunctionSchema(name, doc.description, parameters, warnings, accepts_extra)


def _type_hints(func: Callable[..., Any], warnings: list[str]) -> dict[str, Any]:
    try:
        return typing.get_type_hints(func, include_extras=True)
    except Exception as exc:  # noqa: BLE001 - an unresolvable forward reference, say
        warnings.append(f"type hints could not be read ({type(exc).__name__}: {exc})")
        return {}


def _param_schema(name: str, hints: dict[str, Any], warnings: list[str]) -> dict[str, Any]:
    if name not in hints:
        warnings.append(f"no type hint for argument '{name}': any JSON value is accepted")
        return {}
    try:
        return type_schema(hints[name])
    except UnsupportedType as exc:
        warnings.append(f"argument '{name}': unsupported type {exc}; any JSON value is accepted")
        return {}


def type_schema(tp: Any) -> dict[str, Any]:
    """The JSON schema for one Python type annotation."""
    if tp is Any or tp is inspect.Parameter.empty or tp is object:
        return {}
    if tp is None or tp is type(None):
        return {"type": "null"}
    if tp in _BASIC:
        return {"type": _BASIC[tp]}
    origin, args = get_origin(tp), get_args(tp)
    if origin is typing.Annotated:
        return type_schema(args[0])
    if origin is Union or origin is types.UnionType:
        return _union_schema(args)
    if origin is Literal:
        return _enum_schema(list(args))
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        return _enum_schema([member.value for member in tp])
    if isinstance(tp, type) and issubclass(tp, PurePath):
        return {"type": "string"}
    if tp is tuple or origin is tuple:
        return _tuple_schema(args)
    if tp in _ARRAYS or origin in _ARRAYS:
        schema: dict[str, Any] = {"type": "array"}
        if args and args[0] is not Any:
            schema["items"] = type_schema(args[0])
        return schema
    if tp in _OBJECTS or origin in _OBJECTS:
        schema = {"type": "object"}
        if len(args) == 2 and args[1] is not Any:
            schema["additionalProperties"] = type_schema(args[1])
        return schema
    raise UnsupportedType(getattr(tp, "__name__", repr(tp)))


def _union_schema(args: tuple[Any, ...]) -> dict[str, Any]:
    members = [a for a in args if a is not type(None)]
    nullable = len(members) < len(args)
    subs = [type_schema(a) for a in members]
    if any(not s for s in subs):  # Any absorbs everything
        return {}
    if len(subs) == 1:
        schema = subs[0]
    elif all(set(s) == {"type"} and isinstance(s["type"], str) for s in subs):
        schema = {"type": [s["type"] for s in subs]}
    else:
        schema = {"anyOf": subs}
    return _with_null(schema) if nullable else schema


def _with_null(schema: dict[str, Any]) -> dict[str, Any]:
    schema = dict(schema)
    if "anyOf" in schema:
        schema["anyOf"] = [*schema["anyOf"], {"type": "null"}]
        return schema
    if "type" in schema:
        kinds = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
        schema["type"] = [*kinds, "null"] if "null" not in kinds else kinds
    if "enum" in schema and None not in schema["enum"]:
        schema["enum"] = [*schema["enum"], None]
    return schema


def _enum_schema(values: list[Any]) -> dict[str, Any]:
    kinds: list[str] = []
    for value in values:
        kind = "null" if value is None else _BASIC.get(type(value))
        if kind is None:
            raise UnsupportedType(f"enum value {value!r}")
        if kind not in kinds:
            kinds.append(kind)
    return {"type": kinds[0] if len(kinds) == 1 else kinds, "enum": values}


def _tuple_schema(args: tuple[Any, ...]) -> dict[str, Any]:
    if not args:
        return {"type": "array"}
    if len(args) == 2 and args[1] is Ellipsis:
        return {"type": "array", "items": type_schema(args[0])}
    items = [type_schema(a) for a in args]
    return {"type": "array", "prefixItems": items, "minItems": len(items), "maxItems": len(items)}


def enum_params(func: Callable[..., Any]) -> dict[str, type[enum.Enum]]:
    """The parameters of `func` whose values must become members of an Enum before the call."""
    try:
        hints = typing.get_type_hints(func, include_extras=True)
    except Exception:  # noqa: BLE001 - unreadable hints: nothing to convert
        return {}
    found = {name: _enum_class(tp) for name, tp in hints.items() if name != "return"}
    return {name: cls for name, cls in found.items() if cls is not None}


def _annotated_description(tp: Any) -> str | None:
    """The first string in `Annotated[T, "the description", ...]`, as openai-agents reads it."""
    if get_origin(tp) is typing.Annotated:
        return next((m.strip() for m in tp.__metadata__ if isinstance(m, str) and m.strip()), None)
    return None


def _enum_class(tp: Any) -> type[enum.Enum] | None:
    """The Enum class behind an annotation such as `Color` or `Color | None`, if any."""
    if get_origin(tp) is typing.Annotated:
        return _enum_class(get_args(tp)[0])
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        return tp
    if get_origin(tp) in (Union, types.UnionType):
        found = [a for a in get_args(tp) if isinstance(a, type) and issubclass(a, enum.Enum)]
        return found[0] if len(found) == 1 else None
    return None
