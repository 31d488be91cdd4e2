"""Incremental parsing: text before a call streams as content; a marker split across tokens is
held back until it is decided; what is inside markers is parsed when it closes (or at the end)."""

from __future__ import annotations

import json
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


def as_arguments(value: Any) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value if value is not None else {}, ensure_ascii=False)


def partial_suffix(text: str, marker: str) -> int:
    """How many characters at the end of `text` could be the start of `marker`."""
    for size in range(min(len(marker) - 1, len(text)), 0, -1):
        if marker.startswith(text[-size:]):
            return size
    return 0


RegionParser = Callable[[str, bool], "list[ParsedCall] | None"]  # (region, closed) -> calls or None


class MarkerParser:
    """Content until `start`; the region up to `end` (or to the end of the output when `end` is
    None) is handed to `parse_region`. A region that cannot be parsed is kept as content, so
    nothing the model wrote is lost."""

    def __init__(self, start: str, end: str | None, parse_region: RegionParser) -> None:
        self.start, self.end, self.parse_region = start, end, parse_region
        self.buffer = ""
        self.in_region = False
        self.calls: list[ParsedCall] = []

    def feed(self, text: str) -> str:
        self.buffer += text
        shown: list[str] = []
        while True:
            if not self.in_region:
                at = self.buffer.find(self.start)
                if at < 0:
                    keep = partial_suffix(self.buffer, self.start)
                    shown.append(self.buffer[: len(self.buffer) - keep])
                    self.buffer = self.buffer[len(self.buffer) - keep :]
                    return "".join(shown)
                shown.append(self.buffer[:at])
                self.buffer = self.buffer[at + len(self.start) :]
                self.in_region = True
            if self.end is None:
                return "".join(shown)
            at = self.buffer.find(self.end)
            if at < 0:
                return "".join(shown)
            shown.append(self._close(self.buffer[:at], closed=True))
            self.buffer = self.buffer[at + len(self.end) :]
            self.in_region = False

    def _close(self, region: str, closed: bool) -> str:
        """Parse a region; what cannot be parsed comes back as content, in its place."""
        calls = self.parse_region(region, closed)
        if calls is None:
            return self.start + region + ((self.end or "") if closed else "")
        self.calls.extend(calls)
        return ""

    def finish(self) -> tuple[str, list[ParsedCall]]:
        rest = self._close(self.buffer, closed=False) if self.in_region else self.buffer
        self.buffer, self.in_region = "", False
        return rest, self.calls


def loads_lenient(text: str) -> Any:
    """JSON, or None. Tolerates surrounding whitespace and one missing closing brace (an
    unterminated call at the end of the output)."""
    text = text.strip()
    if not text:
        return None
    for candidate in (text, text + "}", text + "]"):
        try:
            return json.loads(candidate)
        except ValueError:
            continue
    return None
