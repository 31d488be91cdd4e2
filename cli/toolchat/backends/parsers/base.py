"""Incremental parsing: text before a call streams as content; a marker split across tokens is
held back until it is decided; what is inside markers is parsed when it closes (or at the end).

A region closes at the first end marker where what came before it parses as calls, so an end
marker written inside a value (a file body that holds `</tool_call>`) does not cut the call."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol


@dataclass
class ParsedCall:
    name: str
    arguments: str  # JSON text; may be invalid, and the engine then answers "invalid"


class StreamParser(Protocol):
    def feed(self, text: str) -> str:
        """Take generated text; return the content that is safe to show now."""
        ...

    def finish(self) -> tuple[str, list[ParsedCall]]:
        """The content still held back, and every call found."""
        ...


# (region, closed) -> the calls in it and the text after them that is content (prose after a call), or None
RegionParser = Callable[[str, bool], "tuple[list[ParsedCall], str] | None"]


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def loads_strict(text: str) -> Any:
    """json.loads without NaN and Infinity (Python accepts them; JSON does not)."""
    return json.loads(text, parse_constant=_no_constant)


def finite(value: Any) -> bool:
    """True when `value` is plain JSON: no NaN or infinity, no bytes, sets or other Python objects."""
    if value is None or isinstance(value, (bool, int, str)):
        return True
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, (list, tuple)):
        return all(finite(v) for v in value)
    if isinstance(value, dict):
        return all(isinstance(k, str) and finite(v) for k, v in value.items())
    return False


def dump(value: Any) -> str | None:
    """JSON text for a value, or None when it has no JSON form (non-finite numbers, bytes)."""
    if not finite(value):
        return None
    return json.dumps(value, ensure_ascii=False)


def as_arguments(value: Any) -> str | None:
    """Arguments as the engine reads them. An object is dumped; a string holding a JSON object is
    decoded once; any other string goes as written (the engine answers "invalid arguments");
    None when the value has no JSON form."""
    if value is None:
        return "{}"
    if isinstance(value, str):
        try:
            inner = loads_strict(value)
        except (ValueError, RecursionError):
            return value
        return dump(inner) if isinstance(inner, dict) else value
    return dump(value)


def partial_suffix(text: str, marker: str) -> int:
    """How many characters at the end of `text` could be the start of `marker`."""
    for size in range(min(len(marker) - 1, len(text)), 0, -1):
        if marker.startswith(text[-size:]):
            return size
    return 0


@dataclass
class Marker:
    start: str
    end: str | None  # None: the region runs to the end of the output
    parse: RegionParser


class MarkerParser:
    """Content until a marker's `start`; the region up to its `end` (or to the end of the output
    when `end` is None) is handed to its parser. A region that cannot be parsed is kept as
    content, so nothing the model wrote is lost."""

    def __init__(self, start: str | list[Marker], end: str | None = None, parse_region: RegionParser | None = None):
        self.markers = start if isinstance(start, list) else [Marker(start, end, parse_region)]  # type: ignore[arg-type]
        self.buffer = ""
        self.active: Marker | None = None
        self.searched = 0  # end markers before this offset of the region were tried and rejected
        self.calls: list[ParsedCall] = []
        # after a closed region everything is held to the end of the output: an end marker there
        # with no start before it means the region's own value held look-alike tags (see _settle)
        self.closed: tuple[Marker, str, int] | None = None  # (marker, region, len(self.calls) before it)

    def _next_start(self) -> tuple[int, Marker | None]:
        found = [(self.buffer.find(m.start), -len(m.start), i) for i, m in enumerate(self.markers)]
        found = [f for f in found if f[0] >= 0]
        if not found:
            return -1, None
        at, _, index = min(found)
        return at, self.markers[index]

    def feed(self, text: str) -> str:
        self.buffer += text
        if self.closed is not None:
            return ""
        shown: list[str] = []
        while True:
            if self.active is None:
                at, marker = self._next_start()
                if marker is None:
                    keep = max(partial_suffix(self.buffer, m.start) for m in self.markers)
                    shown.append(self.buffer[: len(self.buffer) - keep])
                    self.buffer = self.buffer[len(self.buffer) - keep :]
                    return "".join(shown)
                shown.append(self.buffer[:at])
                self.buffer = self.buffer[at + len(marker.start) :]
                self.active, self.searched = marker, 0
            end = self.active.end
            if end is None:
                return "".join(shown)
            while True:
                at = self.buffer.find(end, self.searched)
                if at < 0:
                    self.searched = max(self.searched, len(self.buffer) - len(end) + 1, 0)
                    return "".join(shown)
                parsed = _safe(self.active.parse, self.buffer[:at], True)
                if parsed is not None:
                    break
                self.searched = at + 1
            calls, rest = parsed
            self.closed = (self.active, self.buffer[:at], len(self.calls))
            self.calls.extend(calls)
            shown.append(rest)
            self.buffer = self.buffer[at + len(end) :]
            self.active = None
            return "".join(shown)

    def _settle(self) -> str:
        """The text held after a closed region, read again. An end marker in it with no start
        before it closes the region instead when the longer region parses: the first close was
        inside a value (`</parameter>\n</function>\n</tool_call>` in a file body)."""
        assert self.closed is not None
        marker, region, before = self.closed
        after, self.buffer, self.closed = self.buffer, "", None
        end = marker.end or ""
        opened = after.find(marker.start)
        orphans = [i for i in _positions(after, end) if opened < 0 or i < opened]
        prefix = ""
        for at in reversed(orphans):
            parsed = _safe(marker.parse, region + end + after[:at], True)
            if parsed is not None:
                del self.calls[before:]
                self.calls.extend(parsed[0])
                prefix, after = parsed[1], after[at + len(end) :]
                break
        return prefix + self.feed(after)

    def finish(self) -> tuple[str, list[ParsedCall]]:
        if self.closed is not None:
            shown = self._settle()
            rest, calls = self.finish()
            return shown + rest, calls
        marker, region = self.active, self.buffer
        self.buffer, self.active = "", None
        if marker is None:
            return region, self.calls
        at = region.find(marker.end) if marker.end else -1
        if at < 0:  # the output ended inside the call: read it as far as it goes
            parsed = _safe(marker.parse, region, False)
            if parsed is not None:
                self.calls.extend(parsed[0])
                return parsed[1], self.calls
            return marker.start + region, self.calls
        # no end marker closed a call: the first one ends a region that is content, and the
        # rest is read again (a later call after a broken one still counts)
        head = _safe(marker.parse, region[:at], False)
        shown = marker.start + region[: at + len(marker.end or "")]
        if head is not None:
            self.calls.extend(head[0])
            shown = head[1]
        shown += self.feed(region[at + len(marker.end or "") :])
        rest, _ = self.finish()
        return shown + rest, self.calls


def _positions(text: str, marker: str) -> list[int]:
    found, at = [], text.find(marker) if marker else -1
    while at >= 0:
        found.append(at)
        at = text.find(marker, at + 1)
    return found


def _safe(parse: RegionParser, region: str, closed: bool) -> tuple[list[ParsedCall], str] | None:
    """A region parser's answer; a parser bug or a pathological input is "not a call", never a crash."""
    try:
        parsed = parse(region, closed)
    except (ValueError, TypeError, RecursionError, MemoryError, IndexError, KeyError, AttributeError):
        return None
    if parsed is None or not parsed[0]:
        return None
    return parsed


def loads_lenient(text: str) -> Any:
    """JSON, or None. Tolerates surrounding whitespace and one missing closing brace (an
    unterminated call at the end of the output). NaN and Infinity are not JSON."""
    text = text.strip()
    if not text:
        return None
    for candidate in (text, text + "}", text + "]"):
        try:
            return loads_strict(candidate)
        except (ValueError, RecursionError):
            continue
    return None
