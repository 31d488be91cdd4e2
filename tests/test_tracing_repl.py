"""Tracing in the REPL: a real pseudo-terminal session with --trace, one trace per turn, each
carrying the session id, the file complete after Ctrl-D."""

from __future__ import annotations

import json
import time
from datetime import datetime
from pathlib import Path

import pexpect

from tests.support.fakeserver import FakeServer, openai_calls, sse, text_stream
from tests.support.terminal import QUESTION, say, see, spawn


def test_each_repl_turn_is_a_trace_tagged_with_the_session(isolated_env, tmp_path, cli):
    with FakeServer() as server:
        server.add(
            sse(openai_calls([("get_weather", {"city": "Singapore"})])),
            sse(text_stream("Sunny there.")),
            sse(text_stream("You are welcome.")),
        )
        child = spawn(
            "chat", "--base-url", server.url, "-m", "fake", "--trace", "spans.jsonl", env=isolated_env, cwd=tmp_path
        )
        try:
            child.expect("›")
            say(child, "What's the weather in Singapore?")
            child.expect(QUESTION)
            time.sleep(1.5)  # the user reads the call before answering
            child.send("y")
            see(child, "Sunny there.")
            child.expect("›")
            say(child, "Thanks!")
            see(child, "You are welcome.")
            child.expect("›")
            child.sendeof()
            child.expect(pexpect.EOF)
        finally:
            child.close(force=True)
    assert child.exitstatus == 0
    spans = [json.loads(line) for line in (tmp_path / "spans.jsonl").read_text().splitlines()]
    turns = [s for s in spans if s["name"] == "invoke_agent toolchat"]
    assert len(turns) == 2 and len({t["context"]["trace_id"] for t in turns}) == 2
    session = next(Path(isolated_env["TOOLCHAT_DATA_DIR"]).rglob("*.jsonl")).stem
    assert {t["attributes"]["gen_ai.conversation.id"] for t in turns} == {session}
    tool = next(s for s in spans if s["name"] == "execute_tool get_weather")
    attributes = tool["attributes"]
    assert (attributes["toolchat.tool.approval"], attributes["toolchat.tool.outcome"]) == ("asked", "ok")
    # the span measures the run; the wait for the user is an attribute of it, not part of it
    assert attributes["toolchat.tool.approval_wait_seconds"] >= 1.5
    ran = datetime.fromisoformat(tool["end_time"].replace("Z", "+00:00")) - datetime.fromisoformat(
        tool["start_time"].replace("Z", "+00:00")
    )
    assert ran.total_seconds() < 1.0, tool
    last = cli("trace", "show", "--last", "1", str(tmp_path / "spans.jsonl"))
    assert last.stdout.count("invoke_agent toolchat") == 1 and "execute_tool" not in last.stdout
    assert f"session {session}" in last.stdout
