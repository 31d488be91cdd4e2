"""Long conversations against servers with a small window (issue 25): counted before sending,
compacted in stages, a refusal for overflow learnt from, Ollama's silent truncation said."""

from __future__ import annotations

import json

import pytest

from tests.support.serving import post
from tests.support.windowed import READ_PART, WindowedServer
from toolchat.backends.openai import OpenAIBackend
from toolchat.config.settings import Settings
from toolchat.conversation import Conversation
from toolchat.engine import Compacted, Engine, Policy
from toolchat.engine.compaction import NOTE_START, compacted
from toolchat.sessions import SessionLog, load
from toolchat.tools import RunLimits, discover


@pytest.fixture
def reader(plugin_dir):
    return plugin_dir(reader=READ_PART)


def ask(run_cli, server, reader, *args):
    return run_cli(
        "ask", "--base-url", server.url, "-m", "small", "--yes", "-t", str(reader), "--no-bundled-tools", *args
    )


@pytest.mark.parametrize(("shape", "listed"), [("vllm", True), ("vllm", False), ("openai", False), ("llamacpp", False)])
def test_six_calls_in_a_6000_token_window_end_with_the_answer(run_cli, reader, shape, listed):
    with WindowedServer(6000, shape, listed) as server:
        done = ask(run_cli, server, reader, "READ 6")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "read 6 parts for: READ 6"
    assert "older tool outputs replaced by a note" in done.stderr
    assert max(server.sizes) <= 6000
    assert server.refused == (0 if listed else 1)  # a window the server lists is never exceeded


def test_the_json_usage_gives_the_window_and_compacted_outputs_keep_their_calls(run_cli, reader):
    with WindowedServer(6000) as server:
        done = ask(run_cli, server, reader, "--json", "READ 6")
    result = json.loads(done.stdout)
    assert result["usage"]["context_window"] == 6000
    messages = result["messages"]
    noted = [m for m in messages if m["role"] == "tool" and m["content"].startswith(NOTE_START)]
    assert noted and all(compacted(m) for m in noted)
    calls = [part["id"] for m in messages for part in m.get("tool_calls") or []]
    assert calls == [m["tool_call_id"] for m in messages if m["role"] == "tool"]  # every call keeps its answer


def test_a_message_bigger_than_the_window_is_one_clear_line_and_exit_1(run_cli, reader):
    with WindowedServer(1000, "llamacpp", listed=False) as server:
        done = ask(run_cli, server, reader, "tell me " * 2000)
    assert done.returncode == 1
    assert "too long for the model's window" in done.stderr and "1000" in done.stderr
    assert len(done.stderr.strip().splitlines()) <= 2, done.stderr


def test_ollama_cutting_the_conversation_silently_is_said(run_cli, reader, tmp_path):
    with WindowedServer(1500, "ollama", listed=False) as server:
        done = ask(run_cli, server, reader, "READ 5")
    assert "cut the conversation to fit its context window" in done.stderr
    assert "num_ctx" in done.stderr


def engine_against(server: WindowedServer, reader, conversation: Conversation, events: list) -> Engine:
    settings = Settings(base_url=server.url, model="small", stream=False)
    backend = OpenAIBackend(settings, {})
    engine = Engine(
        backend,
        discover([reader], bundled=False),
        approve=lambda pending: None,
        on_event=events.append,
        policy=Policy(True),
        limits=RunLimits(reader),
        conversation=conversation,
    )
    engine.configure(settings)
    return engine


def test_earlier_turns_are_summarized_and_a_resumed_session_sends_what_the_model_saw(reader, tmp_path):
    log = SessionLog(tmp_path / "s.jsonl", {"model": "small"})
    events: list = []
    with WindowedServer(3000) as server:
        engine = engine_against(server, reader, Conversation("Be brief.", log), events)
        assert engine.run_turn("READ 2").answer == "read 2 parts for: READ 2"
        for n in range(6):
            question = f"question {n}: " + "tell me more " * 150
            assert engine.run_turn(question).answer == f"answer to: {question}"
        stages = [e.stage for e in events if isinstance(e, Compacted)]
        assert "summary" in stages and max(server.sizes) <= 3000
        assert engine.messages[0] == {"role": "system", "content": "Be brief."}
        summaries = [m for m in engine.messages if m["role"] == "user" and compacted(m)]
        assert len(summaries) == 1 and "SUMMARY:" in summaries[0]["content"]
        sent = server.requests[-1]["messages"]
    log.close()
    replayed = load(tmp_path / "s.jsonl").messages
    assert replayed == engine.messages
    assert [m["content"] for m in sent] == [m["content"] for m in replayed[: len(sent)]]


def test_compact_on_demand_shrinks_the_next_request(reader, tmp_path):
    events: list = []
    with WindowedServer(50_000) as server:
        engine = engine_against(server, reader, Conversation(), events)
        engine.run_turn("READ 3")
        engine.run_turn("and then?")
        before = server.sizes[-1]
        done = engine.compact("the part numbers")
        engine.run_turn("and now?")
        assert server.sizes[-1] < before / 2
        assert [e.stage for e in done][-1] == "summary"
        summary_request = next(r for r in server.requests if not r.get("tools"))
        assert "Keep especially: the part numbers." in summary_request["messages"][0]["content"]


def test_serve_answers_messages_that_cannot_fit_in_openais_shape_and_compacts_its_own_rounds(serve, reader):
    with WindowedServer(6000, "vllm", listed=False) as model:
        served = serve("-m", "small", "-t", str(reader), "--no-bundled-tools", "--yes", base_url=model.url)
        status, _, body = post(
            f"{served.url}/chat/completions", {"messages": [{"role": "user", "content": "x " * 30000}]}
        )
        assert status == 400, body
        error = json.loads(body)["error"]
        assert (error["code"], error["type"]) == ("context_length_exceeded", "invalid_request_error")
        status, _, body = post(f"{served.url}/chat/completions", {"messages": [{"role": "user", "content": "READ 6"}]})
        assert status == 200, body
        assert json.loads(body)["choices"][0]["message"]["content"] == "read 6 parts for: READ 6"
