"""Tracing from the outside: `toolchat ask` in a subprocess sending OTLP/HTTP to a receiver on
127.0.0.1 that decodes the protobuf, a collector that never answers, SIGTERM mid-turn, a
`--trace` file read back by `toolchat trace show`, and no OpenTelemetry import when off."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

from tests.support.fakeserver import FakeServer, hang, openai_calls, sse, text_stream

REPO = Path(__file__).resolve().parents[1]
KEY = "sk-live-5a4b3c2d1e0f99887766"
USAGE = {"prompt_tokens": 90, "completion_tokens": 8}


class Receiver:
    """An OTLP/HTTP trace receiver: every request's path, headers and decoded spans."""

    def __init__(self, *statuses: int, delay: float = 0.0) -> None:
        self.posts: list[tuple[str, dict[str, str], bytes]] = []
        self.statuses = list(statuses)  # answers before the 200s
        self.delay = delay  # seconds before each answer: a collector under load
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                time.sleep(outer.delay)
                if outer.statuses:
                    self.send_error(outer.statuses.pop(0))
                    return
                outer.posts.append((self.path, {k.lower(): v for k, v in self.headers.items()}, body))
                reply = ExportTraceServiceResponse().SerializeToString()
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"

    def spans(self) -> dict[str, Any]:
        found: dict[str, Any] = {}
        for _, _, body in self.posts:
            request = ExportTraceServiceRequest.FromString(body)
            for resource in request.resource_spans:
                service = {a.key: a.value.string_value for a in resource.resource.attributes}["service.name"]
                for scope in resource.scope_spans:
                    for span in scope.spans:
                        found[span.name] = (service, span, {a.key: _value(a.value) for a in span.attributes})
        return found

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def _value(value: Any) -> Any:
    kind = value.WhichOneof("value")
    return [_value(v) for v in value.array_value.values] if kind == "array_value" else getattr(value, kind)


@pytest.fixture
def receiver():
    running = Receiver()
    yield running
    running.close()


@pytest.fixture
def server():
    with FakeServer() as running:
        yield running


def weather(server: FakeServer) -> None:
    server.add(sse(openai_calls([("get_weather", {"city": "Singapore"})])), sse(text_stream("Sunny.", usage=USAGE)))


def ask_args(server: FakeServer, *extra: str) -> list[str]:
    return ["ask", "--base-url", server.url, "--tools", str(REPO / "tools"), "--allow", "get_weather", *extra]


def test_spans_reach_an_otlp_collector_with_the_mlflow_header(cli, server, receiver):
    weather(server)
    done = cli(
        *ask_args(server, "--trace-content", f"Weather in Singapore? ({KEY})"),
        env={
            "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": receiver.url + "/v1/traces",
            "OPENAI_API_KEY": KEY,
            "OTEL_EXPORTER_OTLP_TRACES_HEADERS": "x-mlflow-experiment-id=7",
            "OTEL_SERVICE_NAME": "my-agent",
        },
    )
    assert (done.returncode, done.stdout) == (0, "Sunny.\n"), done.stderr
    assert "warning" not in done.stderr
    assert {(path, headers["x-mlflow-experiment-id"]) for path, headers, _ in receiver.posts} == {("/v1/traces", "7")}
    spans = receiver.spans()
    assert sorted(spans) == ["chat fake-model", "execute_tool get_weather", "invoke_agent toolchat"]
    service, agent, attributes = spans["invoke_agent toolchat"]
    assert service == "my-agent"
    assert attributes["gen_ai.operation.name"] == "invoke_agent" and attributes["gen_ai.usage.output_tokens"] == 8
    _, tool, tool_attributes = spans["execute_tool get_weather"]
    assert tool.parent_span_id == agent.span_id and tool.trace_id == agent.trace_id
    assert json.loads(tool_attributes["gen_ai.tool.call.arguments"]) == {"city": "Singapore"}
    assert "Weather in Singapore? (***)" in attributes["gen_ai.input.messages"]
    body = b"".join(body for _, _, body in receiver.posts)
    assert KEY[:8].encode() not in body and KEY[-8:].encode() not in body


