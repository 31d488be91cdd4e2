"""Reasoning written inline by local models (Qwen3, DeepSeek-R1, GLM): `<think>...</think>` at
the start of the output, or a generation prompt that already opened `<think>` (llama.cpp's
`thinking_forced_open`). What is inside is reasoning, never content and never read for calls;
what follows `</think>` goes to the format's own parser. A tag split across tokens is held back
until it is decided; an unclosed `<think>` makes the whole output reasoning."""

from __future__ import annotations

from toolchat.backends.parsers.base import ParsedCall, StreamParser, partial_suffix

OPEN, CLOSE = "<think>", "</think>"


def opens_thinking(prompt: str) -> bool:
    """The rendered prompt ends inside an open <think> (the model writes reasoning first)."""
    tail = prompt.rstrip()
    return tail.endswith(OPEN)


class ThinkSplitter:
    def __init__(self, opened: bool = False) -> None:
        self.state = "inside" if opened else "start"
        self.buffer = ""
        self.reasoning: list[str] = []
        self.seen = opened

    def feed(self, text: str) -> tuple[str, str]:
        """(reasoning, content) safe to pass on now."""
        self.buffer += text
        thought, content = "", ""
        if self.state == "start":
            lead = self.buffer.lstrip()
            if lead.startswith(OPEN):
                self.state, self.seen = "inside", True
                self.buffer = lead[len(OPEN) :]
            elif OPEN.startswith(lead):
                return "", ""  # still undecided (or only whitespace so far)
            else:
                self.state = "after"
        if self.state == "inside":
            at = self.buffer.find(CLOSE)
            if at < 0:
                keep = partial_suffix(self.buffer, CLOSE)
                thought, self.buffer = self.buffer[: len(self.buffer) - keep], self.buffer[len(self.buffer) - keep :]
                self.reasoning.append(thought)
                return thought, ""
            thought, self.buffer = self.buffer[:at], self.buffer[at + len(CLOSE) :].lstrip()
            self.reasoning.append(thought)
            self.state = "after_close"
        if self.state == "after_close":  # the blank lines after </think> are not the answer
            if not self.buffer.strip():
                return thought, ""
            self.buffer, self.state = self.buffer.lstrip(), "after"
        content, self.buffer = self.buffer, ""
        return thought, content

    def finish(self) -> tuple[str, str]:
        """What is still held: reasoning in an unclosed block, content otherwise."""
        rest, self.buffer = self.buffer, ""
        if self.state == "inside":
            self.reasoning.append(rest)
            return rest, ""
        if self.state == "after_close":
            return "", ""
        return "", rest

    @property
    def text(self) -> str:
        return "".join(self.reasoning).strip()


class ThinkingParser:
    """A format's parser behind a ThinkSplitter: reasoning apart, the rest to the format's parser.
    `thinking` False (a format with its own reasoning channel, a grammar): text passes through,
    and a format that reads reasoning itself (harmony's analysis channel) hands it on as it comes."""

    def __init__(self, inner: StreamParser, thinking: bool, opened: bool = False) -> None:
        self.inner = inner
        self.splitter = ThinkSplitter(opened) if thinking else None

    def feed(self, text: str) -> tuple[str, str]:
        """(reasoning, content) to show now."""
        thought, content = self.splitter.feed(text) if self.splitter else ("", text)
        shown = self.inner.feed(content) if content else ""
        return thought + self._channel(), shown

    def finish(self) -> tuple[str, str, list[ParsedCall]]:
        """(reasoning, content) still held, and every call found."""
        thought, tail = self.splitter.finish() if self.splitter else ("", "")
        shown = self.inner.feed(tail) if tail else ""
        rest, calls = self.inner.finish()
        return thought + self._channel(), shown + rest, calls

    def _channel(self) -> str:
        take = getattr(self.inner, "take_reasoning", None)
        return take() if take else ""

    @property
    def seen(self) -> bool:
        return self.splitter is not None and self.splitter.seen

    @property
    def text(self) -> str:
        return self.splitter.text if self.splitter else ""
