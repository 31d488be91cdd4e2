"""The OpenAI-compatible backend against a real loopback server streaming like each real one."""

from __future__ import annotations

import json

import pytest

from fakeserver import (FakeServer, chunk, error, hang, ollama_calls, openai_calls, reply_json, sse, text_stream,
                        vllm_calls)
from toolchat.backends.base import Reply, Request, TextDelta
from toolchat.backends.openai import OpenAIBackend
from toolchat.config import Settings
from toolchat.errors import BackendError, UsageError

TOOLS = [{"type": "function", "function": {"name": "get_weather", "description": "W",
                                            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}]
SECRET = "sk-test-SECRETKEY-1234567890"


def backend_for(server: FakeServer, stream: bool = True, timeout: float = 30, key: str | None = None) -> OpenAIBackend:
    settings = Settings(backend="openai", base_url=server.url, model="fake-model", stream=stream,
                        request_timeout=timeout, api_key=key)
    return OpenAIBackend(settings, {}, max_retries=2)


def complete(backend: OpenAIBackend, **kwargs) -> tuple[list[str], Reply]:
    request = Request([{"role": "user", "content": "hi"}], TOOLS, **kwargs)
    deltas, reply = [], None
    for event in backend.complete(request):
        if isinstance(event, TextDelta):
            deltas.append(event.text)
        else:
            reply = event
    assert reply is not None
    return deltas, reply


def calls_of(reply: Reply) -> list[tuple[str, dict]]:
    return [(c.name, json.loads(c.arguments)) for c in reply.tool_calls]


def test_streamed_text_and_usage_with_cached_tokens():
    usage = {"prompt_tokens": 50, "completion_tokens": 5, "total_tokens": 55,
             "prompt_tokens_details": {"cached_tokens": 32}}
    with FakeServer() as server:
        server.add(sse(text_stream("Hello there, friend.", usage=usage)))
        deltas, reply = complete(backend_for(server))
        assert "".join(deltas) == "Hello there, friend." and len(deltas) > 1
        assert reply.text == "Hello there, friend."
        assert (reply.usage.prompt_tokens, reply.usage.completion_tokens, reply.usage.cached_tokens) == (50, 5, 32)
        request = server.requests[0]
        assert request["stream"] is True and request["stream_options"] == {"include_usage": True}
        assert request["tools"] == TOOLS


PARALLEL = [("get_weather", {"city": "Oslo"}), ("get_weather", {"city": "Lima"})]


@pytest.mark.parametrize("style", [openai_calls, vllm_calls, ollama_calls])
def test_parallel_calls_in_every_servers_style(style):
    with FakeServer() as server:
        server.add(sse(style(PARALLEL)))
        _, reply = complete(backend_for(server))
    assert calls_of(reply) == PARALLEL
    ids = [c.id for c in reply.tool_calls]
    assert len(set(ids)) == 2 and all(ids)


def test_vllm_calls_without_ids_get_generated_ones():
    with FakeServer() as server:
        server.add(sse(vllm_calls([("get_weather", {"city": "Oslo"})], resend_final=False)))
        _, reply = complete(backend_for(server))
    assert reply.tool_calls[0].id.startswith("call_") and reply.tool_calls[0].name == "get_weather"


def test_non_streamed_reply_with_arguments_as_an_object():
    body = {"id": "x", "object": "chat.completion", "created": 1, "model": "m",
            "choices": [{"index": 0, "finish_reason": "tool_calls", "message": {
                "role": "assistant", "content": "", "tool_calls": [
                    {"id": "c1", "type": "function", "function": {"name": "get_weather", "arguments": {"city": "Oslo"}}}]}}],
            "usage": {"prompt_tokens": 10, "completion_tokens": 3, "total_tokens": 13}}
    with FakeServer() as server:
        server.add(reply_json(body))
        _, reply = complete(backend_for(server, stream=False))
        assert server.requests[0]["stream"] is False
    assert calls_of(reply) == [("get_weather", {"city": "Oslo"})]
    assert reply.usage.prompt_tokens == 10 and reply.usage.cached_tokens == 0


def test_tool_choice_is_sent():
    with FakeServer() as server:
        server.add(sse(text_stream("ok")))
        complete(backend_for(server), tool_choice={"type": "function", "function": {"name": "get_weather"}})
        assert server.requests[0]["tool_choice"] == {"type": "function", "function": {"name": "get_weather"}}


def test_a_server_that_rejects_stream_options_is_asked_again_without():
    with FakeServer() as server:
        server.add(error(400, "Unrecognized request argument supplied: stream_options"), sse(text_stream("fine")))
        _, reply = complete(backend_for(server))
        assert reply.text == "fine"
        assert "stream_options" not in server.requests[1]


@pytest.mark.parametrize("first", [error(429, "slow down", retry_after="0"), error(500, "oops"), error(503, "busy")])
def test_retries_then_succeeds(first):
    with FakeServer() as server:
        server.add(first, sse(text_stream("after retry")))
        _, reply = complete(backend_for(server))
        assert reply.text == "after retry" and len(server.requests) == 2


def failure(server: FakeServer, **kwargs) -> str:
    with pytest.raises(BackendError) as info:
        complete(backend_for(server, **kwargs))
    return str(info.value)


def test_key_refused_is_one_line_without_the_key():
    with FakeServer() as server:
        server.add(error(401, f"Incorrect API key provided: {SECRET}"))
        message = failure(server, key=SECRET)
    assert message == f"{server.url} refused the API key (HTTP 401) (check OPENAI_API_KEY or api_key in the config)"
    assert SECRET not in message


def test_model_not_found_names_the_model():
    with FakeServer() as server:
        server.add(error(404, "The model `fake-model` does not exist"))
        assert "model 'fake-model' not found at" in failure(server)


def test_wrong_url_names_the_url():
    with FakeServer() as server:
        settings = Settings(backend="openai", base_url=server.url.replace("/v1", "/v2"), model="m")
        with pytest.raises(BackendError, match=r"/v2 has no OpenAI-compatible API there \(HTTP 404\)"):
            list(OpenAIBackend(settings, {}, max_retries=0).complete(Request([], [])))


def test_persistent_server_error_after_retries():
    with FakeServer() as server:
        server.add(*[error(500, "tools param requires --jinja flag")] * 3)
        message = failure(server)
        assert len(server.requests) == 3
    assert "server error (HTTP 500) after retries: tools param requires --jinja flag" in message
    assert "start llama-server with --jinja" in message


def test_connection_refused_names_the_url():
    server = FakeServer()
    url = server.url
    server._server.server_close()  # nothing listens there now
    settings = Settings(backend="openai", base_url=url, model="m")
    with pytest.raises(BackendError, match=f"cannot connect to {url}"):
        list(OpenAIBackend(settings, {}, max_retries=0).complete(Request([], [])))


def test_a_stream_cut_mid_answer_and_mid_tool_call():
    with FakeServer() as server:
        server.add(sse(text_stream("partial answer here", pieces=5), cut_after=3))
        assert "broke off mid-answer" in failure(server)
        server.add(sse(openai_calls([("get_weather", {"city": "Oslo"})], split=2), cut_after=4))
        assert "broke off mid-tool-call" in failure(server)


def test_a_server_that_never_answers_times_out():
    with FakeServer() as server:
        server.add(hang(10), hang(10), hang(10))
        settings = Settings(backend="openai", base_url=server.url, model="m", request_timeout=0.5)
        with pytest.raises(BackendError, match=r"no answer from .* within 0.5 s"):
            list(OpenAIBackend(settings, {}, max_retries=0).complete(Request([], [])))


def test_models_are_listed():
    with FakeServer(models=["b-model", "a-model"]) as server:
        assert backend_for(server).list_models() == ["a-model", "b-model"]


def test_openai_itself_needs_a_key_but_a_custom_endpoint_does_not():
    with pytest.raises(UsageError, match="no API key for OpenAI"):
        OpenAIBackend(Settings(backend="openai"), {})
    with FakeServer() as server:
        server.add(sse(text_stream("ok")))
        complete(backend_for(server))
        assert server.headers[0]["authorization"] == "Bearer not-needed"