@pytest.fixture
def silent_collector():
    """Accepts connections and never answers: the worst a collector can do."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    sock.close()


def ask_with_collector(server, isolated_env, tmp_path, **variables: str) -> tuple[float, str]:
    """`toolchat ask` that runs one call and answers; the seconds from its answer to its exit,
    and what it wrote to stderr after the call's two log lines."""
    weather(server)
    child = subprocess.Popen(
        [sys.executable, "-m", "toolchat", *ask_args(server, "Weather?")],
        env={**isolated_env, **variables},
        cwd=tmp_path,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    assert child.stdout.readline() == "Sunny.\n"
    answered = time.monotonic()
    stderr = child.stderr.read()
    assert child.wait(30) == 0
    return time.monotonic() - answered, "\n".join(stderr.splitlines()[2:])


def test_a_collector_that_never_answers_costs_its_timeout_and_one_line(
    server, silent_collector, isolated_env, tmp_path
):
    took, told = ask_with_collector(
        server, isolated_env, tmp_path, OTEL_EXPORTER_OTLP_ENDPOINT=silent_collector, OTEL_EXPORTER_OTLP_TIMEOUT="2"
    )
    assert 2 <= took < 5  # the flush waited the exporter's timeout, then gave up
    assert told == (
        f"toolchat: warning: 4 span(s) not delivered to {silent_collector}/v1/traces: "
        "Failed to export spans batch due to timeout, max retries or shutdown."
    )


def test_a_slow_collector_gets_every_span_within_the_sdks_default_timeout(server, isolated_env, tmp_path):
    slow = Receiver(delay=3.0)  # slower than the 2 s toolchat used to wait
    try:
        took, told = ask_with_collector(server, isolated_env, tmp_path, OTEL_EXPORTER_OTLP_ENDPOINT=slow.url)
    finally:
        slow.close()
    assert (told, 3 <= took < 8) == ("", True)
    assert sorted(slow.spans()) == ["chat fake-model", "execute_tool get_weather", "invoke_agent toolchat"]


def test_a_collector_that_is_down_costs_no_wait(server, isolated_env, tmp_path):
    from tests.support.ports import free_port

    down = f"http://127.0.0.1:{free_port()}"  # nothing listens: connections are refused
    took, told = ask_with_collector(server, isolated_env, tmp_path, OTEL_EXPORTER_OTLP_ENDPOINT=down)
    assert took < 1.5  # the SDK's 10 s timeout (and its retries with backoff) not waited for
    assert told == f"toolchat: warning: traces not delivered to {down}/v1/traces: connection refused; dropped"


def test_the_flush_bound_follows_the_standard_variables():
    from toolchat.tracing.control import flush_bound

    assert flush_bound({}) == 10.0  # the OTLP exporter's own default
    assert flush_bound({"OTEL_EXPORTER_OTLP_TIMEOUT": "30"}) == 30.0
    assert flush_bound({"OTEL_EXPORTER_OTLP_TRACES_TIMEOUT": "4", "OTEL_EXPORTER_OTLP_TIMEOUT": "30"}) == 4.0
    assert flush_bound({"OTEL_EXPORTER_OTLP_TIMEOUT": "30", "OTEL_BSP_EXPORT_TIMEOUT": "5000"}) == 5.0
    for wrong in ("soon", "-1", "0", "inf", "nan", ""):  # the SDK's default instead
        assert flush_bound({"OTEL_EXPORTER_OTLP_TIMEOUT": wrong, "OTEL_BSP_EXPORT_TIMEOUT": wrong}) == 10.0


def test_the_flush_at_exit_is_bounded(silent_collector, monkeypatch):
    from toolchat.redact import Redactor
    from toolchat.tracing.setup import MARGIN, Tracing

    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", silent_collector + "/v1/traces")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_TIMEOUT", "30")  # the exporter would wait longer
    told: list[str] = []
    tracing = Tracing.configure(
        file=None,
        endpoint=silent_collector + "/v1/traces",
        content=False,
        redactor=Redactor(),
        service="toolchat",
        warn=told.append,
    )
    tracing.tracer.start_span("invoke_agent toolchat").end()
    started = time.monotonic()
    assert tracing.close(1.0) is False
    assert 1.0 + MARGIN <= time.monotonic() - started < 1.0 + MARGIN + 0.5
    assert told == [f"traces not delivered to {silent_collector}/v1/traces within 1 s; dropped"]
    assert tracing.close(1.0) is True and len(told) == 1  # once only


