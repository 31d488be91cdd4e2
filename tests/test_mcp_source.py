"""MCP servers as a tool source, against real servers: mcp-server-time and mcp-server-git from the
package index, and tests/mcp_servers/faults.py (written with the SDK) for every fault."""

from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path

import pytest

pytest.importorskip("mcp")

from tests.support.mcp_helpers import FAULTS, TIME, HttpServer, git, git_repo, server_pids, spec, wait_gone
from tests.support.ports import free_port
from toolchat.mcp import open_source
from toolchat.mcp.wiring import toolbar
from toolchat.tools import Registry
from toolchat.tools.model import ToolStatus
from toolchat.tools.sources import RunLimits


@pytest.fixture
def opened(tmp_path):
    """open(*specs) -> (source, notes); every source is closed after the test."""
    sources = []

    def start(*specs, environ=None):
        notes: list[str] = []
        source = open_source(
            list(specs),
            project_dir=tmp_path,
            environ=environ or dict(os.environ),
            data_dir=tmp_path / "data",
            notify=notes.append,
        )
        sources.append(source)
        return source, notes

    yield start
    for source in sources:
        source.close()


def limits(tmp_path: Path, timeout: float = 20, max_output_chars: int = 20_000) -> RunLimits:
    return RunLimits(tmp_path, timeout=timeout, max_output_chars=max_output_chars)


def by_name(source) -> dict:
    return {tool.name: tool for tool in source.tools()}


def test_the_time_server_tells_the_time_in_tokyo(opened, tmp_path):
    source, notes = opened(spec(TIME))
    tools = by_name(source)
    assert set(tools) == {"time__get_current_time", "time__convert_time"}
    assert "timezone" in tools["time__get_current_time"].parameters["properties"]
    result = source.run(tools["time__get_current_time"], {"timezone": "Asia/Tokyo"}, limits(tmp_path))
    assert result.status is ToolStatus.OK
    answer = json.loads(result.output)
    assert answer["timezone"] == "Asia/Tokyo" and answer["datetime"].endswith("+09:00")
    assert notes == [] and source.problems() == []
    registry = Registry([source])
    assert toolbar(registry) == " · mcp: time ready (2)"  # what the REPL's bottom toolbar adds
    assert toolbar(Registry()) == ""


def test_git_status_of_a_temporary_repository(opened, tmp_path):
    repo = git_repo(tmp_path / "repo")
    source, _ = opened(spec(git(repo)))
    tools = by_name(source)
    result = source.run(tools["git__git_status"], {"repo_path": str(repo)}, limits(tmp_path))
    assert result.status is ToolStatus.OK
    assert "new-notes.txt" in result.output and "On branch main" in result.output


def test_servers_that_cannot_start_are_one_line_each_and_the_rest_go_on(opened, tmp_path):
    pid_dir = tmp_path / "pids"
    pid_dir.mkdir()
    started = time.monotonic()
    source, notes = opened(
        spec(f"{FAULTS} exit-at-start", "exits", pid_dir),
        spec(f"{FAULTS} hang-at-start", "hangs", pid_dir, startup_timeout=1.5),
        spec(f"{FAULTS} garbage-at-start", "garbled", pid_dir, startup_timeout=3),
        spec("no-such-mcp-server --flag", "missing"),
        spec(TIME),
    )
    tools = by_name(source)
    assert time.monotonic() - started < 3 + 3 + 2  # the hung ones are given up on, and killed in time
    assert set(tools) == {"time__get_current_time", "time__convert_time"}
    assert len(notes) == 4
    exits, garbled, hangs, missing = sorted(notes)
    assert exits.startswith("mcp exits: could not start") and "faults.py exit-at-start" in exits
    assert "cannot open the database" in exits  # the tail of its stderr
    assert "did not finish starting within 1.5 s" in hangs
    assert "(it wrote what is not MCP to stdout: 'Listening on stdio... ready!')" in garbled
    assert missing.startswith(
        "mcp missing: could not start `no-such-mcp-server --flag`: command not found: no-such-mcp-server (not found in "
    )
    assert wait_gone(server_pids(pid_dir), 1) == []
    states = {status.name: status.state for status in source.statuses()}
    assert states == {"exits": "failed", "hangs": "failed", "garbled": "failed", "missing": "failed", "time": "ready"}


