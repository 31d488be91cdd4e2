"""The model's own summary of the earlier turns: compaction's last stage.

The earlier messages go to the model as one transcript (each message cut to a share of what fits,
tool outputs shortest), with an instruction to summarize and what the user asked to keep; the
reply's text is the summary. Nothing of this call is shown while it streams."""

from __future__ import annotations

import json
from typing import Any

from toolchat.backends.base import Backend, Reply, Request, Usage
from toolchat.engine.context import CHARS_PER_TOKEN
from toolchat.errors import BackendError

SUMMARY_MARK = "[Summary of the earlier conversation, written when it was compacted]\n"
INSTRUCTION = (
    "You compact a conversation between a user and an assistant that uses tools. Summarize the "
    "transcript below in a few short paragraphs: what the user wants, what was decided, facts and "
    "results found (names, numbers, file paths), and what is still open. Write only the summary."
)
_LEFT_OUT = "({} earlier messages were left out to fit the context window"


def summarize(
    backend: Backend, messages: list[dict[str, Any]], keep: str | None, window: int
) -> tuple[str, Usage | None]:
    """The summary of `messages` by the model behind `backend`, and the usage of that call. A
    failed call leaves a plain note (the compaction still frees the window) rather than stopping."""
    answer = min(512, max(48, window // 16))  # a summary is short; a small window's shorter
    budget = max(400, (window - answer) * CHARS_PER_TOKEN // 2 - len(INSTRUCTION))
    ask = INSTRUCTION + (f" Keep especially: {keep}." if keep else "")
    request = Request(
        [{"role": "system", "content": ask}, {"role": "user", "content": transcript(messages, budget)}],
        [],
        None,
        0.2,
        answer,
    )
    events = backend.complete(request)
    try:
        reply = next(event for event in events if isinstance(event, Reply))
    except (BackendError, StopIteration) as exc:
        return f"{_LEFT_OUT.format(len(messages))}; summarizing them failed: {exc})", None
    finally:  # Ctrl-C included: the call's stream is closed, not left to the garbage collector
        getattr(events, "close", lambda: None)()
    return reply.text.strip() or _LEFT_OUT.format(len(messages)) + ")", reply.usage


def transcript(messages: list[dict[str, Any]], budget: int) -> str:
    """The messages as plain lines, within `budget` characters: each gets an even share."""
    share = max(80, budget // max(1, len(messages)))
    lines = []
    for message in messages:
        role = str(message.get("role"))
        text = str(message.get("content") or "")
        for part in message.get("tool_calls") or []:
            function = part.get("function") or {}
            text += f"\n(called {function.get('name')} with {json.dumps(function.get('arguments'))[:200]})"
        if len(text) > share:
            text = text[: share - 30] + f" ...[{len(text) - share + 30:,} characters cut]"
        lines.append(f"{role}: {text}")
    return "\n\n".join(lines)[:budget]
