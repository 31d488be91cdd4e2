"""The bundled model's prompt: a stable prefix, then the current turn only. The prefix is the
system prompt, the instructions describing every tool (in one order, whatever the question) and
the example exchange, so it is the same tokens every turn and its KV cache is reused; which tools
a question may call is the grammar's business, not the prompt's. Earlier turns are left out: a
270M base model copies them (a greeting for a weather question) rather than answering."""

from __future__ import annotations

from typing import Any

from toolchat.backends.bundled import with_examples
from toolchat.backends.prompt import generic_messages

# What the engine appends to an answer cut by Ctrl-C: shown to the user, never the model's words
MARKERS = (" [interrupted]", "[interrupted]")


def described(tools: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every tool, in the order of their names: the same prefix whichever tools a question names."""
    return sorted(tools, key=lambda tool: tool["function"]["name"])


def current_turn(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The system prompt and the turn under way (its question, calls and results), without
    toolchat's own markers."""
    start = next((i for i in range(len(messages) - 1, -1, -1) if messages[i]["role"] == "user"), len(messages))
    kept = [m for m in messages[:start] if m["role"] == "system"] + messages[start:]
    return [_unmarked(m) for m in kept]


def prompt_messages(
    messages: list[dict[str, Any]], tools: list[dict[str, Any]], raw: dict[str, str], chatting: bool = False
) -> list[dict[str, Any]]:
    """What the bundled model reads: system, tool instructions, the example, the current turn.
    A question that may call no tool (`chatting`) is answered like the exchange just before it:
    after the example's tool use "Hello" was answered "A coffee costs 3.20 euros." (greedy, every
    time), so the example's greeting comes once more between the prefix and such a question; the
    prefix is unchanged, and the answer to a tool result still follows the tool use."""
    return with_examples(generic_messages(current_turn(messages), described(tools), raw), greeted=chatting)


def _unmarked(message: dict[str, Any]) -> dict[str, Any]:
    content = message.get("content")
    if message["role"] != "assistant" or not isinstance(content, str):
        return message
    for marker in MARKERS:
        if content.endswith(marker):
            return {**message, "content": content[: -len(marker)]}
    return message
