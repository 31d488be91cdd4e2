"""Long conversations in the REPL, in a real pseudo-terminal against a server with a small window."""

from __future__ import annotations

import time

import pexpect
import pytest

from tests.support.fakeserver import FakeServer, hang, sse, text_stream
from tests.support.terminal import say
from tests.support.windowed import WindowedServer, tokens_of

pytestmark = pytest.mark.terminal


def test_several_long_turns_keep_answering_and_compact_shrinks_the_next_request(repl):
    with WindowedServer(3000) as server:
        child = repl(server)
        for n in range(5):
            say(child, f"question {n}: " + "tell me more " * 120)
            child.expect(f"answer to: question {n}", timeout=20)
            child.expect("›")
        assert max(server.sizes) <= 3000 and server.refused == 0
        say(child, "/stats")
        child.expect(r"context [\d,]+/3,000 tokens")
        before = chat_sizes(server)[-1]
        say(child, "/compact the question numbers")
        child.expect("summarized by the model into one")
        say(child, "and now?")
        child.expect("answer to: and now?")
        assert chat_sizes(server)[-1] < before / 2
        say(child, "/history")
        child.expect(r"user \(compacted\): \[Summary of the earlier conversation")
        say(child, "/exit")
        child.expect(pexpect.EOF)


def chat_sizes(server: WindowedServer) -> list[int]:
    """The messages' size in each chat request (the summary calls, which offer no tools, left out)."""
    return [tokens_of({"messages": request["messages"]}) for request in server.requests if request.get("tools")]


def test_ctrl_c_during_compact_keeps_the_conversation_and_the_repl(repl):
    with FakeServer() as server:
        server.add(sse(text_stream("First answer.")), hang(30), sse(text_stream("Second answer.")))
        child = repl(server, "--no-tools")
        say(child, "First question")
        child.expect("First answer.")
        child.expect("›")
        say(child, "/compact")
        time.sleep(1)  # the summary call is on its way, the server holding it
        child.sendintr()
        child.expect("interrupted")
        child.expect("›")
        say(child, "Second question")
        child.expect("Second answer.")
        child.expect("›")
        assert not server.scripts
        last = server.requests[-1]["messages"]
        assert [m.get("content") for m in last if m["role"] == "user"] == ["First question", "Second question"]
        say(child, "/exit")
        child.expect(pexpect.EOF)
