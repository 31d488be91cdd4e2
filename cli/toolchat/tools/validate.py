"""Checking a call's arguments against its tool's schema before anyone is asked to approve it."""

from __future__ import annotations

import json
from typing import Any

from toolchat.tools.model import Tool

MAX_DEPTH = 100  # arrays and objects nested deeper than this are refused, not recursed into


class InvalidArguments(Exception):
    """The arguments cannot be used; the message names the argument and what is wrong."""


def parse_arguments(raw: str | dict[str, Any] | None) -> dict[str, Any]:
    """Arguments as sent by a model (a JSON string, an object, or nothing) -> a dict."""
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        return {}
    if isinstance(raw, dict):
        return raw
    try:
        value = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise InvalidArguments(f"arguments are not valid JSON ({exc.msg} at char {exc.pos})") from None
    except RecursionError:
        raise InvalidArguments(_TOO_DEEP) from None
    if not isinstance(value, dict):
        raise InvalidArguments(f"arguments must be a JSON object, not {type(value).__name__}")
    return value


def validate_arguments(tool: Tool, arguments: dict[str, Any]) -> None:
    """Raise InvalidArguments with every problem, each naming its argument; never cast."""
    from jsonschema import Draft202012Validator  # here, not at import: `tools list` starts faster
    from jsonschema.exceptions import SchemaError

    if _depth_exceeds(arguments, MAX_DEPTH):
        raise InvalidArguments(_TOO_DEEP)
    problems: list[str] = []
    known = tool.parameters.get("properties", {})
    if not tool.accepts_extra:
        problems += [f"unexpected argument '{name}'" for name in arguments if name not in known]
    try:
        if tool.validator is None:
            tool.validator = Draft202012Validator(tool.parameters)
        validator = tool.validator
        errors = sorted(validator.iter_errors(arguments), key=lambda e: list(e.absolute_path))
    except SchemaError as exc:
        raise InvalidArguments(f"the tool's schema is itself invalid: {exc.message}") from None
    for error in errors:
        problems.append(_describe(error))
    if problems:
        raise InvalidArguments("; ".join(dict.fromkeys(problems)))


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


def _describe(error: Any) -> str:
    path = list(error.absolute_path)
    if error.validator == "required" and not path:
        missing = error.message.split("'")[1] if "'" in error.message else error.message
        return f"missing required argument '{missing}'"
    if error.validator == "additionalProperties" and not path:
        return error.message
    where = "argument '" + str(path[0]) + "'" + "".join(f"[{p!r}]" for p in path[1:]) if path else "arguments"
    value = json.dumps(error.instance, ensure_ascii=False, default=str)
    if len(value) > 60:
        value = value[:57] + "..."
    if error.validator == "type":
        expected = error.validator_value
        expected = " or ".join(expected) if isinstance(expected, list) else expected
        return f"{where} must be {expected}, got {value}"
    if error.validator == "enum":
        choices = ", ".join(json.dumps(v) for v in error.validator_value)
        return f"{where} must be one of {choices}, got {value}"
    return f"{where}: {error.message}"
