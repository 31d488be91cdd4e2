"""`toolchat serve` against fields of the wrong type or size, sent by the openai SDK (the client
most requests come from): each a 400 in OpenAI's shape naming the field, never a 500, a crash or
a request passed on; and counts an upstream leaves null passed on as null, never as a measured 0."""

from __future__ import annotations

import openai
import pytest

from tests.support.fakeserver import chunk, sse, text_stream
from tests.support.serving import Served

ASK = [{"role": "user", "content": "Weather in Singapore?"}]
CALL = {"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}
WRONG = [
    ({"max_tokens": 10**40}, "max_tokens"),  # past any server's 32-bit count: it was passed on, and failed there
    ({"max_completion_tokens": 10**40}, "max_completion_tokens"),
    ({"max_tokens": 2**31}, "max_tokens"),
    ({"max_tokens": True}, "max_tokens"),
    ({"max_tokens": -1}, "max_tokens"),
    ({"max_tokens": 0}, "max_tokens"),
    ({"max_tokens": 8.5}, "max_tokens"),
    ({"max_completion_tokens": False}, "max_completion_tokens"),
    ({"n": True}, "n"),  # true == 1 in Python: it was taken for one choice
    ({"n": 1.0}, "n"),
    ({"n": -1}, "n"),
    ({"n": 2}, "n"),
    ({"temperature": True}, "temperature"),
    ({"temperature": -0.5}, "temperature"),
    ({"temperature": 10**400}, "temperature"),
    ({"stream": 0}, "stream"),  # 0 was taken for false
    ({"stream": "yes"}, "stream"),
    ({"stream_options": {"include_usage": 1}}, "stream_options.include_usage"),
    ({"stream_options": []}, "stream_options"),
    ({"messages": [*ASK, {"role": "assistant", "content": "", "tool_calls": True}]}, "messages[1].tool_calls"),
    ({"messages": [*ASK, {"role": "assistant", "content": "", "tool_calls": [5]}]}, "messages[1].tool_calls[0]"),
    (
        {"messages": [*ASK, {"role": "assistant", "tool_calls": [{**CALL, "function": {"name": 5}}]}]},
        "messages[1].tool_calls[0]",
    ),
    (
        {"messages": [*ASK, {"role": "assistant", "tool_calls": [{**CALL, "id": 7}]}]},
        "messages[1].tool_calls[0]",
    ),
    ({"messages": [*ASK, {"role": "tool", "tool_call_id": 5, "content": "x"}]}, "messages[1].tool_call_id"),
    ({"messages": [{"role": "user", "content": "hi", "name": True}]}, "messages[0].name"),
]


def client(served: Served) -> openai.OpenAI:
    return openai.OpenAI(base_url=served.url, api_key="unused", max_retries=0, timeout=30)


def test_fields_of_the_wrong_type_or_size_are_each_a_400_naming_the_field(upstream, serve):
    served = serve()
    sdk = client(served)
    for fields, param in WRONG:
        body = {"messages": ASK, **fields}
        with pytest.raises(openai.BadRequestError) as caught:
            sdk.chat.completions.create(model="toolchat", messages=body.pop("messages"), extra_body=body)
        error = caught.value.body
        assert isinstance(error, dict) and error["type"] == "invalid_request_error", (fields, error)
        assert error["param"] == param, (fields, error)
    assert upstream.requests == []  # none was passed on
    assert "Traceback" not in served.log() and " 500 " not in served.log()


def test_the_largest_count_every_server_reads_is_passed_on(upstream, serve):
    upstream.add(sse(text_stream("fine")))
    answer = client(serve()).chat.completions.create(model="toolchat", messages=ASK, max_tokens=2**31 - 1)
    assert answer.choices[0].message.content == "fine"
    assert upstream.requests[0]["max_tokens"] == 2**31 - 1


NULL_USAGE = {"prompt_tokens": None, "completion_tokens": None, "total_tokens": None}


def test_usage_an_upstream_leaves_null_is_passed_on_as_null_not_zero(upstream, serve):
    usage = chunk(usage={**NULL_USAGE, "completion_tokens_details": None}, choices=False)
    upstream.add(sse([*text_stream("One."), usage]), sse([*text_stream("Two."), usage]))
    served = serve()
    sdk = client(served)
    whole = sdk.chat.completions.create(model="toolchat", messages=ASK)
    assert whole.choices[0].message.content == "One."
    counts = (whole.usage.prompt_tokens, whole.usage.completion_tokens, whole.usage.total_tokens)
    assert counts == (None, None, None)  # not reported: never 0
    stream = sdk.chat.completions.create(
        model="toolchat", messages=ASK, stream=True, stream_options={"include_usage": True}
    )
    chunks = list(stream)
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "Two."
    (last,) = [c for c in chunks if c.usage is not None]
    assert (last.usage.prompt_tokens, last.usage.completion_tokens, last.usage.total_tokens) == (None, None, None)
    lines = [line for line in served.log().splitlines() if "POST /v1/chat/completions 200" in line]
    assert len(lines) == 2 and all("tokens=-+-" in line for line in lines), lines
    assert "Traceback" not in served.log()


UPSTREAM_KEY = "sk-upstream-Qw3rTy9secret77"


def test_a_400_quoting_a_field_is_short_one_line_and_never_holds_a_secret(upstream, serve):
    """A 400 names the value it refuses, as every body passes the redactor (the upstream's key
    echoed is `***`), on one line and cut: a 100 000-character name is not sent back whole."""
    sdk = client(serve(env={"OPENAI_API_KEY": UPSTREAM_KEY}))
    long_name = "x" * 100_000 + "\x1b[2J\nforged"
    asked = [
        ({"tool_choice": {"type": "function", "function": {"name": UPSTREAM_KEY}}}, "tool_choice"),
        ({"tool_choice": {"type": "function", "function": {"name": long_name}}}, "tool_choice"),
        ({"tools": [{"type": "function", "function": {"name": long_name}}]}, "tools[0].function.name"),
        ({"tools": [{"type": "function", "function": {"name": f"{UPSTREAM_KEY}!"}}]}, "tools[0].function.name"),
    ]
    for fields, param in asked:
        with pytest.raises(openai.BadRequestError) as caught:
            sdk.chat.completions.create(model="toolchat", messages=ASK, extra_body=fields)
        error = caught.value.body
        assert isinstance(error, dict) and error["param"] == param, (fields, error)
        message = error["message"]
        assert len(message) < 300, message
        assert UPSTREAM_KEY[:12] not in message and "\x1b" not in message and "\n" not in message, message
    assert upstream.requests == []
