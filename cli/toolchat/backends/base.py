"""The backend protocol: messages and tool definitions in, a stream of events out."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any, Iterator, Protocol, Union


@dataclass
class ToolCall:
    """One call the model asked for; `arguments` is raw (usually a JSON string)."""

    id: str
    name: str
    arguments: str

    def message_part(self) -> dict[str, Any]:
        return {"id": self.id, "type": "function",
                "function": {"name": self.name, "arguments": self.arguments}}


@dataclass
class Usage:
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0

    def as_dict(self) -> dict[str, int]:
        return {"prompt_tokens": self.prompt_tokens, "completion_tokens": self.completion_tokens,
                "cached_tokens": self.cached_tokens}


@dataclass
class TextDelta:
    text: str


@dataclass
class Reply:
    """The end of one model call: the whole text, the calls, and usage if reported."""

    text: str
    tool_calls: list[ToolCall] = field(default_factory=list)
    usage: Usage | None = None
    finish_reason: str | None = None


BackendEvent = Union[TextDelta, Reply]


@dataclass
class Request:
    messages: list[dict[str, Any]]
    tools: list[dict[str, Any]]
    tool_choice: str | dict[str, Any] | None = None  # "auto" | "required" | "none" | {"type": "function", ...}
    temperature: float | None = None
    max_tokens: int | None = None


class Backend(Protocol):
    """What the engine needs of a model: one streamed completion at a time."""

    name: str
    model: str

    def complete(self, request: Request) -> Iterator[BackendEvent]:
        """Yield TextDeltas as text arrives, then exactly one Reply. Raise BackendError on failure."""
        ...

    def list_models(self) -> list[str]:
        ...


def new_call_id() -> str:
    return "call_" + uuid.uuid4().hex[:24]
