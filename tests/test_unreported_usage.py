"""Numbers never measured are never shown as measured (issue 28): a server that sends no usage
is "not reported" in /stats and null in --json, never 0; a local round's tokens are always
known, also when Ctrl-C cut it short."""

from __future__ import annotations

import json
import re

import pexpect
import pytest

from tests.support.fakeserver import sse, text_stream
from tests.support.terminal import say, see
from toolchat.engine import Decision, Engine, Policy, RoundDone, TextDelta, total_usage
from toolchat.tools import RunLimits, discover

USAGE = {"prompt_tokens": 30, "completion_tokens": 9, "prompt_tokens_details": {"cached_tokens": 24}}


def test_ask_json_says_null_for_a_stream_without_usage_and_counts_one_with_it(cli, server):
    server.add(sse(text_stream("First.")))
    done = cli("ask", "--json", "--base-url", server.url, "hi")
    assert done.returncode == 0, done.stderr
    usage = json.loads(done.stdout)["usage"]
    assert usage["rounds"] == [{"prompt_tokens": None, "completion_tokens": None, "cached_tokens": None}]
    assert (usage["prompt_tokens"], usage["completion_tokens"], usage["cached_tokens"]) == (None, None, None)
    server.add(sse(text_stream("Second.", usage={"prompt_tokens": 30, "completion_tokens": 9})))
    usage = json.loads(cli("ask", "--json", "--base-url", server.url, "hi").stdout)["usage"]
    assert usage["rounds"] == [{"prompt_tokens": 30, "completion_tokens": 9, "cached_tokens": None}]  # none sent


@pytest.mark.terminal
def test_stats_shows_a_dash_for_what_the_server_did_not_report(repl, server):
    server.add(sse(text_stream("Unmeasured.")), sse(text_stream("Measured.", usage=USAGE)))
    child = repl(server)
    say(child, "one")
    child.expect("Unmeasured.")
    child.expect("›")
    say(child, "two")
    child.expect("Measured.")
    child.expect("›")
    say(child, "/stats")
    child.expect(r"1\s+-\s+-\s+-\s+-\s+\d+\.\d\d")  # round 1: prompt, cached, completion, reasoning unknown
    child.expect(r"2\s+30\s+24\s+9\s+-\s+\d+\.\d\d")
    see(child, "- : not reported by the server")
    child.expect("›")
    child.sendeof()
    child.expect(pexpect.EOF)


def test_llama_cpp_python_server_streams_no_usage_and_json_says_null(cli, llama_server):
    done = cli("ask", "--base-url", llama_server, "--max-tokens", "8", "--json", "Say hello.", timeout=300)
    assert done.returncode == 0, done.stderr
    usage = json.loads(done.stdout)["usage"]
    assert usage["prompt_tokens"] is None and usage["completion_tokens"] is None  # it sent none, not 0
    assert usage["rounds"] == [{"prompt_tokens": None, "completion_tokens": None, "cached_tokens": None}]


def test_ctrl_c_mid_answer_with_the_bundled_model_still_counts_what_it_generated(shared_cache, tmp_path):
    pytest.importorskip("llama_cpp")
    from toolchat.backends.local import LocalBackend
    from toolchat.config.settings import Settings

    # `-m bundled`, as a user runs it: a question that names no tool is answered in text, streamed,
    # so the Ctrl-C lands a few tokens in (given the GGUF's path, the model was offered every tool,
    # wrote a 512-token call and showed its text only at the end, after the whole generation)
    backend = LocalBackend(Settings(backend="local", model="bundled", n_ctx=2048, seed=7), shared_cache)
    events: list = []

    def sink(event):  # the user presses Ctrl-C as the first piece of the answer is shown
        events.append(event)
        if isinstance(event, TextDelta):
            raise KeyboardInterrupt

    engine = Engine(
        backend,
        discover([], bundled=True),
        approve=lambda pending: Decision(False),
        on_event=sink,
        policy=Policy(),
        limits=RunLimits(tmp_path, timeout=10),
    )
    try:
        result = engine.run_turn("Tell me a long story about a lighthouse keeper and the sea.")
    finally:
        backend.close()
    assert result.stopped == "interrupted"
    (usage,) = result.rounds
    shown = "".join(e.text for e in events if isinstance(e, TextDelta))
    assert result.answer == shown and shown.strip()
    assert usage.prompt_tokens > 20 and usage.completion_tokens >= 2  # not 0 0 0: {"response": " and a word
    assert usage.completion_tokens < 32  # cut mid-answer, not counted after a whole generation
    assert usage.cached_tokens is not None
    (done,) = [e for e in events if isinstance(e, RoundDone)]
    assert done.interrupted and done.usage is usage
    assert total_usage(result.rounds)["completion_tokens"] == usage.completion_tokens


def test_counts_that_are_not_counts_are_not_reported(cli, server):
    told = {"prompt_tokens": "30", "completion_tokens": -1, "prompt_tokens_details": {"cached_tokens": 2.5}}
    server.add(sse(text_stream("Odd.", usage=told)))
    done = cli("ask", "--json", "--base-url", server.url, "hi")
    assert done.returncode == 0, done.stderr
    usage = json.loads(done.stdout)["usage"]
    assert usage["rounds"] == [{"prompt_tokens": None, "completion_tokens": None, "cached_tokens": None}]


def test_serve_says_null_and_its_access_line_a_dash_for_tokens_upstream_did_not_report(upstream, serve):
    from tests.support.serving import ASK, lines_after, raw_post

    upstream.add(sse(text_stream("Sunny.")))
    served = serve()
    response = raw_post(served, ASK)
    assert response.status == 200
    usage = json.loads(response.read())["usage"]
    assert (usage["prompt_tokens"], usage["completion_tokens"], usage["total_tokens"]) == (None, None, None)
    (line,) = lines_after(served, 1)
    assert re.fullmatch(r"toolchat serve: POST /v1/chat/completions 200 model=toolchat tokens=-\+- \d+\.\d{3} s", line)
