"""Reasoning in traces: its tokens always (the GenAI conventions' attribute), its text only with
content capture, as the conventions' reasoning part."""

from __future__ import annotations

import json

from tests.support.fakeserver import FakeServer, openai_calls, sse, text_stream
from tests.support.reasoning import THOUGHT, with_thought
from tests.support.tracing import ask

USAGE = {"prompt_tokens": 50, "completion_tokens": 60, "completion_tokens_details": {"reasoning_tokens": 45}}


def reasoning_weather(server: FakeServer) -> None:
    first = with_thought("reasoning_content", THOUGHT, openai_calls([("get_weather", {"city": "Singapore"})]))
    server.add(first, sse(text_stream("Sunny.", usage=USAGE)))


def chat_spans(spans):
    return [s for s in spans.exporter.get_finished_spans() if s.name.startswith("chat")]


def test_reasoning_tokens_are_traced_and_its_text_only_with_content(tmp_path, caught):
    spans = caught(content=False)
    with FakeServer() as server:
        reasoning_weather(server)
        code, out, _ = ask(server, tmp_path, "Weather in Singapore?")
    assert code == 0 and out == "Sunny.\n"
    chats = chat_spans(spans)
    assert chats[1].attributes["gen_ai.usage.reasoning.output_tokens"] == 45
    assert "gen_ai.usage.reasoning.output_tokens" not in chats[0].attributes  # the server said none
    assert THOUGHT not in json.dumps([dict(s.attributes) for s in spans.exporter.get_finished_spans()])


def test_with_content_the_reasoning_is_a_part_of_the_reply(tmp_path, caught):
    spans = caught(content=True)
    with FakeServer() as server:
        reasoning_weather(server)
        ask(server, tmp_path, "Weather in Singapore?")
    first = json.loads(chat_spans(spans)[0].attributes["gen_ai.output.messages"])[0]
    assert first["parts"][0] == {"type": "reasoning", "content": THOUGHT}
    sent = json.loads(chat_spans(spans)[1].attributes["gen_ai.input.messages"])
    assert {"type": "reasoning", "content": THOUGHT} in sent[-2]["parts"]
