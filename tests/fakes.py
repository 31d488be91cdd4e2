"""A scripted backend for engine tests: each model call returns the next scripted Reply."""

from __future__ import annotations

import copy
import json
from typing import Any, Iterator

from toolchat.backends.base import BackendEvent, Reply, Request, TextDelta, ToolCall, Usage
from toolchat.errors import BackendError


def call(name: str, arguments: Any = None, id: str | None = None) -> ToolCall:
    raw = arguments if isinstance(arguments, str) else json.dumps(arguments or {})
    return ToolCall(id or f"call_{name}_{abs(hash(raw)) % 10_000}", name, raw)


def calls(*tool_calls: ToolCall, text: str = "") -> Reply:
    return Reply(text, list(tool_calls), Usage(10, 2, 5))


def answer(text: str) -> Reply:
    return Reply(text, [], Usage(20, 4, 15))


class ScriptedBackend:
    name = "scripted"
    model = "scripted-model"

    def __init__(self, *replies: Reply | Exception) -> None:
        self.replies = list(replies)
        self.requests: list[Request] = []

    def complete(self, request: Request) -> Iterator[BackendEvent]:
        self.requests.append(copy.deepcopy(request))
        if not self.replies:
            raise AssertionError("the model was called more often than scripted")
        reply = self.replies.pop(0)
        if isinstance(reply, Exception):
            raise reply
        for word in reply.text.split(" "):
            yield TextDelta(word + " ")
        yield reply

    def list_models(self) -> list[str]:
        return [self.model]


class Broken(BackendError):
    pass
