"""Qwen3-Coder's XML calls: <function=NAME><parameter=KEY>value</parameter>...</function>.

A value is text and may hold anything, look-alike tags included (a coding model editing a
template writes `</parameter>` or a whole `<tool_call>` in a file body). So a value ends at the
`</parameter>` after which the rest of the call still parses: each parameter once, only the
schema's parameters when it names them, its required ones present when that is possible."""

from __future__ import annotations

import re
from typing import Any

from toolchat.backends.parsers.base import ParsedCall, dump
from toolchat.backends.parsers.cast import cast

Tools = dict[str, dict[str, Any]]

_OPEN_FUNCTION, _CLOSE_FUNCTION = "<function=", "</function>"
_OPEN_PARAMETER, _CLOSE_PARAMETER = "<parameter=", "</parameter>"
_NAME = re.compile(r"([^>\s<]+)>")
_MAX_STEPS = 20_000  # backtracking budget: a pathological region is "not a call", not a hang


class _Budget(Exception):
    pass


def xml_calls(region: str, tools: Tools, closed: bool) -> tuple[list[ParsedCall], str] | None:
    """The calls in a region of one or more <function=...> blocks, or None. Not closed (the output
    ended inside the call): a missing `</parameter>` and `</function>` are allowed at the end."""
    endings = [""] if closed else ["", "\n" + _CLOSE_FUNCTION, "\n" + _CLOSE_PARAMETER + "\n" + _CLOSE_FUNCTION]
    for strict in (True, False):
        for ending in endings:
            try:
                found = _Reader(region + ending, tools, strict).calls(0)
            except _Budget:
                return None
            if found:
                return [ParsedCall(name, text) for name, text in found], ""
    return None


class _Reader:
    def __init__(self, text: str, tools: Tools, strict: bool) -> None:
        self.text, self.tools, self.strict = text, tools, strict
        self.steps = 0

    def _skip(self, at: int) -> int:
        while at < len(self.text) and self.text[at].isspace():
            at += 1
        return at

    def calls(self, at: int) -> list[tuple[str, str]] | None:
        at = self._skip(at)
        if at == len(self.text):
            return []
        if not self.text.startswith(_OPEN_FUNCTION, at):
            return None
        name = _NAME.match(self.text, at + len(_OPEN_FUNCTION))
        if not name:
            return None
        schema = self.tools.get(name.group(1), {})
        schema = schema if isinstance(schema, dict) else {}
        for arguments, end in self._parameters(name.end(), schema, frozenset()):
            text = dump(arguments)
            rest = self.calls(end) if text is not None else None
            if rest is not None:
                return [(name.group(1), text), *rest]  # type: ignore[list-item]
        return None

    def _parameters(self, at: int, schema: dict[str, Any], seen: frozenset[str]):  # type: ignore[no-untyped-def]
        """Every way to read the parameters from `at` to a `</function>`: (arguments, end)."""
        self.steps += 1
        if self.steps > _MAX_STEPS:
            raise _Budget
        properties = schema.get("properties") if isinstance(schema.get("properties"), dict) else {}
        at = self._skip(at)
        if self.text.startswith(_CLOSE_FUNCTION, at):
            required = schema.get("required") if isinstance(schema.get("required"), list) else []
            if not self.strict or all(r in seen for r in required if isinstance(r, str)):
                yield {}, at + len(_CLOSE_FUNCTION)
            return
        if not self.text.startswith(_OPEN_PARAMETER, at):
            return
        name = _NAME.match(self.text, at + len(_OPEN_PARAMETER))
        if not name or name.group(1) in seen or (properties and name.group(1) not in properties):
            return
        key, start = name.group(1), name.end()
        close = self.text.find(_CLOSE_PARAMETER, start)
        while close >= 0:
            value = cast(_unwrap(self.text[start:close]), properties.get(key, {}))
            for arguments, end in self._parameters(close + len(_CLOSE_PARAMETER), schema, seen | {key}):
                yield {key: value, **arguments}, end
            close = self.text.find(_CLOSE_PARAMETER, close + 1)


def _unwrap(value: str) -> str:
    """The template writes a value between newlines: <parameter=k>\nvalue\n</parameter>."""
    if value.startswith("\n"):
        value = value[1:]
    if value.endswith("\n"):
        value = value[:-1]
    return value
