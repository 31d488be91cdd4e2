"""`toolchat serve` with real clients: the openai SDK against a real server subprocess whose
upstream is a scripted loopback model server. The server runs its own tools; the client's tools
come back to the client."""

from __future__ import annotations

import json

import openai
import pytest

from tests.support.fakeserver import openai_calls, sse, text_stream
from tests.support.serving import Served

WEATHER = [("get_weather", {"city": "Singapore"})]
ANSWER = "It's sunny in Singapore and 20C."
USAGE = {"prompt_tokens": 30, "completion_tokens": 7, "total_tokens": 37}


def client(served: Served) -> openai.OpenAI:
    return openai.OpenAI(base_url=served.url, api_key="unused", max_retries=0, timeout=30)


def ask_weather(sdk: openai.OpenAI, **kwargs):
    return sdk.chat.completions.create(
        model="toolchat", messages=[{"role": "user", "content": "Weather in Singapore?"}], **kwargs
    )


def test_an_allowed_server_tool_runs_server_side_and_the_answer_comes_back_whole(upstream, serve):
    upstream.add(sse(openai_calls(WEATHER)), sse(text_stream(ANSWER, usage=USAGE)))
    response = ask_weather(client(serve("--allow", "get_weather")))
    choice = response.choices[0]
    assert choice.message.content == ANSWER
    assert choice.finish_reason == "stop" and not choice.message.tool_calls
    calls = response.model_extra["toolchat"]["calls"]
    assert [(c["name"], c["arguments"], c["status"]) for c in calls] == [("get_weather", {"city": "Singapore"}, "ok")]
    assert calls[0]["seconds"] >= 0
    assert response.usage.prompt_tokens == 30 and response.usage.total_tokens == 37
    sent = upstream.requests[1]["messages"]
    assert sent[0] == {"role": "user", "content": "Weather in Singapore?"}
    assert sent[-1]["role"] == "tool" and "sunny in Singapore" in sent[-1]["content"]
    assert {t["function"]["name"] for t in upstream.requests[0]["tools"]} >= {"get_weather", "calculate"}


def test_a_streamed_answer_arrives_in_pieces_with_the_calls_and_usage_at_the_end(upstream, serve):
    upstream.add(sse(openai_calls(WEATHER)), sse(text_stream(ANSWER, pieces=4, usage=USAGE)))
    stream = ask_weather(client(serve("--allow", "get_weather")), stream=True, stream_options={"include_usage": True})
    chunks = list(stream)
    texts = [c.choices[0].delta.content for c in chunks if c.choices and c.choices[0].delta.content]
    assert "".join(texts) == ANSWER and len(texts) >= 4
    final = [c for c in chunks if c.choices and c.choices[0].finish_reason]
    assert len(final) == 1 and final[0].choices[0].finish_reason == "stop"
    assert final[0].model_extra["toolchat"]["calls"][0]["status"] == "ok"
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens == 7
    assert len({c.id for c in chunks}) == 1


def test_a_tool_the_server_does_not_allow_is_denied_and_the_model_told(upstream, serve):
    upstream.add(sse(openai_calls(WEATHER)), sse(text_stream("I cannot check the weather.")))
    response = ask_weather(client(serve()))
    assert response.choices[0].message.content == "I cannot check the weather."
    assert response.model_extra["toolchat"]["calls"][0]["status"] == "denied"
    told = upstream.requests[1]["messages"][-1]["content"]
    assert "not run" in told and "runs get_weather only when it is allowed" in told


def test_a_client_tool_call_comes_back_to_the_client_and_the_next_request_continues(upstream, serve):
    upstream.add(sse(openai_calls([("lookup_order", {"order": "A17"})])), sse(text_stream("Order A17 ships today.")))
    sdk = client(serve("--allow", "get_weather"))
    lookup = {
        "type": "function",
        "function": {
            "name": "lookup_order",
            "description": "Find an order.",
            "parameters": {"type": "object", "properties": {"order": {"type": "string"}}, "required": ["order"]},
        },
    }
    messages: list = [{"role": "user", "content": "Where is order A17?"}]
    first = sdk.chat.completions.create(model="toolchat", messages=messages, tools=[lookup])
    choice = first.choices[0]
    assert choice.finish_reason == "tool_calls"
    call = choice.message.tool_calls[0]
    assert call.function.name == "lookup_order" and json.loads(call.function.arguments) == {"order": "A17"}
    offered = [t["function"]["name"] for t in upstream.requests[0]["tools"]]
    assert "lookup_order" in offered and "get_weather" in offered
    messages += [choice.message, {"role": "tool", "tool_call_id": call.id, "content": "ships today"}]
    second = sdk.chat.completions.create(model="toolchat", messages=messages, tools=[lookup])
    assert second.choices[0].message.content == "Order A17 ships today."
    sent = upstream.requests[1]["messages"]
    assert sent[-2]["tool_calls"][0]["id"] == call.id and sent[-1] == {
        "role": "tool",
        "tool_call_id": call.id,
        "content": "ships today",
    }


def test_a_client_tool_call_streams_as_tool_call_deltas(upstream, serve):
    upstream.add(sse(openai_calls([("lookup_order", {"order": "A17"})])))
    lookup = {"type": "function", "function": {"name": "lookup_order", "parameters": {"type": "object"}}}
    stream = client(serve()).chat.completions.create(
        model="toolchat", messages=[{"role": "user", "content": "A17?"}], tools=[lookup], stream=True
    )
    chunks = list(stream)
    parts = [tc for c in chunks if c.choices for tc in c.choices[0].delta.tool_calls or []]
    assert [(p.function.name, p.function.arguments) for p in parts] == [("lookup_order", '{"order": "A17"}')]
    assert chunks[-1].choices[0].finish_reason == "tool_calls"


