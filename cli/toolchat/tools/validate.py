"""Checking a call's arguments against its tool's schema before anyone is asked to approve it."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from toolchat.safety import strict_json
from toolchat.tools.model import Tool

QUOTED = 200  # characters of arguments that are not JSON quoted back to the model
MAX_DEPTH = 100  # arrays and objects nested deeper than this are refused, not recursed into


class InvalidArguments(Exception):
    """The arguments cannot be used; the message names the argument and what is wrong."""


def parse_arguments(raw: str | dict[str, Any] | None) -> dict[str, Any]:
    """Arguments as sent by a model (a JSON string, an object, or nothing) -> a dict."""
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        return {}
    if isinstance(raw, dict):
        return raw
    return _json_object(raw, "arguments are not valid JSON", "arguments must be a JSON object, not {type}", True)


def _json_object(text: str, not_json: str, not_object: str, quote: bool = False) -> dict[str, Any]:
    """`text` as a JSON object; InvalidArguments saying `not_json (what, where)` (with `quote`,
    then the text as written: a model reads its own call back with "{}" in place of arguments
    that are not JSON, backends/openai_wire.py) or `not_object` (`{type}` in it: the type that
    came instead) otherwise."""
    try:
        value = strict_json(text)  # NaN, Infinity, 1e999: Python reads them, a server sent them back would not
    except ValueError as exc:
        written = f": {text[:QUOTED]}" + ("…" if len(text) > QUOTED else "") if quote else ""
        problem = json_problem(exc) if isinstance(exc, json.JSONDecodeError) else str(exc)
        raise InvalidArguments(f"{not_json} ({problem}){written}") from None
    except RecursionError:
        raise InvalidArguments(_TOO_DEEP) from None
    if not isinstance(value, dict):
        raise InvalidArguments(not_object.format(type=type(value).__name__))
    return value


def json_problem(exc: json.JSONDecodeError) -> str:
    """What is wrong and where: "Expecting value at char 5"; json's own "Unterminated string
    starting at" and "Invalid control character at" already end in "at"."""
    where = "char" if exc.msg.endswith(" at") else "at char"
    return f"{exc.msg} {where} {exc.pos}"


def validate_arguments(tool: Tool, arguments: dict[str, Any]) -> None:
    """Raise InvalidArguments with every problem, each naming its argument; never cast."""
    if _depth_exceeds(arguments, MAX_DEPTH):
        raise InvalidArguments(_TOO_DEEP)
    problems: list[str] = []
    known = tool.parameters.get("properties", {})
    if not tool.accepts_extra:
        problems += [f"unexpected argument '{name}'" for name in arguments if name not in known]
    if tool.validator is None:
        tool.validator = _validator(tool.parameters)
    errors = sorted(tool.validator(arguments), key=lambda e: [str(p) for p in e.path])
    problems += [_describe(error) for error in errors]
    if problems:
        raise InvalidArguments("; ".join(dict.fromkeys(problems)))


def edited_arguments(tool: Tool, text: str) -> dict[str, Any]:
    """Arguments a person typed as JSON, valid for `tool`; the message of the error raised
    (ValueError or InvalidArguments) says what is wrong, for the person to try again."""
    value = _json_object(text, "not valid JSON", "invalid: arguments must be a JSON object")
    try:
        validate_arguments(tool, value)
    except InvalidArguments as exc:
        raise InvalidArguments(f"invalid: {exc}") from exc
    return value


@dataclass
class _Error:
    """One schema violation, whichever library found it."""

    keyword: str  # "type", "enum", "required", ...
    path: list[Any]
    instance: Any
    expected: Any  # the types, the choices, the missing property
    message: str


