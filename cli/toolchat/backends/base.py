"""The backend protocol: messages and tool definitions in, a stream of events out."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol, Union


@dataclass
class ToolCall:
    """One call the model asked for; `arguments` is raw (usually a JSON string)."""

    id: str
    name: str
    arguments: str

    def message_part(self) -> dict[str, Any]:
        return {"id": self.id, "type": "function", "function": {"name": self.name, "arguments": self.arguments}}


@dataclass
class Usage:
    """Token counts of one model call; None is "not reported" (a stream without usage), never 0."""

    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    cached_tokens: int | None = None
    reasoning_tokens: int | None = None  # of completion_tokens, when the server says (hidden reasoning too)

    def as_dict(self) -> dict[str, int | None]:
        counts: dict[str, int | None] = {
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "cached_tokens": self.cached_tokens,
        }
        if self.reasoning_tokens is not None:
            counts["reasoning_tokens"] = self.reasoning_tokens
        return counts

    def measured(self) -> dict[str, int]:
        """The counts that were reported, by OpenTelemetry GenAI name (tracing sets only these)."""
        names = ("gen_ai.usage.input_tokens", "gen_ai.usage.output_tokens", "gen_ai.usage.cache_read.input_tokens")
        values = (self.prompt_tokens, self.completion_tokens, self.cached_tokens)
        return {name: value for name, value in zip(names, values) if value is not None}


def summed(rounds: Iterable[Usage]) -> Usage:
    """The counts of these rounds added up, each over the rounds that reported it; None when
    none did (a round's own counts, in --json's "rounds", show which were not reported)."""
    rounds = list(rounds)

    def total(values: list[int | None]) -> int | None:
        told = [v for v in values if v is not None]
        return sum(told) if told else None

    return Usage(
        total([r.prompt_tokens for r in rounds]),
        total([r.completion_tokens for r in rounds]),
        total([r.cached_tokens for r in rounds]),
        total([r.reasoning_tokens for r in rounds]),
    )


@dataclass
class TextDelta:
    text: str


@dataclass
class ReasoningDelta:
    """Reasoning text as it arrives, apart from the answer (never part of a TextDelta)."""

    text: str


# Where a reply's reasoning came from, so it goes back in the same field.
REASONING_FIELD = "reasoning"  # vLLM >= 0.17, Ollama's /v1, OpenRouter (with reasoning_details)
REASONING_CONTENT = "reasoning_content"  # DeepSeek, llama-server, LM Studio, older vLLM; local templates
REASONING_INLINE = "inline"  # <think>...</think> written at the start of content
REASONING_CHANNEL = "channel"  # gpt-oss (harmony) analysis channel, local


@dataclass
class Reasoning:
    """What the model reasoned in one reply.

    In the conversation an assistant message carries it as `message["reasoning"] = reasoning.as_entry()`:
    {"text": str, "field": one of the REASONING_* words, "details": [...] (OpenRouter's reasoning_details,
    verbatim, encrypted items included; only when sent), "content": str (inline only: the content exactly
    as the model wrote it, tags included)}. That entry is toolchat's own: each backend turns it into what
    its server or template reads (and drops it where it must not be sent); it never goes on the wire as is."""

    text: str = ""
    field: str = REASONING_CONTENT
    details: list[dict[str, Any]] | None = None
    content: str | None = None  # inline: the content as written, tags included

    def as_entry(self) -> dict[str, Any]:
        entry: dict[str, Any] = {"text": self.text, "field": self.field}
        if self.details is not None:
            entry["details"] = self.details
        if self.content is not None:
            entry["content"] = self.content
        return entry

    @classmethod
    def from_entry(cls, entry: Any) -> Reasoning | None:
        if not isinstance(entry, dict) or not isinstance(entry.get("text", ""), str):
            return None
        details = entry.get("details")
        content = entry.get("content")
        return cls(
            text=entry.get("text", ""),
            field=str(entry.get("field") or REASONING_CONTENT),
            details=details if isinstance(details, list) else None,
            content=content if isinstance(content, str) else None,
        )


STOP = "stop"  # the model finished its answer
TOOL_CALLS = "tool_calls"  # the model finished asking for calls
LENGTH = "length"  # cut at max_tokens (or the context): the answer or the calls are incomplete


@dataclass
class Reply:
    """The end of one model call: the whole text, the calls, usage if reported, and why it
    ended: always one of STOP, TOOL_CALLS or LENGTH (see `finish_reason`)."""

    text: str
    tool_calls: list[ToolCall] = field(default_factory=list)
    usage: Usage | None = None
    finish_reason: str = ""
    reasoning: Reasoning | None = None  # None: the model showed no reasoning

    def __post_init__(self) -> None:
        self.finish_reason = finish_reason(self.finish_reason, bool(self.tool_calls))
        if self.finish_reason == LENGTH:  # a call the limit cut mid-arguments was never made
            self.tool_calls = [call for call in self.tool_calls if _whole_json(call.arguments)]


def finish_reason(raw: str | None, has_calls: bool) -> str:
    """A server's finish_reason in our three words: "length" stays (the reply is cut), anything
    else is "tool_calls" when there are calls (Ollama says "stop") and "stop" when not
    ("content_filter", "eos", "function_call" and other servers' words)."""
    if raw == LENGTH:
        return LENGTH
    return TOOL_CALLS if has_calls else STOP


def _whole_json(text: str) -> bool:
    """Arguments that parse (llama-server sends a call cut at max_tokens as far as it got, and
    refuses a conversation that carries it back: HTTP 500, "Failed to parse tool call arguments").
    Nested deeper than Python parses counts as cut."""
    try:
        json.loads(text)
    except (ValueError, RecursionError):
        return False
    return True


BackendEvent = Union[TextDelta, ReasoningDelta, Reply]


@dataclass
class Request:
    messages: list[dict[str, Any]]
    tools: list[dict[str, Any]]
    tool_choice: str | dict[str, Any] | None = None  # "auto" | "required" | "none" | {"type": "function", ...}
    temperature: float | None = None
    max_tokens: int | None = None


class Backend(Protocol):
    """What the engine, the terminal, serve and tracing need of a model: one streamed completion at a time.

    Attributes are set at construction and never blank: `model` is the model in use (with a base
    URL and no model named, the first one the server lists, chosen at start-up)."""

    name: str  # the backend kind: "openai" | "local"
    model: str  # the model in use
    provider: str  # who runs the model, for tracing (gen_ai.system): "openai", "llama.cpp", ...
    server_address: str | None  # host of the endpoint, None in-process
    server_port: int | None

    def complete(self, request: Request) -> Iterator[BackendEvent]:
        """Yield TextDeltas as text arrives, then exactly one Reply, only for a reply that ended
        (a finish_reason). Raise BackendError on failure; after one, no call of that reply runs."""
        ...

    def describe(self) -> str:
        """One line for the banner, `toolchat models` and tracing: kind, model, where it runs."""
        ...

    def list_models(self) -> list[str]:
        """The models this backend can switch to (`/model NAME`)."""
        ...

    def close(self) -> None:
        """Release the connection pool or the loaded model; the backend is not used after."""
        ...


def new_call_id() -> str:
    return "call_" + uuid.uuid4().hex[:24]
