"""Long conversations against real peers: llama.cpp's own llama-server with a small -c (its window
read from /props, its refusal `exceed_context_size_error`), and the local backend's n_ctx."""

from __future__ import annotations

import pytest

from tests.support.llama_cpp import llama_cpp_server
from tests.support.windowed import plain_engine
from toolchat.backends.base import Request
from toolchat.backends.openai import OpenAIBackend
from toolchat.config.settings import Settings
from toolchat.engine import Compacted, Engine, Stopped
from toolchat.errors import ContextOverflow

pytestmark = pytest.mark.timeout(600)


def long_turns(engine: Engine, count: int) -> list:
    results = []
    for n in range(count):
        results.append(engine.run_turn(f"Note {n}: " + "the sky is blue and the grass is green. " * 30 + " Ok?"))
    return results


def test_llama_server_with_a_1024_window_keeps_answering_long_turns(bundled_gguf, tmp_path):
    with llama_cpp_server(bundled_gguf, tmp_path, "-c", "1024") as url:
        settings = Settings(base_url=url, model="bundled", max_tokens=32, stream=False)
        backend = OpenAIBackend(settings, {})
        assert backend.context_window == 1024  # n_ctx from /props, the runtime size
        with pytest.raises(ContextOverflow) as refused:  # its own refusal, recognised
            list(backend.complete(Request([{"role": "user", "content": "word " * 3000}], [])))
        assert refused.value.window == 1024 and refused.value.prompt_tokens > 1024
        events: list = []
        engine = plain_engine(backend, settings, events, tmp_path)
        results = long_turns(engine, 3)
        assert all(result.stopped is not Stopped.ERROR for result in results), [r.error for r in results]
        assert any(isinstance(event, Compacted) for event in events)
        backend.close()


def test_the_local_backend_compacts_instead_of_trimming(bundled_gguf, tmp_path):
    from toolchat.backends.local import LocalBackend

    settings = Settings(backend="local", model=str(bundled_gguf), n_ctx=1024, max_tokens=24)
    backend = LocalBackend(settings, tmp_path)
    events: list = []
    engine = plain_engine(backend, settings, events, tmp_path)
    results = long_turns(engine, 5)
    assert all(result.stopped is not Stopped.ERROR for result in results), [r.error for r in results]
    stages = [event.stage for event in events if isinstance(event, Compacted)]
    assert "summary" in stages
    assert engine.messages[0]["content"] == "Answer in one short sentence."
    assert engine.messages[-2]["content"].startswith("Note 4:")  # the current question stays whole
    backend.close()
