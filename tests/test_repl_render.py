"""The REPL's terminal in a real pseudo-terminal: the approval question, streamed Markdown, and
text that must not drive the terminal."""

from __future__ import annotations

import pexpect

from fakeserver import openai_calls, sse, text_stream
from test_repl import QUESTION, WEATHER, press, repl, say, see, server  # noqa: F401  (fixtures)


def test_enter_and_other_keys_at_the_approval_question_ask_again(repl, server):
    server.add(sse(openai_calls(WEATHER)), sse(text_stream("It is sunny.")))
    child = repl(server)
    say(child, "weather?")
    child.expect(QUESTION)
    press(child, "\r")
    press(child, "x")
    press(child, "\r")
    press(child, "\x1b[200~yes\x1b[201~")  # pasted text is not an answer either
    press(child, "\r")
    assert child.isalive()
    press(child, "Y")
    see(child, "get_weather → ok")
    child.expect("It is sunny.")
    child.expect("›")
    assert "internal error" not in child.before and len(server.requests) == 2


def test_capital_n_declines(repl, server):
    server.add(sse(openai_calls(WEATHER)), sse(text_stream("Declined, fine.")))
    child = repl(server)
    say(child, "weather?")
    child.expect(QUESTION)
    press(child, "N")
    child.expect("Reason for the model")
    say(child, "")
    see(child, "get_weather → denied")
    child.expect("Declined, fine.")
