"""Server errors that say the request itself is at fault, and calls whose arguments are not JSON,
against real loopback servers: what is retried, what is said at once, and what goes back."""

from __future__ import annotations

import openai
import pytest

from tests.support.fakeserver import FakeServer, error, raw, raw_call, reply_json, sse, text_stream
from tests.support.recorder import RecordingProxy
from toolchat.backends.base import Reply, Request
from toolchat.backends.openai import OpenAIBackend
from toolchat.backends.openai_wire import parseable_calls
from toolchat.backends.prompt import JinjaTemplate
from toolchat.config.settings import Settings
from toolchat.errors import BackendError

SECRET = "sk-test-SECRETKEY-1234567890"
# what llama-server answers a conversation carrying back a call whose arguments are not JSON
LLAMA_SERVER_REFUSAL = (
    "Failed to parse tool call arguments as JSON: [json.exception.parse_error.101] parse error at line 1,\n"
    "column 10: syntax error while parsing value - invalid literal; last read: '{\"city\": P'"
)

REFUSALS = [
    {"error": {"code": 500, "message": LLAMA_SERVER_REFUSAL, "type": "server_error"}},
    {"error": {"code": 500, "message": "tools param requires --jinja flag", "type": "server_error"}},
    {"error": {"code": 500, "message": "Conversation roles must alternate user/assistant/user/assistant/..."}},
    {"error": {"message": "[json.exception.type_error.302] type must be string, but is null"}},
    {"error": "Unsupported param: tools"},  # the string form (Ollama, LM Studio)
    {"error": {"message": "bad", "type": "invalid_request_error"}},  # typed as the request's fault
]
WEATHER = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "The weather in a city.",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
        },
    }
]
TRANSIENT = ["oops", "failed to find free space in the KV cache", "slot unavailable", "CUDA error: out of memory"]
PROXY_PAGE = b"<html><body><h1>502 Bad Gateway</h1>Invalid response from the upstream server</body></html>"


def backend_for(server: FakeServer, retries: int) -> OpenAIBackend:
    settings = Settings(backend="openai", base_url=server.url, model="m", max_retries=retries, api_key=SECRET)
    return OpenAIBackend(settings, {})


def failure(server: FakeServer, retries: int = 2) -> str:
    with pytest.raises(BackendError) as info:
        list(backend_for(server, retries).complete(Request([{"role": "user", "content": "hi"}], [])))
    return str(info.value)


@pytest.mark.parametrize("body", REFUSALS, ids=lambda body: str(body)[:40])
def test_a_500_refusing_the_request_itself_is_asked_once_and_said_at_once(body):
    with FakeServer() as server:
        server.add(reply_json(body, 500))
        message = failure(server, retries=2)
        assert len(server.requests) == 1  # the same request would be refused again: never retried
    assert message.startswith(f"{server.url} refused the request (HTTP 500): ")
    assert "after retries" not in message and "try again" not in message


@pytest.mark.parametrize("said", TRANSIENT)
def test_any_other_500_is_still_retried(said):
    with FakeServer() as server:
        server.add(error(500, said), sse(text_stream("after retry")))
        events = list(backend_for(server, retries=1).complete(Request([{"role": "user", "content": "hi"}], [])))
        assert events[-1].text == "after retry" and len(server.requests) == 2


# a gateway's or a busy server's own JSON, in refusal words: 502, 503 and 504 say the server (or the
# way to it) is not there now, whatever the words, and a retry may find it
UNAVAILABLE = [
    (503, {"error": {"message": "model is loading: invalid state, must be ready", "type": "server_error"}}),
    (502, {"error": {"message": "upstream returned an invalid response"}}),
    (504, {"error": {"message": "upstream timed out", "type": "invalid_request_error"}}),
]


@pytest.mark.parametrize(("status", "body"), UNAVAILABLE, ids=lambda value: str(value)[:30])
def test_a_gateway_or_unavailable_status_is_retried_whatever_its_json_says(status, body):
    with FakeServer() as server:
        server.add(reply_json(body, status), sse(text_stream("after retry")))
        events = list(backend_for(server, retries=1).complete(Request([{"role": "user", "content": "hi"}], [])))
        assert events[-1].text == "after retry" and len(server.requests) == 2


def test_a_proxys_page_that_is_not_json_is_retried_whatever_it_says():
    with FakeServer() as server:
        server.add(raw(PROXY_PAGE, "text/html", status=502), sse(text_stream("after retry")))
        events = list(backend_for(server, retries=1).complete(Request([{"role": "user", "content": "hi"}], [])))
        assert events[-1].text == "after retry" and len(server.requests) == 2


