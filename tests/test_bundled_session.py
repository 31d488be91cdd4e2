"""The bundled model in a conversation: each question from a stable prefix plus the current turn."""

from __future__ import annotations

import pytest

pytest.importorskip("llama_cpp")

from toolchat.backends.local import LocalBackend
from toolchat.config.settings import Settings
from toolchat.engine import Engine, Policy
from toolchat.tools import RunLimits, discover


def test_questions_in_a_row_reuse_the_prefix_and_weather_still_runs_get_weather(shared_cache, tmp_path):
    backend = LocalBackend(Settings(backend="local", model="bundled", seed=1), shared_cache)
    engine = Engine(
        backend,
        discover([]),
        approve=lambda p: None,
        on_event=lambda e: None,
        policy=Policy(True),
        limits=RunLimits(tmp_path),
    )
    first = engine.run_turn("What's the weather in Singapore?")
    assert [c.name for c in first.calls] == ["get_weather"] and "Singapore" in first.answer
    engine.conversation.append({"role": "user", "content": "Tell me a story"})
    engine.conversation.append({"role": "assistant", "content": "Once upon a [interrupted]"})  # as after Ctrl-C
    sums = engine.run_turn("What's 17 * 23?")
    assert [c.arguments for c in sums.calls] == [{"expression": "17 * 23"}] and "391" in sums.answer
    assert "[interrupted]" not in backend._prompt and "Singapore" not in backend._prompt  # earlier turns left out
    weather = engine.run_turn("What's the weather in Oslo?")
    assert [c.arguments for c in weather.calls] == [{"city": "Oslo"}] and "Oslo" in weather.answer
    for usage in sums.rounds + weather.rounds:  # from the second turn on the prefix is reused
        assert usage.cached_tokens >= 0.9 * usage.prompt_tokens
