"""Tracing: a real `ask` turn against a loopback model server, its spans caught by the SDK's
in-memory exporter and checked against the GenAI semantic conventions."""

from __future__ import annotations

import io
import json

import pytest
from opentelemetry import trace
from opentelemetry.trace import SpanKind, StatusCode

from tests.support.fakes import ScriptedBackend, answer, call, calls
from tests.support.fakeserver import FakeServer, error, openai_calls, sse, text_stream
from tests.support.tracing import KEY, ask
from toolchat.ask import AskOptions, run_ask
from toolchat.config.settings import resolve
from toolchat.engine import CallDecided, Engine, Policy, TextDelta
from toolchat.env import Environment
from toolchat.tools import Registry, RunLimits, discover
from toolchat.tracing import control as tracing

USAGE = {"prompt_tokens": 90, "completion_tokens": 8, "prompt_tokens_details": {"cached_tokens": 64}}


@pytest.fixture
def server():
    with FakeServer() as running:
        yield running


class Interrupting(ScriptedBackend):
    """Streams a word, then the user presses Ctrl-C."""

    def complete(self, request):
        yield TextDelta("Once ")
        raise KeyboardInterrupt


def weather(server: FakeServer) -> None:
    server.add(
        sse(openai_calls([("get_weather", {"city": "Singapore"})])), sse(text_stream("Sunny, 20C.", usage=USAGE))
    )


def test_a_turn_is_an_agent_span_with_a_chat_span_per_model_call_and_a_tool_span_per_call(server, tmp_path, caught):
    spans = caught()
    weather(server)
    code, out, _ = ask(server, tmp_path, "Weather in Singapore?", temperature=0.2, max_tokens=300)
    assert (code, out) == (0, "Sunny, 20C.\n")
    finished = spans.exporter.get_finished_spans()
    assert [s.name for s in finished] == [
        "chat fake-model",
        "execute_tool get_weather",
        "chat fake-model",
        "invoke_agent toolchat",
    ]
    first, tool, second, agent = finished
    assert agent.kind is SpanKind.INTERNAL and agent.parent is None
    assert {s.parent.span_id for s in (first, tool, second)} == {agent.context.span_id}
    assert len({s.context.trace_id for s in finished}) == 1
    assert dict(agent.attributes) | {} == {
        "gen_ai.operation.name": "invoke_agent",
        "gen_ai.agent.name": "toolchat",
        "gen_ai.provider.name": "openai",
        "server.address": "127.0.0.1",
        "server.port": server._server.server_address[1],
        "gen_ai.request.model": "fake-model",
        "gen_ai.usage.input_tokens": 90,
        "gen_ai.usage.output_tokens": 8,
        "gen_ai.usage.cache_read.input_tokens": 64,
        "toolchat.turn.stopped": "answer",
        "toolchat.turn.rounds": 2,
        "toolchat.turn.tool_calls": 1,
    }
    assert second.kind is SpanKind.CLIENT
    assert second.attributes["gen_ai.operation.name"] == "chat"
    assert second.attributes["gen_ai.request.temperature"] == 0.2
    assert second.attributes["gen_ai.request.max_tokens"] == 300
    assert second.attributes["gen_ai.request.stream"] is True
    assert (
        second.attributes["gen_ai.usage.input_tokens"],
        second.attributes["gen_ai.usage.output_tokens"],
        second.attributes["gen_ai.usage.cache_read.input_tokens"],
    ) == (90, 8, 64)
    assert second.attributes["gen_ai.response.finish_reasons"] == ("stop",)
    first_chunk = second.attributes["gen_ai.response.time_to_first_chunk"]
    assert 0 < first_chunk < (second.end_time - second.start_time) / 1e9
    assert first.attributes["gen_ai.response.finish_reasons"] == ("tool_calls",)
    assert "gen_ai.usage.input_tokens" not in first.attributes  # the server reported none for it
    assert dict(tool.attributes) == {
        "gen_ai.operation.name": "execute_tool",
        "gen_ai.tool.name": "get_weather",
        "gen_ai.tool.call.id": "call_0abc",
        "gen_ai.tool.type": "function",
        "gen_ai.tool.description": tool.attributes["gen_ai.tool.description"],
        "toolchat.tool.origin": tool.attributes["toolchat.tool.origin"],
        "toolchat.tool.approval": "allowed",
        "toolchat.tool.approved": True,
        "toolchat.tool.approval_wait_seconds": tool.attributes["toolchat.tool.approval_wait_seconds"],
        "toolchat.tool.seconds": tool.attributes["toolchat.tool.seconds"],
        "toolchat.tool.outcome": "ok",
    }
    assert tool.attributes["toolchat.tool.origin"].endswith("weather.py")
    assert tool.attributes["gen_ai.tool.description"].startswith("Get weather information for a city.")
    assert first.end_time <= tool.start_time <= tool.end_time <= second.start_time <= second.end_time <= agent.end_time