def test_the_refusal_is_one_line_with_the_servers_message_and_never_the_key(run_cli, server):
    server.add(reply_json({"error": {"code": 500, "message": f"{LLAMA_SERVER_REFUSAL} (key {SECRET})"}}, 500))
    done = run_cli("ask", "--base-url", server.url, "hello", env={"OPENAI_API_KEY": SECRET})
    assert done.returncode == 1 and len(server.requests) == 1
    (line,) = done.stderr.strip().splitlines()
    assert line.startswith(f"toolchat: error: {server.url} refused the request (HTTP 500): Failed to parse tool call")
    assert "parse error at line 1, column 10" in line  # the server's line break is a space
    assert SECRET not in line and "(key ***)" in line
    assert "try again later" not in line


def test_the_jinja_refusal_keeps_its_hint():
    with FakeServer() as server:
        server.add(error(500, "tools param requires --jinja flag"))
        message = failure(server)
        assert len(server.requests) == 1
    assert message.endswith("tools param requires --jinja flag (start llama-server with --jinja to use tools)")


# -- calls whose arguments are not JSON ------------------------------------------------------------


def test_a_call_whose_arguments_are_not_json_is_answered_and_goes_back_as_an_empty_object(run_cli, server):
    server.add(sse(raw_call("get_weather", '{"city": Paris}')), sse(text_stream("Sorry, Paris then.")))
    done = run_cli("ask", "--base-url", server.url, "--allow", "get_weather", "weather?")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "Sorry, Paris then."
    *_, sent, answer = server.requests[1]["messages"]
    assert sent["tool_calls"][0]["function"]["arguments"] == "{}"  # what every server parses back
    assert answer["role"] == "tool" and answer["tool_call_id"] == sent["tool_calls"][0]["id"]
    assert answer["content"].startswith("Error: invalid arguments for get_weather: arguments are not valid JSON")
    assert '(Expecting value at char 9): {"city": Paris}' in answer["content"]  # the model reads what it wrote


@pytest.mark.parametrize("arguments", ['{"city": NaN}', '{"city": "Paris", "days": Infinity}', '{"days": 1e999}'])
def test_arguments_python_reads_but_json_has_not_are_answered_and_go_back_as_an_empty_object(
    run_cli, server, arguments
):
    """NaN, Infinity and 1e999 are no JSON: a strict server (llama-server's nlohmann) would refuse
    every request that carries the call back, the rest of the conversation long."""
    server.add(sse(raw_call("get_weather", arguments)), sse(text_stream("Sorry.")))
    done = run_cli("ask", "--base-url", server.url, "--allow", "get_weather", "weather?")
    assert done.returncode == 0, done.stderr
    *_, sent, answer = server.requests[1]["messages"]
    assert sent["tool_calls"][0]["function"]["arguments"] == "{}"
    assert answer["content"].startswith("Error: invalid arguments for get_weather: arguments are not valid JSON")
    assert arguments in answer["content"]  # the model reads what it wrote


def test_only_arguments_that_are_not_a_json_object_are_replaced():
    good = {"id": "a", "type": "function", "function": {"name": "f", "arguments": '{"x": 1}'}}
    messages = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "", "tool_calls": [good]}]
    assert parseable_calls(messages) is messages  # nothing to mend: nothing copied

    def sent(arguments: object) -> object:
        call = {"id": "b", "type": "function", "function": {"name": "f", "arguments": arguments}}
        message = {"role": "assistant", "content": "", "tool_calls": [good, call]}
        (out,) = parseable_calls([message])
        assert out["tool_calls"][0] is good and message["tool_calls"][1]["function"]["arguments"] is arguments
        return out["tool_calls"][1]["function"]["arguments"]

    assert sent("") == "{}"  # llama-server refuses "" too
    assert sent('{"x": NaN}') == sent('{"x": 1e999}') == "{}"  # Python reads them; JSON has neither
    assert sent('{"city": Paris}') == "{}"
    assert sent('"a string"') == sent("[1, 2]") == sent("null") == "{}"  # parsed, but no template reads them
    assert sent("{" * 100_000) == sent('{"a": ' + "[" * 100_000 + "]" * 100_000 + "}") == "{}"
    assert sent({"city": "Zürich"}) == '{"city": "Zürich"}'  # a client's object, as JSON
    assert sent(None) == "{}"


