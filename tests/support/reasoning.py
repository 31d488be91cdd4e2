"""Reasoning as servers stream it, for the tests of reasoning models."""

from __future__ import annotations

from typing import Any

from tests.support.fakeserver import Script, chunk, sse

THOUGHT = "The user wants the weather. I should call get_weather for Singapore."


def thinking(field: str, text: str, pieces: int = 4) -> list[dict[str, Any]]:
    """Reasoning deltas in `field`, as vLLM (`reasoning`) or DeepSeek and llama-server
    (`reasoning_content`) stream them before the content or the calls."""
    size = max(1, len(text) // pieces)
    return [chunk({"role": "assistant", field: ""})] + [
        chunk({field: text[i : i + size]}) for i in range(0, len(text), size)
    ]


def with_thought(field: str, text: str, rest: list[dict[str, Any]]) -> Script:
    return sse(thinking(field, text) + rest[1:])  # the reasoning replaces the opening role chunk
