"""The backend protocol: messages and tool definitions in, a stream of events out."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
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
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0

    def as_dict(self) -> dict[str, int]:
        return {
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "cached_tokens": self.cached_tokens,
        }


@dataclass
class TextDelta:
    text: str


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

    def __post_init__(self) -> None:
        self.finish_reason = finish_reason(self.finish_reason, bool(self.tool_calls))


def finish_reason(raw: str | None, has_calls: bool) -> str:
    """A server's finish_reason in our three words: "length" stays (the reply is cut), anything
    else is "tool_calls" when there are calls (Ollama says "stop") and "stop" when not
    ("content_filter", "eos", "function_call" and other servers' words)."""
    if raw == LENGTH:
        return LENGTH
    return TOOL_CALLS if has_calls else STOP


BackendEvent = Union[TextDelta, Reply]


@dataclass
class Request:
    messages: list[dict[str, Any]]
    tools: list[dict[str, Any]]
    tool_choice: str | dict[str, Any] | None = None  # "auto" | "required" | "none" | {"type": "function", ...}
    temperature: float | None = None
    max_tokens: int | None = None


class Backend(Protocol):
    """What the engine, the faces and tracing need of a model: one streamed completion at a time.

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