def test_results_become_text_the_model_can_read(opened, tmp_path):
    source, _ = opened(spec(FAULTS, "f"))
    tools = by_name(source)
    image = source.run(tools["f__image"], {}, limits(tmp_path))
    assert image.status is ToolStatus.OK
    assert image.output == "a red pixel\n[image/png, 14 kB]"  # never base64 into the context
    failed = source.run(tools["f__fail"], {}, limits(tmp_path))
    assert failed.status is ToolStatus.ERROR and "the disk is full" in failed.output
    refused = source.run(tools["f__refuse"], {}, limits(tmp_path))
    assert (refused.status, refused.output) == (
        ToolStatus.ERROR,
        "Error: the MCP server 'f' answered with an error: the widget id is unknown",
    )
    big = source.run(tools["f__big"], {}, limits(tmp_path, max_output_chars=1000))
    assert big.status is ToolStatus.OK
    assert big.output.startswith("x" * 1000 + "\n[output cut: 999000 of 1000000 characters not shown]")


def test_a_call_that_hangs_is_cancelled_at_the_timeout(opened, tmp_path):
    source, _ = opened(spec(FAULTS, "f", timeout=1.0))
    tools = by_name(source)
    started = time.monotonic()
    result = source.run(tools["f__hang"], {"seconds": 60}, limits(tmp_path, timeout=30))
    assert result.status is ToolStatus.TIMEOUT
    assert result.output == "Error: timed out after 1 s; the request was cancelled."
    assert 1.0 <= time.monotonic() - started < 3
    echo = source.run(tools["f__echo"], {"text": "still here"}, limits(tmp_path))
    assert echo.output == "still here"  # the server and its session go on


def test_a_changed_tool_list_is_offered_before_the_next_model_call(opened, tmp_path):
    source, _ = opened(spec(FAULTS, "f"))
    tools = by_name(source)
    assert "f__extra" not in tools
    assert source.run(tools["f__grow"], {}, limits(tmp_path)).output == "added extra"
    tools = by_name(source)
    assert "f__extra" in tools
    assert source.run(tools["f__extra"], {}, limits(tmp_path)).output == "extra ran"


def test_a_server_that_dies_mid_call_is_restarted_once(opened, tmp_path):
    pid_dir = tmp_path / "pids"
    pid_dir.mkdir()
    source, notes = opened(spec(FAULTS, "f", pid_dir))
    tools = by_name(source)
    died = source.run(tools["f__die"], {}, limits(tmp_path))
    assert died.status is ToolStatus.ERROR and "stopped" in died.output
    assert {s.name: s.state for s in source.statuses()} == {"f": "exited"}
    again = source.run(tools["f__echo"], {"text": "back"}, limits(tmp_path))
    assert again.output == "back"
    assert notes == ["mcp f stopped; restarting it"]
    assert len(server_pids(pid_dir)) == 2
    source.run(tools["f__die"], {}, limits(tmp_path))
    last = source.run(tools["f__echo"], {"text": "no"}, limits(tmp_path))
    assert last.status is ToolStatus.ERROR and "already restarted once" in last.output
    assert len(server_pids(pid_dir)) == 2


def exited(source, seconds: float = 5) -> bool:
    """Whether the (one) server is seen as exited within `seconds`."""
    deadline = time.monotonic() + seconds
    while source.statuses()[0].state != "exited" and time.monotonic() < deadline:
        time.sleep(0.05)
    return source.statuses()[0].state == "exited"


