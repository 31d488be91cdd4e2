"""The access log of `toolchat serve`: one line per request, written when its answer has been
sent (a stream included): method, path, status, model, tokens and seconds. The path is the
client's own text, so it is neutralised (no escape reaches the terminal, no `%0a` forges a
second line) and redacted; the query string, headers and bodies are never written."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from toolchat.redact import Redactor
from toolchat.safety import one_line

NOTE = "toolchat.access"  # the scope key a route notes its model, tokens and outcome under


def note(scope: dict[str, Any], **facts: Any) -> None:
    """What a route knows about its request, for the line (model=..., tokens=(prompt, completion),
    gone="mid-stream"; status=504 with cut="why" for a stream that ended otherwise than it began)."""
    scope.setdefault(NOTE, {}).update(facts)


def line(method: str, path: str, status: int | None, facts: dict[str, Any], seconds: float) -> str:
    parts = [method, one_line(path), str(status) if status is not None else "-"]
    if facts.get("model"):
        parts.append(f"model={facts['model']}")
    if facts.get("tokens") is not None:
        prompt, completion = facts["tokens"]
        parts.append("tokens=" + "+".join("-" if n is None else str(n) for n in (prompt, completion)))  # -: unreported
    parts.append(f"{seconds:.3f} s")
    if facts.get("gone"):
        parts.append(f"(the client went away {facts['gone']})")
    elif facts.get("cut"):
        parts.append(f"({facts['cut']})")
    return " ".join(parts)


class AccessLog:
    """ASGI middleware: times each HTTP request and says its line through `say`."""

    def __init__(self, app: Any, say: Callable[[str], None], redactor: Redactor) -> None:
        self.app, self.say, self.redactor = app, say, redactor

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.monotonic()
        status: list[int] = []

        async def sending(message: Any) -> None:
            if message["type"] == "http.response.start":
                status.append(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            facts = scope.get(NOTE, {})
            # a client that went away is 499 even when its stream had begun with a 200: it did not get it all
            code = 499 if facts.get("gone") else facts.get("status") or (status[0] if status else None)
            text = line(scope["method"], scope["path"], code, facts, time.monotonic() - start)
            self.say(self.redactor.redact(text))
