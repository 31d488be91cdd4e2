"""`toolchat ask` against llama-cpp-python's own OpenAI-compatible server with the bundled model."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("llama_cpp.server")


def test_forced_tool_call_round_trip(cli, llama_server):
    done = cli(
        "ask",
        "--base-url",
        llama_server,
        "--yes",
        "--tool-choice",
        "get_weather",
        "--max-tokens",
        "24",
        "--json",
        "What's the weather in Singapore?",
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["stopped"] in ("answer", "max_tokens")  # a base model often talks to the 24-token limit
    if result["stopped"] == "max_tokens":
        assert "the answer was cut at max_tokens 24" in done.stderr
    call = result["tool_calls"][0]
    assert call["name"] == "get_weather" and call["status"] == "ok"
    assert set(call["arguments"]) == {"city"}
    messages = result["messages"]
    assert messages[1]["tool_calls"][0]["id"] == messages[2]["tool_call_id"]
    listed = cli("models", "--base-url", llama_server)
    assert listed.returncode == 0 and listed.stdout.strip()