def test_a_server_that_exits_while_idle_is_noticed_at_once_and_costs_no_call(opened, tmp_path):
    pid_dir = tmp_path / "pids"
    pid_dir.mkdir()
    source, notes = opened(spec(FAULTS, "f", pid_dir))
    tools = by_name(source)
    assert source.run(tools["f__leave"], {}, limits(tmp_path)).output == "leaving"
    assert wait_gone(server_pids(pid_dir), 5) == []
    assert exited(source)  # seen when it ended, before any call
    again = source.run(tools["f__echo"], {"text": "back"}, limits(tmp_path))
    assert (again.status, again.output) == (ToolStatus.OK, "back")
    assert notes == ["mcp f stopped; restarting it"]
    assert len(server_pids(pid_dir)) == 2
    source.run(tools["f__leave"], {}, limits(tmp_path))  # a server that keeps leaving is not chased
    assert wait_gone(server_pids(pid_dir), 5) == [] and exited(source)
    last = source.run(tools["f__echo"], {"text": "no"}, limits(tmp_path))
    assert last.status is ToolStatus.ERROR and "already restarted once" in last.output
    assert len(server_pids(pid_dir)) == 2


def test_closing_stops_a_server_hung_in_a_call_within_three_seconds(opened, tmp_path):
    pid_dir = tmp_path / "pids"
    pid_dir.mkdir()
    source, _ = opened(spec(FAULTS, "f", pid_dir))
    tools = by_name(source)
    results = []
    caller = threading.Thread(
        target=lambda: results.append(source.run(tools["f__hang"], {"seconds": 600}, limits(tmp_path, timeout=600)))
    )
    caller.start()
    time.sleep(0.5)
    started = time.monotonic()
    source.close()
    assert time.monotonic() - started <= 3.0
    assert wait_gone(server_pids(pid_dir), 0.5) == []
    caller.join(5)
    assert results and results[0].status is ToolStatus.ERROR  # the pending call is answered


def test_a_stdio_server_gets_a_minimal_environment(opened, tmp_path):
    environ = {**os.environ, "OPENAI_API_KEY": "sk-not-for-servers", "UNRELATED": "x", "LC_ALL": "C.UTF-8"}
    server = spec(FAULTS, "f")
    server.env = {"NAMED_FOR_IT": "1"}
    source, _ = opened(server, environ=environ)
    source.tools()
    log = (tmp_path / "data" / "mcp-logs" / "f.log").read_text()
    assert "'NAMED_FOR_IT'" in log and "'LC_ALL'" in log and "'PATH'" in log
    assert "OPENAI_API_KEY" not in log and "UNRELATED" not in log


def test_an_http_server_needs_its_bearer_header(opened, tmp_path):
    server = HttpServer(free_port(), token="s3cret-token-value")
    try:
        good = spec(server.url, "docs", headers={"Authorization": "Bearer s3cret-token-value"})
        bad = spec(server.url, "wrong", headers={"Authorization": "Bearer another-token-value"}, startup_timeout=5)
        source, notes = opened(good, bad)
        tools = by_name(source)
        assert list(tools) == ["docs__lookup"]
        result = source.run(tools["docs__lookup"], {"word": "cache"}, limits(tmp_path))
        assert result.output == "docs: cache is documented on page 7"
        assert len(notes) == 1 and notes[0].startswith("mcp wrong: could not start")
        assert "(HTTP 401: check its headers, such as a token)" in notes[0]
        assert "another-token-value" not in notes[0]
    finally:
        server.stop()


SPANS = """
import json, os, sys
from pathlib import Path
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from toolchat.mcp import open_source, parse_flag
from toolchat.tools.sources import RunLimits

exporter = InMemorySpanExporter()
provider = TracerProvider()
provider.add_span_processor(SimpleSpanProcessor(exporter))
trace.set_tracer_provider(provider)
source = open_source([parse_flag(sys.argv[1])], project_dir=Path.cwd(), environ=dict(os.environ),
                     data_dir=Path.cwd(), notify=print)
tool = next(t for t in source.tools() if t.name == "time__get_current_time")
with trace.get_tracer("toolchat").start_as_current_span("execute_tool") as parent:
    source.run(tool, {"timezone": "UTC"}, RunLimits(Path.cwd()))
source.close()
call = next(s for s in exporter.get_finished_spans() if "tools/call" in s.name)
print(json.dumps([call.name, call.parent.span_id == parent.get_span_context().span_id]))
"""


