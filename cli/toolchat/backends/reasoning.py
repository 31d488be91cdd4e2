"""Reasoning on the OpenAI-compatible wire: inline `<think>`...`</think>` split from the answer as
it streams, and the conversation's reasoning entries turned back into the field each came in."""

from __future__ import annotations

from typing import Any

from toolchat.backends.base import REASONING_CONTENT, REASONING_FIELD, REASONING_INLINE, Reasoning

OPEN, CLOSE = "<think>", "</think>"
KEEP = ("turn", "all", "none")  # which reasoning goes back: this turn's (default), every turn's, none


def _held(text: str, tag: str) -> int:
    """How many characters at the end of `text` could be the start of `tag` (held back)."""
    for size in range(min(len(tag) - 1, len(text)), 0, -1):
        if tag.startswith(text[-size:]):
            return size
    return 0


class InlineThink:
    """Splits content that opens with `<think>` into reasoning and answer, as deltas arrive. A tag
    split across deltas is held back until it is decided; content that does not open with the
    tag (leading whitespace aside) is the answer, untouched. An unclosed `<think>` is reasoning
    to the end (a model cut off while thinking gave no answer)."""

    def __init__(self) -> None:
        self.state = "start"  # start -> inside -> after (whitespace after </think>) -> answer
        self.buffer = ""
        self.raw: list[str] = []  # the content exactly as written, tags included
        self.seen = False  # a <think> opened the content

    def feed(self, piece: str) -> list[tuple[str, str]]:
        """[("reasoning" | "text", str)] decided so far."""
        self.raw.append(piece)
        self.buffer += piece
        out: list[tuple[str, str]] = []
        while self.buffer:
            if self.state == "start":
                head = self.buffer.lstrip()
                if head.startswith(OPEN):
                    self.state, self.seen, self.buffer = "inside", True, head[len(OPEN) :]
                elif OPEN.startswith(head):
                    break  # "", "<", "<thi": not decided yet
                else:
                    self.state = "answer"
            elif self.state == "inside":
                end = self.buffer.find(CLOSE)
                if end >= 0:
                    out.append(("reasoning", self.buffer[:end]))
                    self.state, self.buffer = "after", self.buffer[end + len(CLOSE) :]
                    continue
                keep = _held(self.buffer, CLOSE)
                out.append(("reasoning", self.buffer[: len(self.buffer) - keep]))
                self.buffer = self.buffer[len(self.buffer) - keep :]
                break
            elif self.state == "after":
                self.buffer = self.buffer.lstrip()
                if self.buffer:
                    self.state = "answer"
            else:
                out.append(("text", self.buffer))
                self.buffer = ""
        return [(kind, text) for kind, text in out if text]

    def finish(self) -> list[tuple[str, str]]:
        """What is left at the end of the reply."""
        left, self.buffer = self.buffer, ""
        if not left:
            return []
        if self.state == "inside":
            return [("reasoning", left)]
        return [("text", left)] if self.state in ("start", "answer") else []

    @property
    def content(self) -> str:
        return "".join(self.raw)


def split_inline(content: str) -> tuple[str, str | None]:
    """A whole reply's content as (answer, reasoning); reasoning None when it opens no `<think>`."""
    splitter = InlineThink()
    parts = splitter.feed(content) + splitter.finish()
    answer = "".join(text for kind, text in parts if kind == "text")
    if not splitter.seen:
        return content, None
    return answer, "".join(text for kind, text in parts if kind == "reasoning")


