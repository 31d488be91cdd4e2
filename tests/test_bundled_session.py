"""The bundled model in a conversation: each question from a stable prefix plus the current turn."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("llama_cpp")

from toolchat.backends.local import LocalBackend
from toolchat.config.settings import Settings
from toolchat.engine import Engine
from toolchat.tools import discover


def session(cache: Path, folder: Path, **settings: Any) -> tuple[LocalBackend, Engine]:
    """The bundled model and the engine the REPL builds for it, every call approved."""
    chosen = Settings(backend="local", model="bundled", project_dir=folder, **settings)
    backend = LocalBackend(chosen, cache)
    engine = Engine.from_settings(
        chosen, backend, discover([]), approve=lambda p: None, on_event=lambda e: None, approve_all=True
    )
    return backend, engine


def test_questions_in_a_row_reuse_the_prefix_and_weather_still_runs_get_weather(shared_cache, tmp_path):
    backend, engine = session(shared_cache, tmp_path, seed=1)
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


def test_hello_after_a_weather_question_is_greeted_not_answered_with_the_weather_or_the_example(shared_cache, tmp_path):
    _, engine = session(shared_cache, tmp_path, temperature=0.0)  # greedy, the default seed: every time
    weather = engine.run_turn("What's the weather in Singapore?")
    assert [c.name for c in weather.calls] == ["get_weather"] and "Singapore" in weather.answer
    hello = engine.run_turn("Hello")
    assert hello.calls == [] and hello.answer.strip()
    assert hello.answer != weather.answer and "Singapore" not in hello.answer and "sunny" not in hello.answer.lower()
    assert "coffee" not in hello.answer.lower() and "3.20" not in hello.answer  # the steering example's words
    assert any(word in hello.answer.lower() for word in ("hello", "hi", "help")), hello.answer