def test_the_sdks_client_span_nests_under_the_callers_span(tmp_path):
    pytest.importorskip("opentelemetry.sdk")
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-c", SPANS, TIME], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    name, nested = json.loads(done.stdout.splitlines()[-1])
    assert "tools/call" in name and nested is True


def test_closing_while_a_server_is_still_starting_is_bounded_too(opened, tmp_path):
    pid_dir = tmp_path / "pids"
    pid_dir.mkdir()
    source, _ = opened(spec(f"{FAULTS} hang-at-start", "slow", pid_dir, startup_timeout=60))
    source.waits = False  # as in the REPL: nothing waits for it
    assert source.tools() == []
    deadline = time.monotonic() + 20
    while not list(pid_dir.iterdir()) and time.monotonic() < deadline:
        time.sleep(0.05)
    started = time.monotonic()
    source.close()
    assert time.monotonic() - started <= 3.0
    assert wait_gone(server_pids(pid_dir), 0.5) == []


def test_sync_offers_each_server_as_it_becomes_ready_and_says_each_failure_once(opened, tmp_path):
    from toolchat.mcp.wiring import sync

    gate = tmp_path / "gate"
    slow = spec(f"{FAULTS} serve", "slow", env={"FAULTS_GATE": str(gate)})
    source, notes = opened(slow, spec(f"{FAULTS} exit-at-start", "broken"))
    changes: list[str] = []
    source.on_change = lambda: changes.append(threading.current_thread().name)
    source.waits = False
    registry = Registry([source])
    source.waits = True  # as in the REPL once its prompt is up: a turn would wait, sync never does
    deadline = time.monotonic() + 20
    said: list[str] = []
    while not said and time.monotonic() < deadline:
        started = time.monotonic()
        said = sync(registry)
        assert time.monotonic() - started < 1  # never waits for the server still starting
        time.sleep(0.05)
    assert (
        len(said) == 1 and said[0].startswith("mcp broken: could not start") and "cannot open the database" in said[0]
    )
    assert registry.names() == []  # slow is still starting
    gate.touch()
    while "slow__echo" not in registry.names() and time.monotonic() < deadline:
        assert sync(registry) == []  # the failure is said once
        time.sleep(0.05)
    assert "slow__echo" in registry.names() and len(registry.names()) == 10
    assert changes == ["toolchat-mcp", "toolchat-mcp"]  # once per server, from the MCP thread
    assert notes == []  # nothing was said behind the REPL's back


def test_a_server_ready_later_whose_tool_clashes_with_a_plugins_is_said_once(opened, plugin_dir, tmp_path):
    from toolchat.mcp.wiring import sync
    from toolchat.tools.registry import discover

    gate = tmp_path / "gate"
    folder = plugin_dir(clash="def slow__echo(text: str) -> str:\n    '''Mine.'''\n    return text\n")
    source, _ = opened(spec(f"{FAULTS} serve", "slow", env={"FAULTS_GATE": str(gate)}))
    source.waits = False
    registry = discover([folder], bundled=False, project_dir=tmp_path)
    registry.add(source)  # no clash yet: the server is still starting
    gate.touch()
    deadline = time.monotonic() + 20
    said: list[str] = []
    while not said and time.monotonic() < deadline:
        said = sync(registry)
        time.sleep(0.05)
    assert said == ["mcp slow: its tool 'slow__echo' is also offered by plugins/clash.py; that one is kept"]
    assert registry.get("slow__echo").origin == "plugins/clash.py" and "slow__hang" in registry.names()
    assert sync(registry) == []
