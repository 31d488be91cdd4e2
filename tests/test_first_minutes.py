"""What a new user meets in the REPL's first minutes, in a real pseudo-terminal against a real
loopback server: the approval question, Tab, typing ahead, leaving and coming back."""

from __future__ import annotations

import json
import time

import pexpect

from tests.support.fakeserver import chunk, openai_calls, sse, text_stream
from tests.support.terminal import QUESTION, WEATHER, press, say, see

CALC = [("calculate", {"expression": "2 * (3 + 4) ** 2"})]


def test_ctrl_c_at_the_approval_question_is_not_a_stopped_tool(repl, server):
    server.add(sse(openai_calls(WEATHER)), sse(text_stream("Next.")))
    child = repl(server)
    say(child, "weather?")
    child.expect(QUESTION)
    child.sendintr()
    child.expect("interrupted")
    child.expect("›")
    say(child, "/stats")
    see(child, "1 turn, 1 model call, 1 tool call")
    say(child, "and now?")
    child.expect("Next.")
    told = server.requests[1]["messages"]
    answer = next(m for m in told if m["role"] == "tool")["content"]
    assert answer == "Not run: the user pressed Ctrl-C before approving this call."


def test_edited_arguments_are_what_the_model_sees(repl, server):
    server.add(sse(openai_calls(CALC)), sse(text_stream("42.")))
    child = repl(server)
    say(child, "compute")
    child.expect(r"Run calculate\?")
    press(child, "e")
    child.expect("Arguments")
    press(child, "\x7f" * 60 + '{"expression": "6*7"}')
    child.send("\x1b\r")
    see(child, "calculate → ok")
    child.expect("›")  # the answer is in: the prompt is back
    history = server.requests[1]["messages"]
    call = next(m for m in history if m.get("tool_calls"))["tool_calls"][0]
    assert json.loads(call["function"]["arguments"]) == {"expression": "6*7"}
    result = next(m for m in history if m["role"] == "tool")["content"]
    assert "user edited the arguments" in result and result.endswith("42")


def test_keys_typed_before_the_question_never_answer_it(repl, server):
    words = " ".join(f"w{i}" for i in range(30))
    stream = text_stream(words, pieces=30)[:-1] + openai_calls(WEATHER)[1:]
    server.add(sse(stream, delay=0.05), sse(text_stream("Declined, fine.")))
    child = repl(server)
    say(child, "weather?")
    child.expect("w3")
    child.send("yyy")  # typed while the answer streamed, before any question
    child.expect(QUESTION)
    time.sleep(1.0)
    assert len(server.requests) == 1  # still waiting: the early keys answered nothing
    press(child, "n")
    child.expect("Reason for the model")
    say(child, "")
    child.expect("Declined, fine.")
    assert "denied" in server.requests[1]["messages"][-1]["content"]
    child.expect("›")
    time.sleep(0.5)
    child.send("\r")  # the early keys were answer keys: they are gone, not waiting at the prompt
    time.sleep(1.0)
    assert len(server.requests) == 2


def test_text_typed_while_an_answer_streams_becomes_the_next_input(repl, server):
    words = " ".join(f"word{i}" for i in range(60))
    server.add(sse(text_stream(words, pieces=60), delay=0.05), sse(text_stream("Second answer.")))
    child = repl(server)
    say(child, "talk")
    child.expect("word5")
    child.send("what next")
    child.expect("word59")
    child.expect("›")
    time.sleep(0.5)
    child.send("\r")
    child.expect("Second answer.")
    assert server.requests[1]["messages"][-1] == {"role": "user", "content": "what next"}


def test_tab_completes_tool_names_after_allow_and_deny(repl, server):
    child = repl(server)
    press(child, "/allow get_w")
    press(child, "\t")
    time.sleep(0.5)
    child.send("\r")
    see(child, "get_weather now runs without asking")
    say(child, "/allow")
    see(child, "usage: /allow NAME")
    press(child, "/deny calc")
    press(child, "\t")
    time.sleep(0.5)
    child.send("\r")
    see(child, "calculate is no longer offered")


def test_continue_skips_an_empty_session(repl, server, tmp_path):
    server.add(sse(text_stream("Remember me.")))
    first = repl(server)
    say(first, "the real question")
    first.expect("Remember me.")
    first.expect("›")
    first.sendeof()
    first.expect(pexpect.EOF)
    empty = repl(server)  # opened and left at once
    empty.sendeof()
    empty.expect(pexpect.EOF)
    resumed = repl(server, "--continue")
    assert "resumed session" in resumed.started and "2 messages" in resumed.started


def test_a_stream_cut_at_max_tokens_is_said(repl, server):
    server.add(sse([chunk({"role": "assistant", "content": "The start of a long"}), chunk(finish="length")]))
    child = repl(server, "--max-tokens", "5")
    say(child, "tell me everything")
    see(child, "the answer was cut at max_tokens 5")


