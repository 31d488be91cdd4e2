"""Text values cast by a parameter's JSON Schema (Qwen3-Coder writes every value as text):
type lists, anyOf/oneOf (the first branch that accepts the value), nullable, enum, const,
integer vs number. A value no branch accepts stays as written; the engine then answers
"invalid arguments" to the model."""

from __future__ import annotations

import ast
import math
import re
from typing import Any

from toolchat.backends.parsers.base import finite, loads_strict

_REJECT = object()
_INTEGER = re.compile(r"[+-]?\d+")
_NULLS = ("null", "none")


def cast(text: str, schema: Any) -> Any:
    """`text` as the schema's type; `text` itself when nothing in the schema accepts it."""
    value = _accept(text, schema, depth=0)
    return text if value is _REJECT else value


def _accept(text: str, schema: Any, depth: int) -> Any:
    if not isinstance(schema, dict) or depth > 20:
        return text
    if "const" in schema:
        return _among(text, [schema["const"]])
    branches = schema.get("anyOf") or schema.get("oneOf")
    if isinstance(branches, list) and branches:
        outer = {k: v for k, v in schema.items() if k not in ("anyOf", "oneOf")}
        # an explicit null is null when any branch allows it (Optional[str] included)
        if text.strip().lower() in _NULLS and any(_allows_null(b) for b in branches):
            return None
        for branch in branches:
            value = _accept(text, {**outer, **branch} if isinstance(branch, dict) else outer, depth + 1)
            if value is not _REJECT:
                return value
        return _REJECT
    kinds = _kinds(schema)
    if "enum" in schema and isinstance(schema["enum"], list):
        value = _among(text, schema["enum"])
        return value if value is _REJECT or not kinds or _type_of(value) in kinds else _REJECT
    if not kinds:
        return text
    if "null" in kinds and text.strip().lower() in _NULLS:
        return None
    for kind in kinds:
        value = _as_kind(text, kind)
        if value is not _REJECT:
            return value
    return _REJECT


def _allows_null(schema: Any) -> bool:
    return isinstance(schema, dict) and ("null" in _kinds(schema) or schema.get("const", 0) is None)


def _kinds(schema: dict[str, Any]) -> list[str]:
    kinds = schema.get("type")
    kinds = [k for k in (kinds if isinstance(kinds, list) else [kinds]) if isinstance(k, str)]
    if not kinds:
        if "properties" in schema:
            kinds = ["object"]
        elif "items" in schema:
            kinds = ["array"]
    if schema.get("nullable") is True and "null" not in kinds:
        kinds.append("null")
    return kinds


def _as_kind(text: str, kind: str) -> Any:
    stripped = text.strip()
    if kind == "string":
        return text
    if kind == "integer":
        if _INTEGER.fullmatch(stripped):
            return int(stripped)
        number = _number(stripped)
        return int(number) if isinstance(number, float) and number.is_integer() else _REJECT
    if kind == "number":
        if _INTEGER.fullmatch(stripped):
            return int(stripped)
        number = _number(stripped)
        return _REJECT if number is None else number
    if kind == "boolean":
        return {"true": True, "false": False}.get(stripped.lower(), _REJECT)
    if kind == "null":
        return None if stripped.lower() in _NULLS else _REJECT
    if kind in ("object", "array"):
        value = _structured(stripped)
        if isinstance(value, tuple):
            value = list(value)
        wanted = dict if kind == "object" else list
        return value if isinstance(value, wanted) else _REJECT
    return _REJECT


def _number(text: str) -> float | None:
    try:
        number = float(text)
    except ValueError:
        return None
    return number if math.isfinite(number) and not text.lower().lstrip("+-").startswith(("inf", "nan")) else None


def _structured(text: str) -> Any:
    """JSON, or a Python literal (a model that writes {'key': 'value'}); None for neither."""
    try:
        return loads_strict(text)
    except (ValueError, RecursionError):
        pass
    if len(text) > 100_000:
        return None
    try:
        value = ast.literal_eval(text)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return None
    return value if finite(value) else None


def _among(text: str, allowed: list[Any]) -> Any:
    """The allowed value `text` spells: as written, or decoded as JSON ("3" for 3, "true" for true)."""
    candidates: list[Any] = [text, text.strip()]
    try:
        candidates.append(loads_strict(text))
    except (ValueError, RecursionError):
        pass
    for candidate in candidates:
        for value in allowed:
            if type(value) is type(candidate) and value == candidate:
                return value
    return _REJECT


def _type_of(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    return "array" if isinstance(value, list) else "object"
