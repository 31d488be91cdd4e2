"""Tracing while the calls of one reply run at once: each call's `execute_tool` span is a child of the
turn's span, the spans overlap in time, and what a call's source traces (the MCP SDK's client span of
its request, made on the MCP loop's thread) nests under that call's own span, not a neighbour's. The
MCP server's one session carries the three requests at once.

In a subprocess, as tests/test_mcp_source.py does: the SDK's tracer is the process's global one."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("mcp")
pytest.importorskip("opentelemetry.sdk")

REPO = Path(__file__).resolve().parents[1]

TURN = """
import json, os
from pathlib import Path
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from tests.support.fakes import ScriptedBackend, answer, call, calls
from tests.support.mcp_helpers import FAULTS, spec
from toolchat.engine import Engine, Policy
from toolchat.mcp import open_source
from toolchat.redact import Redactor
from toolchat.tools import Registry, RunLimits
from toolchat.tracing.setup import Tracing

exporter = InMemorySpanExporter()
tracing = Tracing.configure(file=None, endpoint=None, content=False, redactor=Redactor([]), service="toolchat",
                            warn=print, exporters=[exporter])
tracing.make_global()
source = open_source([spec(FAULTS, "f")], project_dir=Path.cwd(), environ=dict(os.environ), data_dir=Path.cwd())
backend = ScriptedBackend(calls(*[call("f__hang", {"seconds": 0.8}, id=f"call_{i}") for i in range(3)]), answer("Ok."))
engine = Engine(backend, Registry([source]), approve=lambda p: None, on_event=tracing.wrap(lambda e: None, backend),
                policy=Policy(approve_all=True), limits=RunLimits(Path.cwd()), parallel=3)
stopped = engine.run_turn("Hang three times.").stopped
source.close()
print(json.dumps({"stopped": stopped, "spans": [
    {"name": s.name, "id": s.context.span_id, "parent": s.parent.span_id if s.parent else None,
     "call": s.attributes.get("gen_ai.tool.call.id"), "start": s.start_time, "end": s.end_time}
    for s in exporter.get_finished_spans()]}))
"""


def test_each_running_call_has_its_own_span_under_the_turn_and_its_request_nests_under_it(tmp_path):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO / "cli"), str(REPO)])}
    done = subprocess.run(
        [sys.executable, "-c", TURN], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=90
    )
    assert done.returncode == 0, done.stderr
    caught = json.loads(done.stdout.splitlines()[-1])
    assert caught["stopped"] == "answer"
    spans = caught["spans"]
    agent = next(s for s in spans if s["name"] == "invoke_agent toolchat")
    tools = {s["call"]: s for s in spans if s["name"] == "execute_tool f__hang"}
    assert sorted(tools) == ["call_0", "call_1", "call_2"]
    assert {s["parent"] for s in tools.values()} == {agent["id"]}
    assert max(s["start"] for s in tools.values()) < min(s["end"] for s in tools.values())  # open at once
    requests = [s for s in spans if "tools/call" in s["name"]]
    assert len(requests) == 3
    by_id = {s["id"]: s for s in tools.values()}
    parents = [by_id[r["parent"]] for r in requests]  # each request under an execute_tool span...
    assert len({p["call"] for p in parents}) == 3  # ...each under its own call's
    for request, parent in zip(requests, parents):
        assert parent["start"] <= request["start"] and request["end"] <= parent["end"]
    took = (max(r["end"] for r in requests) - min(r["start"] for r in requests)) / 1e9
    assert took < 1.6  # one session carried the three 0.8 s requests at once (in turn: 2.4 s)