def _validator(schema: dict[str, Any]) -> Callable[[dict[str, Any]], list[_Error]]:
    """A compiled validator of `schema` (draft 2020-12 unless it names its draft). jsonschema-rs
    imports and validates in a few milliseconds, against ~0.1 s to import jsonschema; jsonschema
    stays the fallback where no jsonschema-rs wheel exists."""
    try:
        import jsonschema_rs
    except ImportError:
        return _python_validator(schema)
    asked: list[str] = []
    try:
        compiled = jsonschema_rs.validator_for(schema, retriever=lambda uri: _never_fetch(uri, asked))
    except (ValueError, jsonschema_rs.ReferencingError) as exc:
        if asked:
            raise _refers_outside(asked[0]) from None
        raise InvalidArguments(f"the tool's schema is itself invalid: {str(exc).splitlines()[0]}") from None

    def check(arguments: dict[str, Any]) -> list[_Error]:
        return [
            _Error(e.kind.name, list(e.instance_path), e.instance, getattr(e.kind, "value", None), e.message)
            for e in compiled.iter_errors(arguments)
        ]

    return check


def _python_validator(schema: dict[str, Any]) -> Callable[[dict[str, Any]], list[_Error]]:
    from jsonschema import Draft202012Validator
    from jsonschema.exceptions import SchemaError
    from referencing import Registry
    from referencing.exceptions import Unresolvable

    try:
        Draft202012Validator.check_schema(schema)
    except SchemaError as exc:
        raise InvalidArguments(f"the tool's schema is itself invalid: {exc.message}") from None
    asked: list[str] = []
    compiled = Draft202012Validator(schema, registry=Registry(retrieve=lambda uri: _never_fetch(uri, asked)))

    def check(arguments: dict[str, Any]) -> list[_Error]:
        try:
            return _errors(arguments)
        except Unresolvable:
            raise _refers_outside(asked[0] if asked else "a document outside it") from None

    def _errors(arguments: dict[str, Any]) -> list[_Error]:
        found = []
        for e in compiled.iter_errors(arguments):
            expected = e.validator_value
            if e.validator == "required":
                expected = e.message.split("'")[1] if "'" in e.message else e.message
            found.append(_Error(str(e.validator), list(e.absolute_path), e.instance, expected, e.message))
        return found

    return check


def _never_fetch(uri: str, asked: list[str]) -> Any:
    """The retriever of both validators: a schema from an MCP server could point its `$ref` at
    any URL or file (a blind SSRF at call time); only references within the schema resolve."""
    asked.append(uri)
    raise LookupError(uri)


def _refers_outside(uri: str) -> InvalidArguments:
    return InvalidArguments(
        f"the tool's schema refers to {uri[:200]}, which toolchat never fetches "
        "(only references within the schema, such as #/$defs/..., are followed)"
    )


_TOO_DEEP = f"arguments are nested too deeply (more than {MAX_DEPTH} levels)"


def _depth_exceeds(value: Any, limit: int) -> bool:
    """Whether `value` nests lists and dicts deeper than `limit` (checked without recursion)."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, (dict, list)):
            if depth > limit:
                return True
            children = item.values() if isinstance(item, dict) else item
            stack.extend((child, depth + 1) for child in children)
    return False


def _describe(error: _Error) -> str:
    path = error.path
    if error.keyword == "required" and not path:
        return f"missing required argument '{error.expected}'"
    if error.keyword == "additionalProperties" and not path:
        return error.message
    where = "argument '" + str(path[0]) + "'" + "".join(f"[{p!r}]" for p in path[1:]) if path else "arguments"
    value = json.dumps(error.instance, ensure_ascii=False, default=str)
    if len(value) > 60:
        value = value[:57] + "..."
    if error.keyword == "type":
        expected = error.expected
        expected = " or ".join(expected) if isinstance(expected, list) else expected
        return f"{where} must be {expected}, got {value}"
    if error.keyword == "enum":
        choices = ", ".join(json.dumps(v) for v in error.expected)
        return f"{where} must be one of {choices}, got {value}"
    return f"{where}: {error.message}"
