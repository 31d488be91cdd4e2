"""Hostile input, round three (issue 27), what reaches toolchat through the user's own files and a
model server's stream: crafted session files, FIFOs where private files belong, a name that leaves
the project folder, escapes in a config, an index no server could mean. Each test is the attack as
it was found, kept as the check that it stays fixed."""

from __future__ import annotations

import json

import pytest

from tests.support.fakeserver import FakeServer, chunk, sse


@pytest.mark.parametrize("index", ["1e400", "-1e400", "1.5", '"first"'])
def test_a_tool_call_index_that_is_not_a_whole_number_is_the_servers_fault_in_one_line(cli, index):
    head = '{"index": %s, "id": "c1", "function": {"name": "get_weather", "arguments": "{}"}}' % index
    line = 'data: {"choices": [{"index": 0, "delta": {"tool_calls": [%s]}, "finish_reason": null}]}\n\n' % head
    with FakeServer() as server:
        server.add(sse([chunk({"role": "assistant"}), line, chunk(finish="tool_calls")]))
        done = cli("ask", "--yes", "--base-url", server.url, "Weather in Oslo?")
    assert done.returncode == 1, done.stderr
    assert "internal error" not in done.stderr and "Error" not in done.stderr
    assert "broke off mid-answer: a tool call with the index" in done.stderr
    assert "not a whole number" in done.stderr
    assert len(done.stderr.strip().splitlines()) <= 2, done.stderr


def test_an_index_sent_as_a_whole_float_is_still_the_index(cli):
    calls = [
        chunk({"role": "assistant"}),
        chunk({"tool_calls": [{"index": 0.0, "id": "c1", "function": {"name": "calculate", "arguments": ""}}]}),
        chunk({"tool_calls": [{"index": 0.0, "function": {"arguments": json.dumps({"expression": "2+3"})}}]}),
        chunk(finish="tool_calls"),
    ]
    with FakeServer() as server:
        server.add(sse(calls), sse([chunk({"content": "5"}), chunk(finish="stop")]))
        done = cli("ask", "--yes", "--base-url", server.url, "2+3?")
        answers = [m["content"] for m in server.requests[-1]["messages"] if m["role"] == "tool"]
    assert done.returncode == 0, done.stderr
    assert answers == ["5"]
