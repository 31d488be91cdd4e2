"""Formats where a call is the whole output, unmarked (Llama 3 JSON without <|python_tag|>,
pythonic lists): while the output could still be a call, hold it back; decide at the end. Prose
after the call is content."""

from __future__ import annotations

from collections.abc import Callable

from toolchat.backends.parsers.base import ParsedCall, StreamParser


class LeadingParser:
    def __init__(
        self, opener: str, parse_whole: Callable[[str], tuple[list[ParsedCall], str] | None], inner: StreamParser
    ) -> None:
        self.opener, self.parse_whole, self.inner = opener, parse_whole, inner
        self.held = ""
        self.holding = True

    def feed(self, text: str) -> str:
        if not self.holding:
            return self.inner.feed(text)
        self.held += text
        stripped = self.held.lstrip()
        if not stripped or stripped.startswith(self.opener):
            return ""
        self.holding = False
        held, self.held = self.held, ""
        return self.inner.feed(held)

    def finish(self) -> tuple[str, list[ParsedCall]]:
        shown = ""
        if self.holding:
            try:
                parsed = self.parse_whole(self.held) if self.held.strip() else None
            except (ValueError, TypeError, RecursionError, MemoryError):
                parsed = None
            if parsed and parsed[0]:
                self.held, self.holding = "", False
                calls, prose = parsed
                content, more = self.inner.finish()
                return prose + content, calls + more
            shown = self.inner.feed(self.held)  # not a call after all: it is content
            self.held, self.holding = "", False
        content, calls = self.inner.finish()
        return shown + content, calls
