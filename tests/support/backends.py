"""Driving a backend directly, as the engine would."""

from __future__ import annotations

from typing import Any

from toolchat.backends.base import Reply, Request, TextDelta
from toolchat.tools import discover

TOOLS = discover([]).definitions()  # the bundled tools' schemas


def run(
    backend: Any, messages: list[dict[str, Any]], tools: list[dict[str, Any]] = TOOLS, **kwargs: Any
) -> tuple[str, Reply]:
    """One model call: (the streamed text, the final Reply)."""
    deltas, reply = [], None
    for event in backend.complete(Request(messages, tools, **kwargs)):
        if isinstance(event, TextDelta):
            deltas.append(event.text)
        else:
            reply = event
    return "".join(deltas), reply
