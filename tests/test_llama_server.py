"""`toolchat ask` against llama-cpp-python's own OpenAI-compatible server with the bundled model."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.request

import pytest

from conftest import free_port

pytest.importorskip("llama_cpp.server")


@pytest.fixture
def llama_server(bundled_gguf, tmp_path):
    port = free_port()
    log = open(tmp_path / "server.log", "w")
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "llama_cpp.server",
            "--model",
            str(bundled_gguf),
            "--chat_format",
            "chatml-function-calling",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--n_ctx",
            "2048",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                urllib.request.urlopen(url + "/models", timeout=2)
                break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    pytest.fail("llama_cpp.server did not start:\n" + (tmp_path / "server.log").read_text()[-2000:])
                time.sleep(0.5)
        yield url
    finally:
        process.terminate()
        process.wait(20)
        log.close()


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