def test_a_tool_never_sees_toolchats_api_key(cli, plugin_dir, tmp_path):
    from tests.support.fakeserver import FakeServer

    tools = plugin_dir(
        peek='''
        import os

        def peek() -> str:
            """What a tool can read of toolchat's environment."""
            return os.environ.get("OPENAI_API_KEY", "no key here")
    '''
    )
    with FakeServer(models=["m"]) as server:
        server.add(sse(openai_calls([("peek", {})])), sse(text_stream("done")))
        result = cli(
            "ask",
            "--base-url",
            server.url,
            "-m",
            "m",
            "-t",
            str(tools),
            "--allow",
            "peek",
            "--json",
            "peek",
            env={"OPENAI_API_KEY": "sk-secret-key-1234567890"},
        )
        assert result.returncode == 0, result.stderr
        assert json.loads(result.stdout)["tool_calls"][0]["output"] == "no key here"


def test_latin1_piped_into_ask_is_read_with_replacement(run_cli):
    from tests.support.fakeserver import FakeServer

    with FakeServer(models=["m"]) as server:
        server.add(sse(text_stream("read it")))
        result = run_cli(
            "ask",
            "--base-url",
            server.url,
            "-m",
            "m",
            "--no-tools",
            "Summarise:",
            input="caf\xe9 cr\xe8me".encode("latin-1"),
        )
        assert result.returncode == 0, result.stderr
        assert server.requests[0]["messages"][-1]["content"] == "Summarise:\n\ncaf\ufffd cr\ufffdme"


def test_an_empty_answer_is_said_on_stderr(run_cli):
    from tests.support.fakeserver import FakeServer

    with FakeServer(models=["m"]) as server:
        server.add(sse(text_stream("")))
        result = run_cli("ask", "--base-url", server.url, "-m", "m", "--no-tools", "anything?")
        assert result.returncode == 0 and result.stdout.strip() == ""
        assert "the model returned an empty answer" in result.stderr


def test_a_denial_without_a_terminal_is_one_line(run_cli):
    from tests.support.fakeserver import FakeServer

    with FakeServer(models=["m"]) as server:
        server.add(sse(openai_calls(WEATHER)), sse(text_stream("No weather then.")))
        result = run_cli("ask", "--base-url", server.url, "-m", "m", "weather?")
        lines = [line for line in result.stderr.splitlines() if "get_weather" in line and "→" not in line]
        assert lines == [
            "toolchat: denied get_weather: no terminal to ask for approval; allow it with --allow get_weather or --yes"
        ]


def test_a_question_without_ask_says_how_to_ask(run_cli):
    result = run_cli("what is 2+2")
    assert result.returncode == 2 and 'to ask a question: toolchat ask "what is 2+2"' in result.stderr
    typo = run_cli("tols")
    assert typo.returncode == 2 and "did you mean `toolchat tools`?" in typo.stderr


def test_a_tool_timeout_that_is_no_number_of_seconds_is_refused(run_cli):
    for value in ("nan", "1e10", "-1"):
        result = run_cli("ask", "--tool-timeout", value, "hi")
        assert result.returncode == 2 and "not a number of seconds" in result.stderr


def test_a_temperature_or_max_tokens_no_server_reads_is_refused_before_anything_is_sent(run_cli, server, tmp_path):
    for flag, value in (("--temperature", "nan"), ("--temperature", "-1"), ("--temperature", "2.5")):
        result = run_cli("ask", "--base-url", server.url, flag, value, "hi")
        assert result.returncode == 2 and "is not a temperature from 0 to 2" in result.stderr, result.stderr
    for value in ("0", "-3", str(2**31), str(10**40)):
        result = run_cli("ask", "--base-url", server.url, "--max-tokens", value, "hi")
        assert result.returncode == 2 and "1<=x<=2147483647" in result.stderr, result.stderr
    config = tmp_path / "huge.yaml"
    config.write_text("max_tokens: 10000000000000000000000000000000000000000\n")
    result = run_cli("ask", "--base-url", server.url, "-c", str(config), "hi")
    assert result.returncode == 2 and "max_tokens" in result.stderr, result.stderr
    assert server.requests == []


def test_shell_completion_completes_commands_and_options(cli):
    script = cli("--show-completion", "bash")
    assert script.returncode == 0 and "_toolchat_completion" in script.stdout
    commands = cli(env={"_TOOLCHAT_COMPLETE": "complete_bash", "COMP_WORDS": "toolchat to", "COMP_CWORD": "1"})
    assert commands.stdout.split() == ["tools"]
    options = cli(env={"_TOOLCHAT_COMPLETE": "complete_bash", "COMP_WORDS": "toolchat ask --tool-", "COMP_CWORD": "2"})
    assert set(options.stdout.split()) == {"--tool-choice", "--tool-timeout"}
