"""A scripted backend for engine tests: each model call returns the next scripted Reply. A test
that leaves scripted replies unused fails (`scripted_replies_all_used`, around
every test through conftest.py): a reply the model was never asked for means the test proved less
than it claims."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from toolchat.backends.base import BackendEvent, Reply, Request, TextDelta, ToolCall, Usage
from toolchat.errors import BackendError

_MADE: list[ScriptedBackend] = []  # every ScriptedBackend of the running test


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
    provider = "scripted"
    server_address = None
    server_port = None

    def __init__(self, *replies: Reply | Exception) -> None:
        self.replies = list(replies)
        self.requests: list[Request] = []
        self.closed = False
        _MADE.append(self)

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

    def describe(self) -> str:
        return f"{self.name} · {self.model}"

    def list_models(self) -> list[str]:
        return [self.model]

    def close(self) -> None:
        self.closed = True

    def assert_complete(self) -> None:
        """Fail when scripted replies were never asked for."""
        if self.replies:
            left = ", ".join(
                type(r).__name__ if isinstance(r, Exception) else repr(r.text or r.tool_calls)[:60]
                for r in self.replies
            )
            raise AssertionError(f"{len(self.replies)} scripted repl(ies) never used: {left}")


@contextmanager
def scripted_replies_all_used() -> Iterator[None]:
    """Fail when a ScriptedBackend made inside leaves replies unused (conftest.py wraps every test)."""
    start = len(_MADE)
    yield
    made = _MADE[start:]
    del _MADE[start:]
    for backend in made:
        backend.assert_complete()


class Broken(BackendError):
    pass
