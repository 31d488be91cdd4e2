"""The REPL with a reasoning model, in a real pseudo-terminal read through a terminal emulator:
reasoning streams dim and labelled, collapses to one line when the answer begins, and /reasoning
shows it whole."""

from __future__ import annotations

from pathlib import Path

import pexpect
import pytest

from tests.support.fakeserver import FakeServer, chunk, sse
from tests.support.terminal import Screen, say, spawn

STEPS = ["First, step one: read the question.", "Then step two: weigh it.", "Finally step three: answer."]
ANSWER = "The answer is 42."


def reasoning_then_answer() -> list[dict]:
    chunks = [chunk({"role": "assistant", "reasoning_content": ""})]
    chunks += [chunk({"reasoning_content": step + "\n"}) for step in STEPS]
    chunks += [chunk({"content": ANSWER}), chunk(finish="stop")]
    chunks.append(
        chunk(
            usage={"prompt_tokens": 9, "completion_tokens": 50, "completion_tokens_details": {"reasoning_tokens": 37}},
            choices=False,
        )
    )
    return chunks


@pytest.fixture
def chat(isolated_env, tmp_path):
    pytest.importorskip("pyte")
    children = []

    def start(server: FakeServer, *args: str) -> tuple[pexpect.spawn, Screen]:
        child = spawn(
            *("chat", "--base-url", server.url, "-m", "fake", "--no-tools", *args),
            env=isolated_env,
            cwd=tmp_path,
            rows=30,
            columns=100,
            color=True,
        )
        children.append(child)
        screen = child.screen
        child.expect("›")
        return child, screen

    yield start
    for child in children:
        if child.isalive():
            child.terminate(force=True)


def session_messages(isolated_env) -> list[dict]:
    from toolchat.sessions import load

    (path,) = Path(isolated_env["TOOLCHAT_DATA_DIR"]).rglob("*.jsonl")
    return load(path).messages


def test_reasoning_streams_then_collapses_then_the_answer(chat, isolated_env):
    with FakeServer() as server:
        server.add(sse(reasoning_then_answer(), delay=0.4))
        child, screen = chat(server)
        say(child, "What is the answer?")
        child.expect("step two")
        shown = screen.shown()
        assert any(line.strip() == "reasoning" for line in shown)  # labelled
        assert any("step one" in line for line in shown) and not any(ANSWER in line for line in shown)
        row = next(y for y, line in enumerate(shown) if "step one" in line)
        assert any(ch.italics for ch in screen.screen.buffer[row].values())  # dim italic, apart from the answer
        child.expect("The answer is 42")
        child.expect("›")
        after = screen.transcript()
        assert not any("step" in line for line in after)  # collapsed ...
        thought = [line for line in after if "thought for" in line]
        assert len(thought) == 1 and "tokens" in thought[0]  # ... to one line
        assert after.index(thought[0]) < next(i for i, line in enumerate(after) if ANSWER in line)
        say(child, "/reasoning")
        child.expect("Finally step three")
        child.expect("›")
        assert all(any(step in line for line in screen.shown()) for step in STEPS)  # whole
        say(child, "/stats")
        child.expect("reasoning")
        child.expect("›")
        assert any(" 37 " in f" {line} " for line in screen.shown())  # the server's reasoning tokens
        say(child, "/history")
        child.expect("reasoning: First, step one")
        child.expect("›")
        kept = [m for m in session_messages(isolated_env) if m["role"] == "assistant"]
        assert kept[0]["reasoning"]["text"] == "".join(step + "\n" for step in STEPS)  # kept with its message
        say(child, "/undo")
        child.expect("removed the last exchange")
        child.expect("›")
        assert session_messages(isolated_env) == []  # and removed with it
        say(child, "/exit")
        child.expect(pexpect.EOF)


def test_the_banner_says_the_effort_and_reasoning_off_keeps_only_the_line(chat):
    with FakeServer() as server:
        server.add(sse(reasoning_then_answer()))
        child, screen = chat(server, "--reasoning-effort", "high", "--hide-reasoning")
        assert any("reasoning: effort high" in line and "collapsed" in line for line in screen.transcript())
        say(child, "What is the answer?")
        child.expect("The answer is 42")
        child.expect("›")
        after = screen.transcript()
        assert not any("step" in line for line in after) and any("thought for" in line for line in after)
        assert server.requests[0]["reasoning_effort"] == "high"
        say(child, "/exit")
        child.expect(pexpect.EOF)