def test_no_content_is_recorded_unless_asked_for(server, tmp_path, caught):
    spans = caught(content=False)
    weather(server)
    ask(server, tmp_path, f"Weather in Singapore? my key is {KEY}", system="You are terse.")
    everything = json.dumps([dict(s.attributes) for s in spans.exporter.get_finished_spans()])
    for absent in ("Singapore", "Sunny", "terse", KEY[:12], "gen_ai.input.messages", "gen_ai.tool.call.arguments"):
        assert absent not in everything


def test_a_tool_name_the_model_made_of_the_key_is_traced_as_stars(server, tmp_path, caught):
    spans = caught(content=False)  # a tool's name is recorded even without content
    server.add(sse(openai_calls([(KEY, {})])), sse(text_stream("No such tool.")))
    ask(server, tmp_path, "call it")
    (tool,) = [s for s in spans.exporter.get_finished_spans() if s.name.startswith("execute_tool")]
    assert tool.name == "execute_tool ***" and tool.attributes["gen_ai.tool.name"] == "***"
    everything = json.dumps([[s.name, dict(s.attributes)] for s in spans.exporter.get_finished_spans()])
    assert all(KEY[i : i + 8] not in everything for i in range(len(KEY) - 7))


def test_a_call_id_the_server_made_of_the_key_is_traced_as_stars(server, tmp_path, caught):
    spans = caught(content=False)  # a call's id is recorded even without content
    stream = openai_calls([("get_weather", {"city": "Paris"})])
    stream[1]["choices"][0]["delta"]["tool_calls"][0]["id"] = KEY  # a server may echo anything as an id
    server.add(sse(stream), sse(text_stream("Sunny.")))
    ask(server, tmp_path, "weather?")
    (tool,) = [s for s in spans.exporter.get_finished_spans() if s.name.startswith("execute_tool")]
    assert tool.attributes["gen_ai.tool.call.id"] == "***"
    everything = json.dumps([[s.name, dict(s.attributes)] for s in spans.exporter.get_finished_spans()])
    assert all(KEY[i : i + 8] not in everything for i in range(len(KEY) - 7))


def test_content_when_opted_in_follows_the_conventions_and_never_holds_the_key(server, tmp_path, caught):
    spans = caught(content=True)
    weather(server)
    ask(server, tmp_path, f"Weather in Singapore? my key is {KEY}", system="You are terse.")
    found = spans.spans()
    agent, tool = found["invoke_agent toolchat"], found["execute_tool get_weather"]
    assert json.loads(agent.attributes["gen_ai.system_instructions"]) == [{"type": "text", "content": "You are terse."}]
    assert json.loads(agent.attributes["gen_ai.input.messages"]) == [
        {"role": "user", "parts": [{"type": "text", "content": "Weather in Singapore? my key is ***"}]}
    ]
    assert json.loads(agent.attributes["gen_ai.output.messages"])[0]["parts"][0]["content"] == "Sunny, 20C."
    assert json.loads(tool.attributes["gen_ai.tool.call.arguments"]) == {"city": "Singapore"}
    assert "It's sunny in Singapore" in tool.attributes["gen_ai.tool.call.result"]
    chats = [s for s in spans.exporter.get_finished_spans() if s.name.startswith("chat")]
    sent = json.loads(chats[1].attributes["gen_ai.input.messages"])
    assert [m["role"] for m in sent] == ["system", "user", "assistant", "tool"]
    assert sent[2]["parts"] == [
        {"type": "tool_call", "id": "call_0abc", "name": "get_weather", "arguments": {"city": "Singapore"}}
    ]
    assert sent[3]["parts"][0]["type"] == "tool_call_response" and sent[3]["parts"][0]["id"] == "call_0abc"
    assert json.loads(chats[0].attributes["gen_ai.output.messages"]) == [
        {
            "role": "assistant",
            "parts": [
                {"type": "tool_call", "id": "call_0abc", "name": "get_weather", "arguments": {"city": "Singapore"}}
            ],
            "finish_reason": "tool_calls",
        }
    ]
    everything = json.dumps([dict(s.attributes) for s in spans.exporter.get_finished_spans()])
    assert KEY[:10] not in everything and KEY[-10:] not in everything