def test_sigterm_mid_turn_still_sends_the_turns_spans(server, receiver, isolated_env, tmp_path):
    server.add(hang(30))
    env = {**isolated_env, "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.url}
    child = subprocess.Popen(
        [sys.executable, "-m", "toolchat", "ask", "--base-url", server.url, "-m", "fake-model", "hello?"],
        env=env,
        cwd=tmp_path,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    deadline = time.monotonic() + 30
    while not server.requests and time.monotonic() < deadline:  # the model call is under way
        time.sleep(0.05)
    child.send_signal(signal.SIGTERM)
    _, stderr = child.communicate(timeout=10)
    assert child.returncode == 143, stderr
    spans = receiver.spans()
    assert spans["invoke_agent toolchat"][2]["toolchat.turn.stopped"] == "interrupted"
    assert spans["chat fake-model"][2]["error.type"] == "cancelled"


def test_a_trace_file_from_the_config_read_back_as_a_tree(cli, server, isolated_env, tmp_path):
    config = Path(isolated_env["TOOLCHAT_CONFIG_DIR"]) / "config.yaml"
    config.write_text("trace: traces/spans.jsonl\n")
    weather(server)
    assert cli(*ask_args(server, "Weather in Singapore?")).returncode == 0
    file = config.parent / "traces" / "spans.jsonl"
    assert (file.stat().st_mode & 0o777, file.parent.stat().st_mode & 0o777) == (0o600, 0o700)
    shown = cli("trace", "show", str(file))
    assert shown.returncode == 0, shown.stderr
    lines = shown.stdout.splitlines()
    assert lines[0].startswith("trace ")
    assert lines[1].startswith("invoke_agent toolchat  ") and lines[1].endswith("90 in / 8 out tokens  stopped: answer")
    assert lines[2].startswith("├─ chat fake-model  ") and lines[2].endswith("finish tool_calls")
    assert lines[3].startswith("├─ execute_tool get_weather  ") and lines[3].endswith("ok, allowed")
    assert lines[4].startswith("└─ chat fake-model  ") and "90 in / 8 out tokens  first chunk" in lines[4]


def test_trace_show_cleans_what_it_prints_and_skips_lines_that_are_not_spans(cli, tmp_path):
    span = {
        "name": "execute_tool \x1b]0;pwned\x07evil",
        "context": {"trace_id": "0x1", "span_id": "0x2"},
        "parent_id": None,
        "start_time": "2026-01-01T00:00:00.000000Z",
        "end_time": "2026-01-01T00:00:01.500000Z",
        "status": {"status_code": "ERROR"},
        "attributes": {"toolchat.tool.outcome": "timeout\x1b[2J"},
    }
    file = tmp_path / "odd.jsonl"
    file.write_text(json.dumps(span) + '\nnot json\n{"name": "no context"}\n')
    shown = cli("trace", "show", str(file))
    assert shown.returncode == 0
    assert "\x1b" not in shown.stdout and "\x07" not in shown.stdout
    assert "1.50 s" in shown.stdout and "skipped 2 line(s) that are not spans" in shown.stdout
    missing = cli("trace", "show", str(tmp_path / "nope.jsonl"))
    assert missing.returncode == 2 and missing.stderr.startswith("toolchat: error: no trace file at ")


def test_with_tracing_off_no_opentelemetry_module_is_imported(server, isolated_env, tmp_path):
    server.add(sse(text_stream("Hi.")))
    env = {k: v for k, v in isolated_env.items() if not k.startswith("OTEL_")}
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "toolchat", "ask", "--base-url", server.url, "hi"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=60,
    )
    assert (done.returncode, done.stdout) == (0, "Hi.\n")
    imported = [line for line in done.stderr.splitlines() if line.startswith("import time:")]
    assert any("toolchat.tracing.control" in line for line in imported)  # the switch itself is there...
    assert not [line for line in imported if "opentelemetry" in line]  # ...and nothing behind it


def test_a_trace_file_that_cannot_be_written_is_one_warning_and_the_answer_still_comes(cli, server, tmp_path):
    server.add(sse(text_stream("Hi.")))
    (tmp_path / "taken").mkdir()
    done = cli("ask", "--base-url", server.url, "--trace", "taken", "hi")
    assert (done.returncode, done.stdout) == (0, "Hi.\n")
    assert done.stderr.splitlines() == [
        f"toolchat: warning: cannot write the trace file {tmp_path / 'taken'}: Is a directory; going on without it"
    ]


def test_an_mcp_servers_own_client_span_nests_under_its_execute_tool(cli, server, tmp_path):
    pytest.importorskip("mcp")
    from tests.support.mcp_helpers import TIME

    server.add(sse(openai_calls([("time__get_current_time", {"timezone": "UTC"})])), sse(text_stream("It is late.")))
    done = cli(
        "ask",
        "--base-url",
        server.url,
        "-m",
        "fake-model",
        "--mcp",
        TIME,
        "--yes",
        "--trace",
        "spans.jsonl",
        "What time is it?",
    )
    assert (done.returncode, done.stdout) == (0, "It is late.\n"), done.stderr
    spans = [json.loads(line) for line in (tmp_path / "spans.jsonl").read_text().splitlines()]
    tool = next(s for s in spans if s["name"] == "execute_tool time__get_current_time")
    assert tool["attributes"]["gen_ai.tool.type"] == "extension"
    assert tool["attributes"]["toolchat.tool.origin"] == "mcp time"
    client = [s for s in spans if "tools/call" in s["name"]]
    assert client and all(s["parent_id"] == tool["context"]["span_id"] for s in client)


def test_a_collector_that_refuses_the_spans_is_one_line_naming_why(cli, server):
    refusing = Receiver(404)
    try:
        server.add(sse(text_stream("Hi.")))
        done = cli("ask", "--base-url", server.url, "hi", env={"OTEL_EXPORTER_OTLP_ENDPOINT": refusing.url})
    finally:
        refusing.close()
    assert (done.returncode, done.stdout) == (0, "Hi.\n")
    assert done.stderr.splitlines() == [
        f"toolchat: warning: 2 span(s) not delivered to {refusing.url}/v1/traces: "
        "Failed to export spans batch code: 404, reason: Not Found"
    ]


def test_a_collector_that_recovers_on_retry_costs_no_warning(cli, server):
    flaky = Receiver(503)
    try:
        server.add(sse(text_stream("Hi.")))
        done = cli("ask", "--base-url", server.url, "hi", env={"OTEL_EXPORTER_OTLP_ENDPOINT": flaky.url})
        spans = flaky.spans()
    finally:
        flaky.close()
    assert (done.returncode, done.stdout, done.stderr) == (0, "Hi.\n", "")
    assert sorted(spans) == ["chat fake-model", "invoke_agent toolchat"]
