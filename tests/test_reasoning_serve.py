"""`toolchat serve` with a reasoning model upstream: reasoning streamed to the client as
`reasoning_content`, apart from content, and a client's assistant messages' reasoning passed back;
last, in front of llama.cpp's own llama-server, a real `openai` client."""

from __future__ import annotations

import json

import pytest

from tests.support.fakeserver import sse, text_stream
from tests.support.llama_cpp import rendered_prompt, thought_in_prompt
from tests.support.reasoning import THOUGHT, with_thought
from tests.support.recorder import RecordingProxy
from tests.support.serving import post, raw_post, sse_events

ASK = {"model": "toolchat", "messages": [{"role": "user", "content": "Hi"}]}
ANSWER = "Hello there."


def test_reasoning_is_streamed_apart_from_content(upstream, serve):
    upstream.add(with_thought("reasoning", THOUGHT, text_stream(ANSWER)))
    events = sse_events(raw_post(serve(), {**ASK, "stream": True}).read())
    deltas = [json.loads(e)["choices"][0]["delta"] for e in events[:-1] if json.loads(e)["choices"]]
    assert "".join(d.get("reasoning_content", "") for d in deltas) == THOUGHT
    assert "".join(d.get("content", "") for d in deltas) == ANSWER
    assert not any("reasoning_content" in d and d.get("content") for d in deltas)  # never in one delta


def client_sends_back_a_tool_turn(served, upstream) -> dict:
    """The client's next request: its assistant message with `reasoning_content` (what most clients
    send back) and a call of its own; the assistant message as the upstream received it."""
    calls = [{"id": "call_1", "type": "function", "function": {"name": "client_tool", "arguments": "{}"}}]
    follow_up = [
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "", "reasoning_content": "I need the tool.", "tool_calls": calls},
        {"role": "tool", "tool_call_id": "call_1", "content": "42"},
    ]
    status, _, raw = post(f"{served.url}/chat/completions", {**ASK, "messages": follow_up})
    assert status == 200, raw
    return [m for m in upstream.requests[-1]["messages"] if m["role"] == "assistant"][0]


def test_a_whole_reply_carries_reasoning_content_and_a_clients_reasoning_goes_back_upstream(upstream, serve):
    upstream.add(with_thought("reasoning_content", THOUGHT, text_stream(ANSWER)), sse(text_stream("Again.")))
    served = serve()
    status, _, raw = post(f"{served.url}/chat/completions", ASK)
    assert status == 200, raw
    message = json.loads(raw)["choices"][0]["message"]
    assert message["content"] == ANSWER and message["reasoning_content"] == THOUGHT
    sent = client_sends_back_a_tool_turn(served, upstream)
    assert sent["reasoning_content"] == "I need the tool."  # the current turn's, in its field
    assert not isinstance(sent.get("reasoning"), dict)


def test_a_clients_reasoning_goes_upstream_in_the_field_the_upstream_sends(upstream, serve):
    # vLLM >= 0.17 sends `reasoning` and reads only `reasoning` back; clients send `reasoning_content`
    upstream.add(with_thought("reasoning", THOUGHT, text_stream(ANSWER)), sse(text_stream("Again.")))
    served = serve()
    status, _, raw = post(f"{served.url}/chat/completions", ASK)
    assert status == 200 and json.loads(raw)["choices"][0]["message"]["reasoning_content"] == THOUGHT, raw
    sent = client_sends_back_a_tool_turn(served, upstream)
    assert sent["reasoning"] == "I need the tool." and "reasoning_content" not in sent


@pytest.mark.timeout(600)  # a real model on a shared machine
def test_before_llama_server_a_real_client_streams_reasoning_apart_and_sends_it_back(serve, thinking_llama_server):
    import openai

    with RecordingProxy(thinking_llama_server) as proxy:
        served = serve("--no-tools", "--max-tokens", "10", "--temperature", "0", base_url=proxy.url)
        client = openai.OpenAI(base_url=served.url, api_key="unused", max_retries=0, timeout=300)
        stream = client.chat.completions.create(model="toolchat", stream=True, messages=ASK["messages"])
        deltas = [choice.delta for chunk in stream for choice in chunk.choices]
        thought = "".join(getattr(d, "reasoning_content", None) or "" for d in deltas)
        answer = "".join(d.content or "" for d in deltas)
        assert not any(getattr(d, "reasoning_content", None) and d.content for d in deltas)  # never in one delta
        upstream_said = [e["choices"][0]["delta"] for e in proxy.posts()[0].events() if e.get("choices")]
        assert thought.strip() and thought == "".join(d.get("reasoning_content") or "" for d in upstream_said)
        assert thought not in answer
        calls = [{"id": "call_1", "type": "function", "function": {"name": "client_tool", "arguments": "{}"}}]
        follow_up = [
            *ASK["messages"],
            {"role": "assistant", "content": "", "reasoning_content": thought, "tool_calls": calls},
            {"role": "tool", "tool_call_id": "call_1", "content": "42"},
        ]
        client.chat.completions.create(model="toolchat", messages=follow_up)
    back = proxy.posts()[-1]
    assert [m.get("reasoning_content") for m in back.body["messages"] if m["role"] == "assistant"] == [thought]
    assert thought_in_prompt(thought) + "\n<tool_call>\n" in rendered_prompt(back)  # llama-server rendered it
