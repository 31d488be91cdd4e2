"""`toolchat ask` end to end: a subprocess against a real loopback server."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pexpect
import pytest

from tests.support.fakeserver import FakeServer, error, openai_calls, sse, text_stream, vllm_calls
from tests.support.terminal import QUESTION, spawn

REPO = Path(__file__).resolve().parents[1]
WEATHER = [("get_weather", {"city": "Singapore"})]
ANSWER = "It's sunny in Singapore and 20C."


@pytest.fixture
def server():
    with FakeServer() as running:
        yield running


def weather_script(server: FakeServer) -> None:
    server.add(sse(openai_calls(WEATHER)), sse(text_stream(ANSWER)))


def test_the_seed_weather_example_with_approval_by_flag(run_cli, server):
    weather_script(server)
    done = run_cli(
        "ask",
        "--base-url",
        server.url,
        "--tools",
        str(REPO / "tools"),
        "--allow",
        "get_weather",
        "What's the weather in Singapore?",
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == ANSWER + "\n"
    assert '→ get_weather {"city": "Singapore"}' in done.stderr
    assert "← get_weather ok: It's sunny in Singapore, with a temperature of 20C" in done.stderr
    second = server.requests[1]["messages"]
    assert second[-1]["role"] == "tool" and "It's sunny in Singapore" in second[-1]["content"]
    assert second[-1]["tool_call_id"] == second[-2]["tool_calls"][0]["id"]


def test_approval_is_asked_on_the_terminal_even_with_stdin_piped(server, isolated_env, tmp_path):
    weather_script(server)
    command = f"echo 'extra context' | {sys.executable} -m toolchat ask --base-url {server.url} 'Weather in Singapore?'"
    child = spawn("-c", command, env=isolated_env, cwd=tmp_path, rows=24, columns=200, command=["bash"])
    child.expect(QUESTION)
    child.send("y")  # one key, no Enter, as in the REPL
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0
    assert ANSWER in child.before
    first_user = server.requests[0]["messages"][-1]["content"]
    assert first_user == "Weather in Singapore?\n\nextra context"


def test_declining_on_the_terminal_with_a_reason(server, isolated_env, tmp_path):
    server.add(sse(openai_calls(WEATHER)), sse(text_stream("OK, I won't.")))
    child = spawn("ask", "--base-url", server.url, "weather?", env=isolated_env, cwd=tmp_path, rows=24, columns=200)
    child.expect(QUESTION)
    child.send("n")
    child.expect("Reason for the model")
    child.sendline("I am indoors")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0
    assert "← get_weather denied: I am indoors" in child.screen.transcript()  # like every other outcome
    assert (
        server.requests[1]["messages"][-1]["content"]
        == "The user denied this call; it was not run. Their reason: I am indoors"
    )


def test_without_a_terminal_the_call_is_denied_and_the_flag_named(cli, server):
    server.add(sse(openai_calls(WEATHER)), sse(text_stream("I could not check.")))
    done = cli("ask", "--base-url", server.url, "Weather in Singapore?")
    assert done.returncode == 0
    assert done.stdout == "I could not check.\n"
    assert (
        "denied get_weather: no terminal to ask for approval; allow it with --allow get_weather or --yes" in done.stderr
    )
    told = server.requests[1]["messages"][-1]["content"]
    assert (
        told
        == "The user denied this call; it was not run. Their reason: no terminal was available to ask the user for approval"
    )


def test_json_output(run_cli, server):
    server.add(
        sse(vllm_calls(WEATHER)),
        sse(
            text_stream(
                ANSWER,
                usage={"prompt_tokens": 30, "completion_tokens": 9, "prompt_tokens_details": {"cached_tokens": 24}},
            )
        ),
    )
    done = run_cli("ask", "--json", "--yes", "--base-url", server.url, "weather?")
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["answer"] == ANSWER and result["stopped"] == "answer"
    assert [(c["name"], c["arguments"], c["status"]) for c in result["tool_calls"]] == [
        ("get_weather", {"city": "Singapore"}, "ok")
    ]
    assert [m["role"] for m in result["messages"]] == ["user", "assistant", "tool", "assistant"]
    assert result["usage"]["rounds"][1] == {"prompt_tokens": 30, "completion_tokens": 9, "cached_tokens": 24}
    assert result["usage"]["cached_tokens"] == 24


def test_max_rounds_exits_3_and_still_prints_json(run_cli, server):
    server.add(*[sse(openai_calls([("calculate", {"expression": "1+1"})])) for _ in range(2)])
    done = run_cli("ask", "--json", "--yes", "--max-rounds", "2", "--base-url", server.url, "loop")
    assert done.returncode == 3
    result = json.loads(done.stdout)
    assert result["stopped"] == "max_rounds" and len(result["tool_calls"]) == 2
    assert "--max-rounds" in done.stderr


def test_backend_failure_exits_1_with_one_line(run_cli, server):
    server.add(*[error(500, "kaput")] * 3)  # the first try and defaults.MAX_RETRIES retries
    done = run_cli("ask", "--base-url", server.url, "hello")
    assert done.returncode == 1
    assert done.stderr.strip().splitlines()[-1].startswith("toolchat: error: ")
    assert "server error (HTTP 500) after retries: kaput" in done.stderr
    assert "Traceback" not in done.stderr and done.stdout == ""


def test_connection_refused_exits_1(run_cli):
    done = run_cli("ask", "--base-url", "http://127.0.0.1:9/v1", "hello")
    assert done.returncode == 1 and "cannot connect to http://127.0.0.1:9/v1" in done.stderr


def test_usage_errors_exit_2(run_cli, server):
    assert run_cli("ask", "--base-url", server.url).returncode == 2
    done = run_cli("ask", "--base-url", server.url, input="   \n")
    assert done.returncode == 2 and "nothing to ask" in done.stderr
    done = run_cli("ask", "--base-url", server.url, "--tool-choice", "nosuch", "hi")
    assert done.returncode == 2 and "not an offered tool" in done.stderr
    assert server.requests == []


def test_quiet_no_tools_and_tool_choice(run_cli, server):
    server.add(sse(openai_calls(WEATHER)), sse(text_stream("fine")))
    done = run_cli("ask", "-q", "--yes", "--tool-choice", "get_weather", "--base-url", server.url, "hi")
    assert (done.returncode, done.stdout, done.stderr) == (0, "fine\n", "")
    assert server.requests[0]["tool_choice"] == {"type": "function", "function": {"name": "get_weather"}}
    assert "tool_choice" not in server.requests[1]
    server.add(sse(text_stream("no tools here")))
    done = run_cli("ask", "--no-tools", "--base-url", server.url, "hi")
    assert "tools" not in server.requests[2]


def test_denied_tools_are_not_offered(run_cli, server):
    server.add(sse(text_stream("ok")))
    run_cli("ask", "--deny", "read_file", "--base-url", server.url, "hi")
    offered = [t["function"]["name"] for t in server.requests[0]["tools"]]
    assert "read_file" not in offered and "calculate" in offered


def test_model_text_cannot_put_escape_sequences_on_the_screen(run_cli, server):
    server.add(sse(text_stream("red \x1b[31malert\x1b[0m and title \x1b]0;owned\x07 done")))
    done = run_cli("ask", "--base-url", server.url, "hi")
    assert "\x1b" not in done.stdout and "\x07" not in done.stdout
    assert "\\x1b[31malert" in done.stdout


def test_no_stream_flag(run_cli, server):
    from tests.support.fakeserver import reply_json

    server.add(
        reply_json(
            {
                "id": "x",
                "object": "chat.completion",
                "created": 1,
                "model": "m",
                "choices": [
                    {"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": "whole"}}
                ],
            }
        )
    )
    done = run_cli("ask", "--no-stream", "--base-url", server.url, "hi")
    assert done.stdout == "whole\n" and server.requests[0]["stream"] is False


def test_big_prompt_on_stdin(run_cli, server):
    server.add(sse(text_stream("read it")))
    big = "x" * 1_000_000
    done = run_cli("ask", "--base-url", server.url, "-", input=big)
    assert done.returncode == 0
    assert len(server.requests[0]["messages"][-1]["content"]) == 1_000_000


def test_models_command(run_cli):
    with FakeServer(models=["qwen", "llama"]) as server:
        done = run_cli("models", "--base-url", server.url)
    assert done.stdout.split() == ["llama", "qwen"]


def test_a_custom_endpoint_without_a_model_uses_the_one_it_serves(run_cli):
    with FakeServer(models=["served-model"]) as server:
        server.add(sse(text_stream("hi")))
        done = run_cli("ask", "--base-url", server.url, "hello")
        assert done.returncode == 0 and server.requests[0]["model"] == "served-model"