def test_a_denied_call_and_a_failing_model_call_say_so(server, tmp_path, caught):
    spans = caught()
    server.add(sse(openai_calls([("get_weather", {"city": "Oslo"})])), error(400, "context length exceeded"))
    code, _, _ = ask(server, tmp_path, "Weather in Oslo?", allow=[])  # no terminal to ask: denied
    assert code == 1
    finished = spans.exporter.get_finished_spans()
    tool = next(s for s in finished if s.name == "execute_tool get_weather")
    outcome = (tool.attributes["toolchat.tool.outcome"], tool.attributes["toolchat.tool.approval"])
    assert outcome == ("denied", "asked")
    assert "error.type" not in tool.attributes and tool.status.status_code is StatusCode.UNSET
    failed = [s for s in finished if s.name.startswith("chat")][-1]
    assert failed.attributes["error.type"] == "400" and failed.status.status_code is StatusCode.ERROR
    assert "context length exceeded" in failed.status.description
    agent = next(s for s in finished if s.name == "invoke_agent toolchat")
    assert agent.attributes["toolchat.turn.stopped"] == "error" and agent.attributes["error.type"] == "400"


def test_what_the_tool_caller_traces_nests_under_execute_tool(tmp_path, caught):
    """Between the approval and the result the tool's span is current on the engine's thread:
    an MCP client span started there (the MCP loop captures this context) is its child."""
    spans = caught()
    nested: list[object] = []

    def sink(event: object) -> None:
        if isinstance(event, CallDecided):
            client = spans.tracing.provider.get_tracer("mcp-client")
            with client.start_as_current_span("tools/call get_weather") as span:
                nested.append(span)

    backend = ScriptedBackend(calls(call("get_weather", {"city": "Lima"}, id="call_1")), answer("Warm."))
    engine = Engine(
        backend,
        discover([], bundled=True),
        approve=lambda p: None,
        on_event=tracing.traced(sink, backend, None, {}),
        policy=Policy(approve_all=True),
        limits=RunLimits(tmp_path),
    )
    assert engine.run_turn("Weather in Lima?").stopped == "answer"
    found = spans.spans()
    tool = found["execute_tool get_weather"]
    assert found["tools/call get_weather"].parent.span_id == tool.context.span_id
    assert trace.get_current_span() is trace.INVALID_SPAN  # nothing left attached after the turn
    assert found["invoke_agent toolchat"].attributes["gen_ai.provider.name"] == "scripted"


def test_ctrl_c_while_the_model_streams_ends_every_span_as_cancelled(server, tmp_path, caught):
    spans = caught()
    backend = Interrupting()
    engine = Engine(
        backend,
        Registry(),
        approve=lambda p: None,
        on_event=tracing.traced(lambda e: None, backend, None, {}),
        policy=Policy(),
        limits=RunLimits(tmp_path),
    )
    assert engine.run_turn("Tell me a story").stopped == "interrupted"
    found = spans.spans()
    chat, agent = found["chat scripted-model"], found["invoke_agent toolchat"]
    assert chat.attributes["error.type"] == "cancelled" and chat.status.status_code is StatusCode.ERROR
    assert agent.attributes["toolchat.turn.stopped"] == "interrupted"
    assert agent.attributes["error.type"] == "cancelled"


