"""The OpenAI-compatible backend against a real loopback server streaming like each real one."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.support.fakeserver import (
    FakeServer,
    chunk,
    error,
    hang,
    keepalive,
    ollama_calls,
    openai_calls,
    raw,
    reply_json,
    sse,
    text_stream,
    vllm_calls,
)
from tests.support.terminal import spawn
from toolchat.backends.base import Reply, Request, TextDelta
from toolchat.backends.openai import OpenAIBackend
from toolchat.config.settings import Settings
from toolchat.errors import BackendError, UsageError

TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "W",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
        },
    }
]
SECRET = "sk-test-SECRETKEY-1234567890"


def settings_for(
    url: str, model: str | None = "fake-model", retries: int = 0, response_timeout: float = 60, **fields
) -> Settings:
    # tests never wait for the SDK's backoff unless they test it
    return Settings(
        backend="openai", base_url=url, model=model, max_retries=retries, response_timeout=response_timeout, **fields
    )


def backend_for(
    server: FakeServer, stream: bool = True, timeout: float = 30, key: str | None = None, retries: int = 0, **fields
) -> OpenAIBackend:
    return OpenAIBackend(
        settings_for(server.url, stream=stream, request_timeout=timeout, api_key=key, retries=retries, **fields), {}
    )


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
    usage = {
        "prompt_tokens": 50,
        "completion_tokens": 5,
        "total_tokens": 55,
        "prompt_tokens_details": {"cached_tokens": 32},
    }
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
    body = {
        "id": "x",
        "object": "chat.completion",
        "created": 1,
        "model": "m",
        "choices": [
            {
                "index": 0,
                "finish_reason": "tool_calls",
                "message": {
                    "role": "assistant",
                    "content": "",
                    "tool_calls": [
                        {
                            "id": "c1",
                            "type": "function",
                            "function": {"name": "get_weather", "arguments": {"city": "Oslo"}},
                        }
                    ],
                },
            }
        ],
        "usage": {"prompt_tokens": 10, "completion_tokens": 3, "total_tokens": 13},
    }
    with FakeServer() as server:
        server.add(reply_json(body))
        _, reply = complete(backend_for(server, stream=False))
        assert server.requests[0]["stream"] is False
    assert calls_of(reply) == [("get_weather", {"city": "Oslo"})]
    assert reply.usage.prompt_tokens == 10 and reply.usage.cached_tokens is None  # not sent: not reported


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
        _, reply = complete(backend_for(server, retries=1))
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
        settings = settings_for(server.url.replace("/v1", "/v2"))
        with pytest.raises(BackendError, match=r"/v2 has no OpenAI-compatible API there \(HTTP 404\)"):
            list(OpenAIBackend(settings, {}).complete(Request([], [])))


def test_persistent_server_error_after_retries():
    with FakeServer() as server:
        server.add(*[error(500, "slot unavailable")] * 2)
        message = failure(server, retries=1)
        assert len(server.requests) == 2
    assert message.endswith("server error (HTTP 500) after retries: slot unavailable (try again later)")


def test_connection_refused_names_the_url():
    server = FakeServer()
    url = server.url
    server._server.server_close()  # nothing listens there now
    settings = settings_for(url)
    with pytest.raises(BackendError, match=f"cannot connect to {url}"):
        list(OpenAIBackend(settings, {}).complete(Request([], [])))


def test_a_stream_cut_mid_answer_and_mid_tool_call():
    with FakeServer() as server:
        server.add(sse(text_stream("partial answer here", pieces=5), cut_after=3))
        assert "broke off mid-answer" in failure(server)
        server.add(sse(openai_calls([("get_weather", {"city": "Oslo"})], split=2), cut_after=4))
        assert "broke off mid-tool-call" in failure(server)


def test_a_server_that_never_answers_times_out():
    with FakeServer() as server:
        server.add(hang(10))
        settings = settings_for(server.url, request_timeout=0.5)
        with pytest.raises(BackendError, match=r"no answer from .* within 0.5 s"):
            list(OpenAIBackend(settings, {}).complete(Request([], [])))


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


# -- a reply counts only when the server says why it ended (a finish_reason) --------------------


def without_finish(chunks: list[dict]) -> list[dict]:
    return [c for c in chunks if not (c.get("choices") and c["choices"][0]["finish_reason"])]


def test_a_body_that_ends_cleanly_without_finish_reason_broke_off_mid_answer():
    with FakeServer() as server:
        server.add(sse(without_finish(text_stream("the first half of an answer", pieces=4)), done=False))
        message = failure(server)
    assert message == (
        f"the stream from {server.url} broke off mid-answer: it ended without a finish_reason (try again)"
    )


def test_done_alone_without_finish_reason_is_not_a_whole_reply():
    with FakeServer() as server:
        server.add(sse(without_finish(text_stream("half an answer"))))  # [DONE] is sent
        assert "broke off mid-answer: it ended without a finish_reason" in failure(server)


def marking_tool(plugin_dir, marker: Path) -> Path:
    """A plugin folder with `mark(city)`, which appends the city to `marker`: what ran, in order."""
    return plugin_dir(
        mark=f"def mark(city: str) -> str:\n    '''Mark.'''\n"
        f"    open({str(marker)!r}, 'a').write(city)\n    return 'marked'\n"
    )


def test_a_body_that_ends_after_the_first_of_two_calls_runs_none(cli, plugin_dir, tmp_path):
    marker = tmp_path / "ran.txt"
    folder = marking_tool(plugin_dir, marker)
    two = openai_calls([("mark", {"city": "Oslo"}), ("mark", {"city": "Lima"})])
    first_call_only = two[: 1 + 1 + len(json.dumps({"city": "Oslo"})) // 4 + 1]
    with FakeServer() as server:
        server.add(sse(first_call_only, done=False))
        done = cli("ask", "--base-url", server.url, "-m", "fake-model", "--tools", str(folder), "--yes", "mark both")
    assert done.returncode == 1
    assert "broke off mid-tool-call: it ended without a finish_reason" in done.stderr
    assert not marker.exists()


def test_a_connection_lost_after_the_finish_reason_keeps_the_whole_reply():
    chunks = text_stream("complete answer") + [
        chunk(usage={"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}, choices=False)
    ]
    with FakeServer() as server:
        server.add(sse(chunks, cut_after=len(chunks) - 1))  # the usage chunk and [DONE] never come
        _, reply = complete(backend_for(server))
    assert (reply.text, reply.finish_reason, reply.usage) == ("complete answer", "stop", None)


@pytest.mark.parametrize(
    "finish, calls, expected",
    [("length", [], "length"), ("stop", PARALLEL, "tool_calls"), ("content_filter", [], "stop"), ("eos", [], "stop")],
)
def test_finish_reason_is_always_one_of_three_words(finish, calls, expected):
    chunks = ollama_calls(calls) if calls else text_stream("words")
    chunks[-1]["choices"][0]["finish_reason"] = finish
    with FakeServer() as server:
        server.add(sse(chunks))
        _, reply = complete(backend_for(server))
    assert reply.finish_reason == expected


def test_a_whole_reply_without_finish_reason_is_stop():
    body = {
        "id": "x",
        "object": "chat.completion",
        "created": 1,
        "model": "m",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "fine"}}],
    }
    with FakeServer() as server:
        server.add(reply_json(body))
        _, reply = complete(backend_for(server, stream=False))
    assert (reply.text, reply.finish_reason) == ("fine", "stop")


# -- time: the longest silence, and the whole call ------------------------------------------------


@pytest.mark.parametrize(
    "script",
    [keepalive(20), sse(text_stream("a" * 100, pieces=100), delay=0.2)],
    ids=["keep-alive comments", "a token at a time"],
)
def test_a_trickling_stream_is_stopped_at_response_timeout(script):
    import time

    with FakeServer() as server:
        server.add(script)
        started = time.monotonic()
        message = failure(server, timeout=1, response_timeout=1.5)
    assert time.monotonic() - started < 5
    assert "broke off mid-answer: still unfinished after response_timeout 1.5 s" in message


def test_proxies_from_the_environment_are_used_and_bounded_too(monkeypatch):
    with FakeServer() as proxy:
        root = proxy.url.removesuffix("/v1")
        for name in ("HTTP_PROXY", "http_proxy", "ALL_PROXY"):
            monkeypatch.setenv(name, root)
        for name in ("NO_PROXY", "no_proxy"):
            monkeypatch.delenv(name, raising=False)
        proxy.add(sse(text_stream("through the proxy")), keepalive(20))
        backend = OpenAIBackend(settings_for("http://model.invalid/v1", request_timeout=1, response_timeout=1.5), {})
        assert complete(backend)[1].text == "through the proxy"
        with pytest.raises(BackendError, match="still unfinished after response_timeout 1.5 s"):
            complete(backend)
    assert len(proxy.requests) == 2


def test_silence_mid_stream_names_the_request_timeout():
    with FakeServer() as server:
        server.add(sse(text_stream("slow answer", pieces=2), delay=2))
        assert "broke off mid-answer: no data for 0.5 s" in failure(server, timeout=0.5)


# -- replies that are not what an OpenAI-compatible server sends ---------------------------------


@pytest.mark.parametrize("stream", [True, False], ids=["streamed", "no-stream"])
def test_an_html_page_is_not_a_reply(stream):
    with FakeServer() as server:
        server.add(raw(b"<html><body>Welcome to nginx!</body></html>", "text/html; charset=utf-8"))
        message = failure(server, stream=stream)
    assert message.startswith("the server answered with text/html, not an OpenAI-compatible reply")


@pytest.mark.parametrize("stream", [True, False], ids=["streamed", "no-stream"])
def test_an_error_body_with_status_200_says_the_servers_message(stream):
    with FakeServer() as server:
        server.add(reply_json({"error": {"message": f"model is loading for {SECRET}"}}))
        message = failure(server, stream=stream, key=SECRET)
    assert message.startswith(f"{server.url} sent an error: model is loading for ***")


def test_a_server_that_answers_whole_when_asked_to_stream_is_understood():
    body = {
        "id": "x",
        "object": "chat.completion",
        "created": 1,
        "model": "m",
        "choices": [
            {
                "index": 0,
                "finish_reason": "tool_calls",
                "message": {
                    "role": "assistant",
                    "content": None,
                    "tool_calls": [
                        {
                            "id": "c1",
                            "type": "function",
                            "function": {"name": "get_weather", "arguments": '{"city": "Oslo"}'},
                        }
                    ],
                },
            }
        ],
    }
    with FakeServer() as server:
        server.add(reply_json(body))
        _, reply = complete(backend_for(server, stream=True))
    assert calls_of(reply) == [("get_weather", {"city": "Oslo"})] and reply.finish_reason == "tool_calls"


def test_content_as_a_list_of_text_parts_is_text():
    parts = [
        chunk({"content": [{"type": "text", "text": "Hel"}]}),
        chunk({"content": [{"type": "text", "text": "lo"}]}),
        chunk(finish="stop"),
    ]
    body = {
        "id": "x",
        "object": "chat.completion",
        "created": 1,
        "model": "m",
        "choices": [
            {
                "index": 0,
                "finish_reason": "stop",
                "message": {"role": "assistant", "content": [{"type": "text", "text": "Hel"}, "lo"]},
            }
        ],
    }
    with FakeServer() as server:
        server.add(sse(parts), reply_json(body))
        assert complete(backend_for(server))[1].text == "Hello"
        assert complete(backend_for(server, stream=False))[1].text == "Hello"


@pytest.mark.parametrize("content", [42, {"type": "image_url"}, [{"type": "image_url", "image_url": {"url": "x"}}]])
def test_content_that_is_not_text_is_one_backend_error(content):
    with FakeServer() as server:
        server.add(sse([chunk({"content": content}), chunk(finish="stop")]))
        message = failure(server)
    assert message.startswith(("the server sent content that is not text", "the server sent a content part that"))


KEYS = [
    "choices",
    "delta",
    "content",
    "tool_calls",
    "index",
    "id",
    "function",
    "name",
    "arguments",
    "finish_reason",
    "usage",
    "prompt_tokens",
    "type",
    "text",
    "error",
    "message",
]
JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.sampled_from(["", "stop", "f", "{}", "\ud800"]),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from(KEYS), inner, max_size=4),
    max_leaves=12,
)


@pytest.fixture(scope="module")
def lenient_server():
    server = FakeServer()
    with server:
        yield server
        server.scripts.clear()


@settings(max_examples=60, deadline=None)
@given(chunks=st.lists(JSON, min_size=1, max_size=3), stream=st.booleans())
def test_any_json_from_a_hostile_server_is_a_reply_or_one_backend_error(lenient_server, chunks, stream):
    lenient_server.add(sse(chunks) if stream else reply_json(chunks[0]))
    backend = OpenAIBackend(settings_for(lenient_server.url, stream=stream), {})
    try:
        events = list(backend.complete(Request([{"role": "user", "content": "hi"}], TOOLS)))
    except BackendError:
        return
    reply = events[-1]
    assert isinstance(reply, Reply) and isinstance(reply.text, str)
    assert reply.finish_reason in ("stop", "tool_calls", "length")
    assert all(isinstance(c.name, str) and c.name and isinstance(c.arguments, str) for c in reply.tool_calls)
    json.dumps([reply.text, [c.message_part() for c in reply.tool_calls]], ensure_ascii=False).encode()


def test_a_chunk_that_is_not_json_broke_off():
    with FakeServer() as server:
        server.add(sse([chunk({"content": "Hi"}), "data: {not json\n\n", chunk(finish="stop")]))
        assert "broke off mid-answer: a chunk that is not JSON" in failure(server)


def test_json_nested_deeper_than_python_reads_is_a_server_fault_not_a_crash():
    deep = "[" * 200_000 + "]" * 200_000
    with FakeServer() as server:
        server.add(sse([chunk({"content": "Hi"}), f'data: {{"choices": {deep}}}\n\n', chunk(finish="stop")]))
        assert "broke off mid-answer: a chunk of JSON nested too deeply to read" in failure(server)
        server.add(raw(f'{{"choices": {deep}}}'.encode(), "application/json"))
        assert "answered with something that is not JSON" in failure(server, stream=False)


# -- errors: only the SDK's and the HTTP library's are caught, causes chained ---------------------


def test_toolchats_own_bugs_are_not_reported_as_a_broken_stream(monkeypatch):
    from toolchat.backends import accumulate

    def broken(self, delta):
        raise TypeError("a bug in toolchat")

    monkeypatch.setattr(accumulate.ToolCallAccumulator, "add", broken)
    with FakeServer() as server:
        server.add(sse(openai_calls([("get_weather", {"city": "Oslo"})])))
        with pytest.raises(TypeError, match="a bug in toolchat"):
            complete(backend_for(server))


def test_a_broken_stream_chains_its_cause_shown_with_toolchat_debug(cli):
    with FakeServer() as server:
        server.add(sse(text_stream("partial answer here", pieces=5), cut_after=3))
        with pytest.raises(BackendError) as info:
            complete(backend_for(server))
        assert info.value.__cause__ is not None
        server.add(sse(text_stream("partial answer here", pieces=5), cut_after=3))
        done = cli("ask", "--base-url", server.url, "-m", "m", "hi", env={"TOOLCHAT_DEBUG": "1"})
    assert done.returncode == 1
    assert "httpx2.RemoteProtocolError" in done.stderr and "The above exception was the direct cause" in done.stderr
    assert "broke off mid-answer: the connection closed" in done.stderr


def test_max_retries_zero_asks_once():
    with FakeServer() as server:
        server.add(error(503, "busy"))
        assert "HTTP 503" in failure(server, retries=0)
        assert len(server.requests) == 1


# -- text that is not UTF-8 ----------------------------------------------------------------------


def test_lone_surrogates_from_the_server_and_in_our_messages_never_crash():
    with FakeServer() as server:
        server.add(
            sse(
                [
                    chunk({"content": "caf\ud800!"}),
                    chunk(
                        {
                            "tool_calls": [
                                {
                                    "index": 0,
                                    "id": "c1",
                                    "type": "function",
                                    "function": {"name": "get_weather", "arguments": '{"city": "\udc00x"}'},
                                }
                            ]
                        }
                    ),
                    chunk(finish="tool_calls"),
                ]
            ),
            sse(text_stream("done")),
        )
        backend = backend_for(server)
        deltas, reply = complete(backend)
        assert reply.text == "caf\ufffd!" and "".join(deltas) == "caf\ufffd!"
        assert json.loads(reply.tool_calls[0].arguments) == {"city": "\ufffdx"}
        messages = [
            {"role": "user", "content": "latin-1 piped: caf\udce9"},
            {"role": "assistant", "content": reply.text, "tool_calls": [reply.tool_calls[0].message_part()]},
            {"role": "tool", "tool_call_id": "c1", "content": "files: r\udce9sum\udce9.txt"},
        ]
        list(backend.complete(Request(messages, TOOLS)))
        sent = server.requests[1]["messages"]
    assert sent[0]["content"] == "latin-1 piped: caf\ufffd"
    assert sent[2]["content"] == "files: r\ufffdsum\ufffd.txt"


# -- the key -------------------------------------------------------------------------------------


def test_a_key_with_a_trailing_newline_is_stripped_and_the_user_told_once():
    notes: list[str] = []
    with FakeServer() as server:
        server.add(sse(text_stream("ok")), sse(text_stream("ok")))
        backend = OpenAIBackend(settings_for(server.url), {"OPENAI_API_KEY": SECRET + "\n"}, notes.append)
        complete(backend)
        complete(backend)
        assert server.headers[0]["authorization"] == f"Bearer {SECRET}"
    assert len(notes) == 1 and "line break" in notes[0] and SECRET not in notes[0]


def test_a_key_with_a_line_break_inside_is_a_usage_error():
    with pytest.raises(UsageError, match="the API key holds spaces, line breaks"):
        OpenAIBackend(settings_for("http://127.0.0.1:9/v1"), {"OPENAI_API_KEY": "sk-one\nsk-two"})


@pytest.mark.parametrize("echo", [SECRET[:14] + "...", SECRET.upper(), "key=" + SECRET[5:20].lower()])
def test_a_server_echoing_part_of_the_key_in_any_case_is_redacted(echo):
    with FakeServer() as server:
        server.add(error(400, f"bad request for key {echo}"))
        message = failure(server, key=SECRET)
    assert "rejected the request (HTTP 400)" in message and "***" in message
    lowered = message.lower()
    assert not any(SECRET.lower()[i : i + 8] in lowered for i in range(len(SECRET) - 7))


# -- the protocol: model resolved at construction, describe, close -------------------------------


def test_with_a_base_url_and_no_model_the_first_served_model_is_chosen_at_start():
    with FakeServer(models=["served-first", "another"]) as server:
        backend = OpenAIBackend(settings_for(server.url, model=None), {})
        assert backend.model == "served-first"
        assert backend.describe() == f"openai · served-first · {server.url}"
        assert (backend.provider, backend.server_address, backend.server_port) == (
            "openai",
            "127.0.0.1",
            int(server.url.split(":")[2].split("/")[0]),
        )
        server.add(sse(text_stream("ok")))
        complete(backend)
        assert server.requests[0]["model"] == "served-first"
        backend.close()


def test_toolchat_models_neutralises_server_ids(cli):
    with FakeServer(models=["ok-model", "\x1b]0;TITLE\x07\x1b[31mred"]) as server:
        done = cli("models", "--base-url", server.url)
    assert done.returncode == 0 and "\x1b" not in done.stdout and "ok-model" in done.stdout


# -- the finish_reason rule, against a real server: llama-cpp-python's ---------------------------


def test_llama_cpp_pythons_server_ends_every_reply_with_a_finish_reason(llama_server):
    backend = OpenAIBackend(settings_for(llama_server, model=None, temperature=0), {})
    assert backend.model  # the first served model, chosen at start-up
    ask = [{"role": "user", "content": "What's the weather in Oslo?"}]
    cut = list(backend.complete(Request(ask, [], max_tokens=4)))[-1]
    assert cut.finish_reason == "length"
    forced = list(
        backend.complete(Request(ask, TOOLS, {"type": "function", "function": {"name": "get_weather"}}, max_tokens=32))
    )[-1]
    assert forced.finish_reason == "tool_calls" and forced.tool_calls[0].name == "get_weather"
    backend.close()


def test_with_a_base_url_and_no_model_the_banner_names_the_served_model(isolated_env, tmp_path):

    with FakeServer(models=["served-first", "another"]) as server:
        child = spawn("chat", "--base-url", server.url, env=isolated_env, cwd=tmp_path)
        try:
            child.expect("/help for commands")
            assert "served-first" in child.before
        finally:
            child.terminate(force=True)


def _tls_server(folder) -> tuple[object, list[str]]:
    """A loopback HTTPS server with a self-signed certificate (made with openssl) that records the
    requests that reach it: a client that verifies certificates never gets that far."""
    import shutil
    import ssl
    import subprocess
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed")
    key, cert = folder / "key.pem", folder / "cert.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            str(key),
            "-out",
            str(cert),
            "-days",
            "1",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
        ],
        check=True,
        capture_output=True,
    )
    reached: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            reached.append(self.path)
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(json.dumps({"choices": [{"message": {"content": "trusted"}}]}).encode())

        def log_message(self, *args) -> None:
            pass

    class Quiet(ThreadingHTTPServer):
        def handle_error(self, request, client_address) -> None:
            pass  # the client's refused handshake

    server = Quiet(("127.0.0.1", 0), Handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, reached


def test_a_redirect_to_an_https_server_whose_certificate_is_not_trusted_is_refused_and_said(tmp_path):
    # an http:// endpoint that redirects to https: the certificate is verified there, and its
    # failure is named as one (not "cannot connect")
    tls, reached = _tls_server(tmp_path)
    try:
        port = tls.server_address[1]
        with FakeServer() as server:
            server.add(reply_json({}, 307, Location=f"https://127.0.0.1:{port}/v1/chat/completions"))
            with pytest.raises(BackendError) as caught:
                complete(backend_for(server, stream=False))
            assert "cannot verify the TLS certificate" in str(caught.value)
            assert "SSL_CERT_FILE" in (caught.value.hint or "")
        assert reached == []
    finally:
        tls.shutdown()
        tls.server_close()


def test_a_redirect_to_https_trusts_the_certificates_ssl_cert_file_names(tmp_path, monkeypatch):
    for name in ("HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    tls, reached = _tls_server(tmp_path)
    monkeypatch.setenv("SSL_CERT_FILE", str(tmp_path / "cert.pem"))
    try:
        port = tls.server_address[1]
        with FakeServer() as server:
            server.add(reply_json({}, 307, Location=f"https://127.0.0.1:{port}/v1/chat/completions"))
            reply = complete(backend_for(server, stream=False))
        assert reached == ["/v1/chat/completions"]
        assert "trusted" in str(reply)
    finally:
        tls.shutdown()
        tls.server_close()


def test_a_call_cut_at_max_tokens_never_runs_nor_goes_back_and_the_whole_ones_do(cli, plugin_dir, tmp_path):
    # llama-server cut at max_tokens mid-call sends the call, arguments cut ('{"city":'), with
    # finish_reason length, and refuses (HTTP 500) a conversation that carries such arguments back
    marker = tmp_path / "ran.txt"
    folder = marking_tool(plugin_dir, marker)
    two = openai_calls([("mark", {"city": "Oslo"}), ("mark", {"city": "Lima"})])
    cut = [*two[:-3], chunk(finish="length")]  # the second call's arguments: '{"city":'
    with FakeServer() as server:
        only_cut = [*two[:3], chunk(finish="length")]  # the first call's arguments: '{"ci'
        server.add(sse(cut), sse(text_stream("Marked Oslo.")), sse(only_cut))
        base = ("ask", "--base-url", server.url, "-m", "fake-model", "--tools", str(folder), "--yes")
        done = cli(*base, "--max-tokens", "30", "mark both")
        alone = cli(*base, "--max-tokens", "9", "mark one")
    assert done.returncode == 0, done.stderr
    assert done.stdout == "Marked Oslo.\n", done.stderr
    assert marker.read_text() == "Oslo"  # the whole call ran, the cut one not
    (sent,) = [m for m in server.requests[1]["messages"] if m["role"] == "assistant"]
    assert [json.loads(c["function"]["arguments"]) for c in sent["tool_calls"]] == [{"city": "Oslo"}]
    assert alone.returncode == 0 and marker.read_text() == "Oslo"  # a reply with only a cut call: none runs
    assert "the answer was cut at max_tokens 9" in alone.stderr and len(server.requests) == 3


def test_a_cut_call_nested_deep_is_dropped_not_a_recursion_error():
    from toolchat.backends.base import Reply, ToolCall

    deep = '{"a": ' * 100_000
    cut = Reply("", [ToolCall("c1", "mark", deep), ToolCall("c2", "mark", '{"city": "Oslo"}')], finish_reason="length")
    assert [c.id for c in cut.tool_calls] == ["c2"]