def test_a_client_tool_named_like_a_server_tool_is_a_400(upstream, serve):
    clash = {"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}
    with pytest.raises(openai.BadRequestError) as caught:
        client(serve()).chat.completions.create(
            model="toolchat", messages=[{"role": "user", "content": "hi"}], tools=[clash]
        )
    assert caught.value.code == "tool_name_conflict"
    assert "get_weather" in caught.value.message and upstream.requests == []


def test_each_request_is_one_trace_under_the_clients_traceparent(upstream, serve, tmp_path):
    upstream.add(sse(openai_calls(WEATHER)), sse(text_stream(ANSWER)), sse(text_stream("Hello.")))
    spans_file = tmp_path / "spans.jsonl"
    served = serve("--allow", "get_weather", "--trace", str(spans_file))
    trace_id, parent = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
    sdk = client(served)
    ask_weather(sdk, extra_headers={"traceparent": f"00-{trace_id}-{parent}-01"})
    list(sdk.chat.completions.create(model="toolchat", messages=[{"role": "user", "content": "Hi"}], stream=True))
    served.stop()
    spans = [json.loads(line) for line in spans_file.read_text().splitlines()]
    agents = [s for s in spans if s["name"].startswith("invoke_agent")]
    assert len(agents) == 2
    first = next(a for a in agents if a["context"]["trace_id"] == f"0x{trace_id}")
    assert first["parent_id"] == f"0x{parent}"
    in_first = {s["name"] for s in spans if s["context"]["trace_id"] == f"0x{trace_id}"}
    assert {"execute_tool get_weather"} <= in_first and sum(n.startswith("chat") for n in in_first) >= 1
    other = next(a for a in agents if a is not first)
    assert other["context"]["trace_id"] != first["context"]["trace_id"] and other["parent_id"] is None


def test_a_reply_calling_both_kinds_returns_the_client_calls_and_runs_none_of_the_servers(upstream, serve):
    upstream.add(sse(openai_calls([("get_weather", {"city": "Oslo"}), ("lookup_order", {"order": "A17"})])))
    lookup = {"type": "function", "function": {"name": "lookup_order", "parameters": {"type": "object"}}}
    response = client(serve("--allow", "get_weather")).chat.completions.create(
        model="toolchat", messages=[{"role": "user", "content": "Weather, and A17?"}], tools=[lookup]
    )
    assert [c.function.name for c in response.choices[0].message.tool_calls] == ["lookup_order"]
    assert response.choices[0].finish_reason == "tool_calls"
    assert response.model_extra["toolchat"]["calls"] == [] and len(upstream.requests) == 1


def test_text_parts_are_joined_and_a_later_rounds_text_is_a_new_paragraph(upstream, serve):
    upstream.add(sse(text_stream("Let me check.")), sse(text_stream(ANSWER)))
    upstream.scripts[0].chunks[-1:-1] = openai_calls(WEATHER)[1:-1]  # text, then a call, in one reply
    response = client(serve("--allow", "get_weather")).chat.completions.create(
        model="toolchat",
        messages=[
            {
                "role": "user",
                "content": [{"type": "text", "text": "Weather in "}, {"type": "text", "text": "Singapore?"}],
            }
        ],
    )
    assert response.choices[0].message.content == "Let me check.\n\n" + ANSWER
    assert upstream.requests[0]["messages"][0]["content"] == "Weather in Singapore?"


def test_the_requests_sampling_and_tool_choice_reach_the_model(upstream, serve):
    upstream.add(sse(openai_calls([("lookup_order", {"order": "A17"})])))
    lookup = {"type": "function", "function": {"name": "lookup_order", "parameters": {"type": "object"}}}
    client(serve()).chat.completions.create(
        model="toolchat",
        messages=[{"role": "user", "content": "A17?"}],
        tools=[lookup],
        temperature=0.25,
        max_tokens=77,
        tool_choice={"type": "function", "function": {"name": "lookup_order"}},
    )
    sent = upstream.requests[0]
    assert (sent["temperature"], sent["max_tokens"]) == (0.25, 77)
    assert sent["tool_choice"] == {"type": "function", "function": {"name": "lookup_order"}}


def test_an_mcp_servers_tool_runs_server_side(upstream, serve):
    pytest.importorskip("mcp")
    from tests.support.mcp_helpers import TIME

    upstream.add(
        sse(openai_calls([("time__get_current_time", {"timezone": "Asia/Tokyo"})])),
        sse(text_stream("It is evening in Tokyo.")),
    )
    response = client(
        serve("--no-bundled-tools", "--mcp", TIME, "--allow", "time__get_current_time")
    ).chat.completions.create(model="toolchat", messages=[{"role": "user", "content": "Tokyo?"}])
    assert response.choices[0].message.content == "It is evening in Tokyo."
    assert response.model_extra["toolchat"]["calls"][0]["status"] == "ok"
    answer = json.loads(upstream.requests[1]["messages"][-1]["content"])
    assert answer["timezone"] == "Asia/Tokyo" and answer["datetime"].endswith("+09:00")
