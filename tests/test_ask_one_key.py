"""`toolchat ask` on a terminal decides a call with one key, as the REPL does (issue 28, item 2)."""

from __future__ import annotations

import pexpect
import pytest

from tests.support.fakeserver import FakeServer, openai_calls, sse, text_stream
from tests.support.terminal import QUESTION, press, spawn

WEATHER = [("get_weather", {"city": "Singapore"})]


@pytest.fixture
def server():
    with FakeServer() as running:
        yield running


def ask(server: FakeServer, isolated_env, tmp_path, *args: str) -> pexpect.spawn:
    return spawn(
        "ask", "--base-url", server.url, *args, "Weather in Singapore?",
        env=isolated_env, cwd=tmp_path, rows=24, columns=120,
    )  # fmt: skip


@pytest.mark.terminal
def test_y_runs_the_call_without_enter_and_the_call_is_shown_once(server, isolated_env, tmp_path):
    server.add(sse(openai_calls(WEATHER)), sse(text_stream("Sunny.")))
    child = ask(server, isolated_env, tmp_path)
    child.expect(QUESTION)
    press(child, "y")  # no Enter
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0
    seen = "\n".join(child.screen.transcript())
    assert seen.count('→ get_weather {"city": "Singapore"}') == 1
    assert "The model wants to run" not in seen
    assert "y: run" in seen and "← get_weather ok:" in seen and "Sunny." in seen


@pytest.mark.terminal
def test_other_keys_and_enter_are_ignored_and_question_mark_explains(server, isolated_env, tmp_path):
    server.add(sse(openai_calls(WEATHER)), sse(text_stream("Sunny.")))
    child = ask(server, isolated_env, tmp_path)
    child.expect(QUESTION)
    press(child, "x\r")  # neither answers the question
    press(child, "?")
    child.expect("edit the arguments")
    child.expect(QUESTION)
    press(child, "a")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0
    assert len(server.requests) == 2  # the call ran once, after `a`


@pytest.mark.terminal
def test_e_edits_the_arguments_which_are_validated_before_the_call_runs(server, isolated_env, tmp_path):
    server.add(sse(openai_calls(WEATHER)), sse(text_stream("Sunny in Paris.")))
    child = ask(server, isolated_env, tmp_path)
    child.expect(QUESTION)
    press(child, "e")
    child.expect("Arguments as JSON")
    child.sendline('{"town": "Paris"}')
    child.expect("invalid")
    child.sendline('{"city": "Paris"}')
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0
    assert "Paris" in server.requests[1]["messages"][-1]["content"]


@pytest.mark.terminal
def test_quiet_ask_still_shows_the_call_on_the_terminal_before_asking(server, isolated_env, tmp_path):
    server.add(sse(openai_calls(WEATHER)), sse(text_stream("Sunny.")))
    child = ask(server, isolated_env, tmp_path, "-q")
    child.expect(QUESTION)
    press(child, "y")
    child.expect(pexpect.EOF)
    child.close()
    assert "\n".join(child.screen.transcript()).count('→ get_weather {"city": "Singapore"}') == 1


@pytest.mark.terminal
def test_ctrl_d_at_the_question_declines_without_asking_a_reason(server, isolated_env, tmp_path):
    server.add(sse(openai_calls(WEATHER)), sse(text_stream("Not run, then.")))
    child = ask(server, isolated_env, tmp_path)
    child.expect(QUESTION)
    press(child, "\x04")  # Ctrl-D: the terminal ends, as EOF does
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0
    seen = "\n".join(child.screen.transcript())
    assert "Reason for the model" not in seen and "Not run, then." in seen
    assert "← get_weather denied: the user did not answer" in seen
    told = server.requests[1]["messages"][-1]
    assert told["role"] == "tool" and "denied" in told["content"] and "did not answer" in told["content"]