def test_llama_server_takes_back_a_call_whose_arguments_were_not_json(thinking_llama_server):
    # llama-server parses every call's arguments it is sent: '{"city": Paris}' going back was refused,
    # HTTP 500 "Failed to parse tool call arguments as JSON", and the turn ended
    messages = [
        {"role": "user", "content": "What is the weather in Paris?"},
        {"role": "assistant", "content": "", "tool_calls": [parts("call_1", '{"city": Paris}')]},
        {"role": "tool", "tool_call_id": "call_1", "content": "Error: invalid arguments for get_weather: ..."},
    ]
    with RecordingProxy(thinking_llama_server) as proxy:
        settings = Settings(backend="openai", base_url=proxy.url, model="m", max_retries=0)
        events = list(OpenAIBackend(settings, {}).complete(Request(messages, WEATHER, max_tokens=8, temperature=0)))
        (post,) = proxy.posts()
    assert post.status == 200 and isinstance(events[-1], Reply)
    assert post.body["messages"][1]["tool_calls"][0]["function"]["arguments"] == "{}"


def parts(call_id: str, arguments: str) -> dict:
    return {"id": call_id, "type": "function", "function": {"name": "get_weather", "arguments": arguments}}


def test_a_refusal_by_llama_server_itself_is_asked_once(thinking_llama_server):
    # a text-only model refuses an image with HTTP 500 every time it is sent one
    image = {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAAB"}}
    messages = [{"role": "user", "content": [{"type": "text", "text": "What is this?"}, image]}]
    with RecordingProxy(thinking_llama_server) as proxy:
        settings = Settings(backend="openai", base_url=proxy.url, model="m", max_retries=2)
        with pytest.raises(BackendError) as info:
            list(OpenAIBackend(settings, {}).complete(Request(messages, [], max_tokens=8)))
        posts = proxy.posts()
    assert [post.status for post in posts] == [500]  # once: the SDK's two retries would be refused alike
    assert str(info.value).startswith(f"{proxy.url} refused the request (HTTP 500): ")
    assert "not supported" in str(info.value) and "try again" not in str(info.value)


def test_serve_passes_a_refusal_on_as_a_400_its_client_does_not_retry(upstream, serve):
    upstream.add(
        *[reply_json({"error": {"code": 500, "message": LLAMA_SERVER_REFUSAL, "type": "server_error"}}, 500)] * 2
    )
    served = serve()
    sdk = openai.OpenAI(base_url=served.url, api_key="unused", max_retries=2, timeout=30)  # the SDK's default
    for stream in (False, True):
        with pytest.raises(openai.BadRequestError) as caught:
            sdk.chat.completions.create(model="toolchat", messages=[{"role": "user", "content": "hi"}], stream=stream)
        assert caught.value.code == "upstream_rejected"
        assert "refused the request (HTTP 500): Failed to parse tool call arguments" in caught.value.message
    assert len(upstream.requests) == 2  # one a request: neither serve nor its client asked again


def test_a_serve_clients_call_with_arguments_that_are_not_json_goes_upstream_as_an_object(upstream, serve):
    upstream.add(sse(text_stream("ok")))
    calls = [parts("c1", '{"city": Paris}'), {**parts("c2", ""), "function": {"name": "f", "arguments": {"a": 1}}}]
    messages = [
        {"role": "user", "content": "Weather in Paris?"},
        {"role": "assistant", "content": "", "tool_calls": calls},
        {"role": "tool", "tool_call_id": "c1", "content": "invalid"},
        {"role": "tool", "tool_call_id": "c2", "content": "fine"},
    ]
    sdk = openai.OpenAI(base_url=serve().url, api_key="unused", max_retries=0, timeout=30)
    answer = sdk.chat.completions.create(model="toolchat", messages=messages)
    assert answer.choices[0].message.content == "ok"
    sent = upstream.requests[0]["messages"][1]["tool_calls"]
    assert [call["function"]["arguments"] for call in sent] == ["{}", '{"a": 1}']


def test_a_local_template_that_iterates_the_arguments_renders_a_call_whose_arguments_were_not_json():
    # as Qwen3-Coder's template does (`arguments|items`): a string there was a TypeError, not a prompt
    coder_like = (
        "{% for m in messages %}{% for c in m.tool_calls or [] %}<function={{ c.function.name }}>"
        "{% for name, value in c.function.arguments|items %}<parameter={{ name }}>{{ value }}</parameter>{% endfor %}"
        "</function>{% endfor %}{% endfor %}"
    )
    template = JinjaTemplate(coder_like, "", "")

    def rendered(arguments: str) -> str:
        return template.render([{"role": "assistant", "content": "", "tool_calls": [parts("c1", arguments)]}])

    assert rendered('{"city": "Paris"}') == "<function=get_weather><parameter=city>Paris</parameter></function>"
    for arguments in ('{"city": Paris}', "[1, 2]", '"Paris"', "", '{"a": ' + "[" * 100_000 + "]" * 100_000 + "}"):
        assert rendered(arguments) == "<function=get_weather></function>"