def wire_messages(messages: list[dict[str, Any]], keep: str = "turn", field: str | None = None) -> list[dict[str, Any]]:
    """The conversation as an OpenAI-compatible server reads it: each assistant message's reasoning
    entry back in the field it came in (`reasoning`, `reasoning_content`, `reasoning_details`
    verbatim, inline as the content as written) for the messages `keep` says, and never the entry
    itself. `field`, once the server has sent reasoning in it, is where reasoning text goes back
    whichever of the two text fields it came in (a `toolchat serve` client's, another server's).
    Within the current turn (after the last user message) every assistant message carries
    `reasoning_content`, empty where it had none, once one of them has it: DeepSeek refuses the
    continuation of a tool-calling turn otherwise."""
    last_user = max((i for i, m in enumerate(messages) if m.get("role") == "user"), default=-1)
    turn_has_content = keep != "none" and any(
        (entry := _in(Reasoning.from_entry(m.get("reasoning")), field)) is not None and entry.field == REASONING_CONTENT
        for m in messages[last_user + 1 :]
        if m.get("role") == "assistant"
    )
    wire = []
    for index, message in enumerate(messages):
        if "reasoning" not in message or message.get("role") != "assistant":
            if turn_has_content and index > last_user and message.get("role") == "assistant":
                message = {**message, REASONING_CONTENT: ""}
            wire.append(message)
            continue
        out = {k: v for k, v in message.items() if k != "reasoning"}
        entry = _in(Reasoning.from_entry(message["reasoning"]), field)
        send = entry is not None and (keep == "all" or (keep == "turn" and index > last_user))
        if send and entry is not None:
            _put_back(out, entry)
        if turn_has_content and index > last_user:
            out.setdefault(REASONING_CONTENT, "")
        wire.append(out)
    return wire


def _in(entry: Reasoning | None, field: str | None) -> Reasoning | None:
    """`entry` as it goes back to a server that sends reasoning in `field`."""
    text_fields = (REASONING_FIELD, REASONING_CONTENT)
    if entry is None or field not in text_fields or entry.field not in text_fields or entry.details is not None:
        return entry  # OpenRouter's reasoning_details stay with their `reasoning`, verbatim
    return Reasoning(entry.text, field)


def _put_back(message: dict[str, Any], entry: Reasoning) -> None:
    if entry.field == REASONING_INLINE and entry.content is not None:
        message["content"] = entry.content
    elif entry.field == REASONING_FIELD:
        message[REASONING_FIELD] = entry.text
        if entry.details is not None:
            message["reasoning_details"] = entry.details
    elif entry.field == REASONING_CONTENT:
        message[REASONING_CONTENT] = entry.text


class ReplyReader:
    """One reply's content and reasoning, from deltas or a whole message in any server's shape:
    `reasoning` (vLLM >= 0.17, Ollama, OpenRouter), `reasoning_content` (DeepSeek, llama-server,
    LM Studio, older vLLM), `reasoning_details` (OpenRouter, kept verbatim, encrypted items too)
    and inline `<think>` at the start of content. `take` returns what to show, in order."""

    def __init__(self) -> None:
        self.text: list[str] = []
        self.reasoning: list[str] = []
        self.field: str | None = None
        self.details: list[Any] | None = None
        self._inline: InlineThink | None = InlineThink()

    def take(self, message: Any, content: str) -> list[tuple[str, str]]:
        """The reasoning fields of one delta (or whole message) and its content text."""
        out: list[tuple[str, str]] = []
        reasoning, reasoning_content = _text(message, REASONING_FIELD), _text(message, REASONING_CONTENT)
        details = _get(message, "reasoning_details")
        items = [item for item in details if isinstance(item, dict)] if isinstance(details, list) else []
        if items:
            self.details = (self.details or []) + items
            self.field = self.field or REASONING_FIELD
        piece = reasoning or reasoning_content  # a server sending both sends the same text twice
        if piece:
            self.field = self.field or (REASONING_FIELD if reasoning else REASONING_CONTENT)
            out.append(("reasoning", piece))
        if content:
            if self._inline is not None and (self.field is not None and not self._inline.seen):
                self._inline = None  # the server splits reasoning itself: the content is the answer
            out += self._inline.feed(content) if self._inline is not None else [("text", content)]
        return self._keep(out)

    def finish(self) -> list[tuple[str, str]]:
        return self._keep(self._inline.finish() if self._inline is not None else [])

    def _keep(self, parts: list[tuple[str, str]]) -> list[tuple[str, str]]:
        for kind, text in parts:
            (self.reasoning if kind == "reasoning" else self.text).append(text)
        return parts

    def result(self) -> Reasoning | None:
        inline = self._inline is not None and self._inline.seen
        if inline and self.field is None:
            return Reasoning("".join(self.reasoning), REASONING_INLINE, content=self._inline.content)  # type: ignore[union-attr]
        if self.field is None:
            return None
        return Reasoning("".join(self.reasoning), self.field, details=self.details)


def _get(value: Any, key: str) -> Any:
    return value.get(key) if isinstance(value, dict) else getattr(value, key, None)


def _text(message: Any, key: str) -> str:
    value = _get(message, key)
    return value if isinstance(value, str) else ""