def test_a_serve_request_joins_the_clients_trace(tmp_path, caught):
    spans = caught()
    client_trace, client_span = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
    headers = {"Traceparent": f"00-{client_trace}-{client_span}-01", "content-type": "application/json"}
    backend = ScriptedBackend(answer("Hi."))
    with tracing.serve_turn(headers, None, {}) as wrap:
        engine = Engine(
            backend,
            Registry(),
            approve=lambda p: None,
            on_event=wrap(lambda e: None, backend),
            policy=Policy(),
            limits=RunLimits(tmp_path),
        )
        engine.run_turn("hello")
    agent = spans.spans()["invoke_agent toolchat"]
    assert f"{agent.context.trace_id:032x}" == client_trace
    assert f"{agent.parent.span_id:016x}" == client_span and agent.parent.is_remote
    assert trace.get_current_span() is trace.INVALID_SPAN


def test_with_tracing_off_serve_turn_hands_the_sink_back_untouched():
    assert tracing._current is None
    sink = print
    with tracing.serve_turn({"traceparent": "00-" + "1" * 32 + "-" + "2" * 16 + "-01"}, None, {}) as wrap:
        assert wrap(sink, object()) is sink
    assert tracing.traced(sink, object(), None, {"OTEL_EXPORTER_OTLP_ENDPOINT": ""}) is sink
    assert tracing._current is None


def test_without_the_sdk_installed_tracing_asked_for_is_one_warning_and_the_chat_goes_on(monkeypatch, tmp_path):
    import sys
    from types import SimpleNamespace

    monkeypatch.setitem(sys.modules, "toolchat.tracing.setup", None)  # as if the `trace` extra were missing
    monkeypatch.setattr(tracing, "_missing", False)
    told: list[str] = []
    settings = SimpleNamespace(trace=tmp_path / "spans.jsonl")
    assert tracing.start(settings, {}, warn=told.append) is None
    assert tracing.start(settings, {}, warn=told.append) is None
    assert told == ["tracing needs the OpenTelemetry SDK: pip install 'toolchat[trace]'; going on without it"]
    assert not (tmp_path / "spans.jsonl").exists()


def test_a_model_server_that_is_gone_is_a_connection_error(tmp_path, caught):
    from tests.support.ports import free_port

    spans = caught()
    nobody = f"http://127.0.0.1:{free_port()}/v1"  # nothing listens there
    resolved = resolve([], {"base_url": nobody, "model": "m", "max_retries": 0}, tmp_path, environ={})
    env = Environment(stdin=io.StringIO(""), stdout=io.StringIO(), stderr=io.StringIO(), environ={}, cwd=tmp_path)
    assert run_ask(resolved, Registry(), AskOptions(["hi"]), env, approve_all=False) == 1
    chat = spans.spans()["chat m"]
    assert chat.attributes["error.type"] == "connection_error" and chat.kind is SpanKind.CLIENT


def test_a_trace_file_that_exists_is_made_private_before_spans_go_in(tmp_path):
    from toolchat.tracing.setup import JsonLinesExporter

    file = tmp_path / "spans.jsonl"
    file.write_text("")
    file.chmod(0o644)
    JsonLinesExporter(file).shutdown()
    assert file.stat().st_mode & 0o777 == 0o600


def test_each_compaction_stage_is_a_span_under_the_turn(tmp_path, caught):
    from tests.support.windowed import READ_PART, WindowedServer

    spans = caught()
    (tmp_path / "reader").mkdir()
    (tmp_path / "reader" / "reader.py").write_text(READ_PART)
    with WindowedServer(6000) as model:
        code, out, _ = ask(model, tmp_path, "READ 6", tool_paths=[tmp_path / "reader"], allow=["read_part"])
    assert (code, out) == (0, "read 6 parts for: READ 6\n")
    finished = spans.exporter.get_finished_spans()
    compactions = [span for span in finished if span.name.startswith("compact ")]
    agent = next(span for span in finished if span.name == "invoke_agent toolchat")
    assert compactions and all(span.parent.span_id == agent.context.span_id for span in compactions)
    first = compactions[0].attributes
    assert first["toolchat.compaction.stage"] == "outputs" and first["toolchat.context_window"] == 6000
    assert first["toolchat.compaction.tokens_after"] < first["toolchat.compaction.tokens_before"]
