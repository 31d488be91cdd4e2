"""Counting a conversation before it is sent, against the model's context window.

The estimate: the prompt tokens the server reported for the last request, plus one token for
every three characters added since (message text, call arguments, reasoning and tool schemas;
three is on the high side for English and code, so the estimate errs towards compacting early).
With no report yet (the first request, or a backend that reports none), the whole conversation
is counted at three characters a token."""

from __future__ import annotations

import json
import math
from typing import Any

from toolchat.backends.base import Usage

CHARS_PER_TOKEN = 3
PER_MESSAGE = 8  # the template's role markers and separators, in characters


def size_of(messages: list[dict[str, Any]], tools: list[dict[str, Any]]) -> int:
    """The characters of what a request carries: each message's text, calls and reasoning, and the tools."""
    total = len(json.dumps(tools, ensure_ascii=False)) if tools else 0
    for message in messages:
        total += PER_MESSAGE + len(str(message.get("content") or ""))
        if message.get("tool_calls"):
            total += len(json.dumps(message["tool_calls"], ensure_ascii=False))
        reasoning = message.get("reasoning")
        if isinstance(reasoning, dict):
            total += len(str(reasoning.get("text") or ""))
    return total


class Meter:
    """What the conversation will cost in tokens, learned from each round's reported usage."""

    def __init__(self) -> None:
        self._told: tuple[int, int] | None = None  # (prompt tokens reported, characters sent then)
        self._last_prompt = 0
        self.used = 0  # the last count: reported, or estimated before sending

    def estimate(self, messages: list[dict[str, Any]], tools: list[dict[str, Any]]) -> int:
        chars = size_of(messages, tools)
        if self._told is None:
            count = math.ceil(chars / CHARS_PER_TOKEN)
        else:
            tokens, then = self._told
            if chars >= then:
                count = tokens + math.ceil((chars - then) / CHARS_PER_TOKEN)
            else:  # compacted since: the same tokens per character as last time
                count = math.ceil(tokens * chars / then) if then else 0
        self.used = count
        return count

    def observe(self, usage: Usage | None, chars: int) -> bool:
        """Learn from a round's usage; True when the count grew under half what the characters
        added cost at the last report's rate (a server that cut the conversation to fit, as
        Ollama does past num_ctx)."""
        if usage is None or not usage.prompt_tokens:  # not reported: keep estimating
            return False
        pinned = False
        if self._told is not None and self._told[1] > 0:
            tokens, then = self._told
            grew = chars - then
            expected = grew * tokens / then
            pinned = grew > 64 * CHARS_PER_TOKEN and usage.prompt_tokens - self._last_prompt < expected / 2
        self._told, self._last_prompt = (usage.prompt_tokens, chars), usage.prompt_tokens
        self.used = usage.prompt_tokens
        return pinned

    def forget(self) -> None:
        """A new backend or a reset conversation: what was reported no longer holds."""
        self._told, self._last_prompt, self.used = None, 0, 0
