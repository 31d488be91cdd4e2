"""`toolchat serve` at the HTTP level: SSE framing read raw, OpenAI-shaped errors for every bad
request, the API key, upstream failures, and clients that go away."""

from __future__ import annotations

import http.client
import json
import socket
import time
from pathlib import Path

import pytest

from tests.support.fakeserver import error, hang, openai_calls, sse, text_stream
from tests.support.ports import free_port
from tests.support.serving import gone, post, raw_post, send_raw, sse_events

ANSWER = "It's sunny in Singapore and 20C."
ASK = {"model": "toolchat", "messages": [{"role": "user", "content": "Weather in Singapore?"}]}
SLOW_TOOL = '''
import os, time

def wait_here(marker: str) -> str:
    """Write this process's id to `marker`, then wait a minute."""
    with open(marker, "w") as f:
        f.write(str(os.getpid()))
    time.sleep(60)
    return "done"
'''


def test_sse_framing_on_the_wire(upstream, serve):
    upstream.add(sse(text_stream(ANSWER, usage={"prompt_tokens": 5, "completion_tokens": 3})))
    response = raw_post(serve(), {**ASK, "stream": True, "stream_options": {"include_usage": True}})
    assert response.status == 200
    assert response.getheader("Content-Type").startswith("text/event-stream")
    events = sse_events(response.read())
    assert events[-1] == "[DONE]"
    chunks = [json.loads(e) for e in events[:-1]]
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    assert "".join(c["choices"][0]["delta"].get("content", "") for c in chunks if c["choices"]) == ANSWER
    assert [c["choices"][0]["finish_reason"] for c in chunks if c["choices"]][-1] == "stop"
    assert all(c["object"] == "chat.completion.chunk" for c in chunks)
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["total_tokens"] == 8
    assert all(c["usage"] is None for c in chunks[:-1])


def test_broken_unicode_from_the_model_reaches_the_client_as_replacement_characters(upstream, serve):
    upstream.add(sse(text_stream("caf\udce9 ok", pieces=1)), sse(text_stream("caf\udce9 ok", pieces=1)))
    served = serve()
    events = sse_events(raw_post(served, {**ASK, "stream": True}).read())
    assert events[-1] == "[DONE]"
    assert (
        "".join(
            json.loads(e)["choices"][0]["delta"].get("content", "") for e in events[:-1] if json.loads(e)["choices"]
        )
        == "caf\ufffd ok"
    )
    status, _, raw = post(f"{served.url}/chat/completions", ASK)
    assert status == 200 and json.loads(raw)["choices"][0]["message"]["content"] == "caf\ufffd ok"


def test_bad_requests_are_answered_in_openai_error_shape(upstream, serve):
    served = serve()
    cases = [
        (b"{not json", 400, "invalid_json"),
        (b"[" * 100_000, 400, "invalid_json"),  # deeper than Python's recursion limit
        (json.dumps({"model": "toolchat", "messages": []}).encode(), 400, None),
        (json.dumps({"messages": [{"role": "wizard", "content": "hi"}]}).encode(), 400, None),
        (json.dumps({**ASK, "temperature": "hot"}).encode(), 400, None),
        (json.dumps({**ASK, "model": "gpt-9"}).encode(), 404, "model_not_found"),
        (json.dumps({**ASK, "tool_choice": {"type": "function", "function": {"name": "nope"}}}).encode(), 400, None),
    ]
    for body, status, code in cases:
        got, _, raw = post(f"{served.url}/chat/completions", body)
        error_body = json.loads(raw)["error"]
        assert got == status, (body, raw)
        assert error_body["message"] and error_body["type"]
        if code:
            assert error_body["code"] == code
    got, _, raw = post(f"{served.url}/nowhere", ASK)
    assert got == 404 and json.loads(raw)["error"]["code"] == "not_found"
    assert upstream.requests == []


def test_an_oversized_body_is_refused_before_it_is_read(upstream, serve):
    served = serve()
    connection = http.client.HTTPConnection("127.0.0.1", served.port, timeout=30)
    connection.putrequest("POST", "/v1/chat/completions")
    connection.putheader("Content-Length", str(50 * 1024 * 1024))
    connection.putheader("Content-Type", "application/json")
    connection.endheaders(b'{"messages": [')
    response = connection.getresponse()
    assert response.status == 413 and json.loads(response.read())["error"]["code"] == "body_too_large"
    # without a length, counted as it arrives
    connection = http.client.HTTPConnection("127.0.0.1", served.port, timeout=30)
    big = json.dumps({**ASK, "messages": [{"role": "user", "content": "x" * (11 * 1024 * 1024)}]}).encode()
    connection.request(
        "POST",
        "/v1/chat/completions",
        body=iter([big[i : i + 65536] for i in range(0, len(big), 65536)]),
        headers={"Content-Type": "application/json"},
        encode_chunked=True,
    )
    assert connection.getresponse().status == 413
    assert upstream.requests == []


def test_models_lists_each_profile_the_default_first(upstream, serve, tmp_path, cli):
    (tmp_path / "toolchat.yaml").write_text(
        f"profile: fast\nprofiles:\n  careful:\n    temperature: 0.1\n  fast:\n    base_url: {upstream.url}\n"
        "    temperature: 0.9\n"
    )
    assert cli("config", "trust", str(tmp_path / "toolchat.yaml"), input="y\n").returncode == 0
    upstream.add(sse(text_stream("careful answer")))
    served = serve()
    with __import__("urllib.request").request.urlopen(f"{served.url}/models") as response:
        ids = [m["id"] for m in json.loads(response.read())["data"]]
    assert ids == ["fast", "careful"]
    status, _, _ = post(f"{served.url}/chat/completions", {**ASK, "model": "careful"})
    assert status == 200 and upstream.requests[0]["temperature"] == 0.1


def test_an_untrusted_project_config_is_not_served(upstream, isolated_env, tmp_path, cli):
    (tmp_path / "toolchat.yaml").write_text("tools:\n  allow: [get_weather]\n")
    done = cli("serve", "--base-url", upstream.url, "--port", str(free_port()))
    assert done.returncode == 2 and "is not trusted yet" in done.stderr


def test_a_port_in_use_is_one_line_and_exit_2(cli, upstream):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        done = cli("serve", "--port", str(taken.getsockname()[1]), "--base-url", upstream.url)
    assert done.returncode == 2 and "cannot listen on 127.0.0.1" in done.stderr and "--port" in done.stderr
    assert "serving on" not in done.stderr and "Traceback" not in done.stderr


def test_any_address_but_loopback_needs_an_api_key(cli, upstream):
    done = cli("serve", "--host", "0.0.0.0", "--base-url", upstream.url)
    assert done.returncode == 2 and "needs an API key" in done.stderr and "--api-key-env" in done.stderr


def test_with_an_api_key_every_route_but_health_needs_it(upstream, serve):
    key = "k-" + "7" * 30
    upstream.add(sse(text_stream(ANSWER)))
    served = serve("--api-key-env", "SERVE_KEY", env={"SERVE_KEY": key})
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": key}):
        status, _, raw = post(f"{served.url}/chat/completions", ASK, headers)
        assert status == 401 and json.loads(raw)["error"]["code"] == "invalid_api_key"
        assert key not in raw.decode()
    status, _, raw = post(f"{served.url}/chat/completions", ASK, {"Authorization": f"Bearer {key}"})
    assert status == 200 and json.loads(raw)["choices"][0]["message"]["content"] == ANSWER
    assert key not in served.log()


def test_a_web_page_cannot_make_a_keyless_server_run_anything(upstream, serve):
    upstream.add(sse(text_stream(ANSWER)))
    served = serve("--yes")
    refused = [
        ({"Host": "evil.example"}, 403, "forbidden_host"),  # DNS rebinding: the page's own name
        ({"Host": f"evil.example:{served.port}"}, 403, "forbidden_host"),
        ({"Origin": "https://evil.example"}, 403, "forbidden_origin"),  # a cross-site POST
        ({"Origin": "null"}, 403, "forbidden_origin"),
        ({"Content-Type": "text/plain"}, 415, "unsupported_media_type"),  # a form or no-preflight fetch
    ]
    for headers, status, code in refused:
        response = raw_post(served, ASK, headers)
        assert (response.status, json.loads(response.read())["error"]["code"]) == (status, code), headers
    response = raw_post(served, ASK, {"Origin": f"http://localhost:{served.port}", "Host": "localhost"})
    assert response.status == 200 and json.loads(response.read())["choices"][0]["message"]["content"] == ANSWER


def test_an_upstream_refusing_its_key_is_a_502_without_the_key_or_address(upstream, serve):
    secret = "sk-upstream-" + "s3cr3t" * 5
    upstream.add(error(401, f"Incorrect API key provided: {secret}"))
    served = serve(env={"OPENAI_API_KEY": secret})
    status, _, raw = post(f"{served.url}/chat/completions", ASK)
    body = json.loads(raw)["error"]
    assert status == 502 and body["code"] == "upstream_failed" and "refused the API key" in body["message"]
    assert secret[:12] not in raw.decode() and upstream.url not in raw.decode()


def test_an_upstream_that_is_down_is_a_502_streamed_or_not(serve):
    served = serve(base_url=f"http://127.0.0.1:{free_port()}/v1")
    for stream in (False, True):
        status, _, raw = post(f"{served.url}/chat/completions", {**ASK, "stream": stream})
        assert status == 502 and "cannot connect to the model server" in json.loads(raw)["error"]["message"]


def test_a_stream_broken_mid_answer_ends_with_an_error_event(upstream, serve):
    upstream.add(sse(text_stream(ANSWER, pieces=4), cut_after=3))
    response = raw_post(serve(), {**ASK, "stream": True})
    assert response.status == 200
    events = sse_events(response.read())
    assert "[DONE]" not in events
    last = json.loads(events[-1])
    assert last["error"]["code"] == "upstream_failed" and "broke off mid-answer" in last["error"]["message"]
    assert json.loads(events[1])["choices"][0]["delta"]["content"]


def _wait_for(path: Path, seconds: float = 20) -> int:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if path.exists() and path.read_text():
            return int(path.read_text())
        time.sleep(0.05)
    raise AssertionError(f"{path} was not written")


@pytest.mark.parametrize("stream", [True, False])
def test_a_client_that_disconnects_cancels_its_request_and_stops_its_tool(
    upstream, serve, plugin_dir, tmp_path, stream
):
    marker = tmp_path / "tool.pid"
    upstream.add(sse(openai_calls([("wait_here", {"marker": str(marker)})])))
    served = serve("--tools", str(plugin_dir(slow=SLOW_TOOL)), "--allow", "wait_here")
    sock = send_raw(served, {**ASK, "stream": stream})
    pid = _wait_for(marker)
    sock.close()
    assert gone(pid), "the tool kept running after its client went away"
    deadline = time.monotonic() + 5
    while json.loads(__import__("urllib.request").request.urlopen(f"{served.root}/health").read())["running"]:
        assert time.monotonic() < deadline, "the request kept running"
        time.sleep(0.05)
    assert len(upstream.requests) == 1  # the model was not asked again


def test_the_time_limit_ends_a_request_and_its_tool(upstream, serve, plugin_dir, tmp_path):
    marker = tmp_path / "tool.pid"
    upstream.add(sse(openai_calls([("wait_here", {"marker": str(marker)})])))
    served = serve("--tools", str(plugin_dir(slow=SLOW_TOOL)), "--allow", "wait_here", "--time-limit", "2")
    started = time.monotonic()
    status, _, raw = post(f"{served.url}/chat/completions", ASK)
    assert status == 504 and json.loads(raw)["error"]["code"] == "time_limit"
    assert time.monotonic() - started < 10
    assert gone(int(marker.read_text()))


def test_stopping_the_server_stops_the_tools_its_requests_run(upstream, serve, plugin_dir, tmp_path):
    marker = tmp_path / "tool.pid"
    upstream.add(sse(openai_calls([("wait_here", {"marker": str(marker)})])))
    served = serve("--tools", str(plugin_dir(slow=SLOW_TOOL)), "--allow", "wait_here")
    sock = send_raw(served, {**ASK, "stream": True})
    pid = _wait_for(marker)
    started = time.monotonic()
    served.process.terminate()  # SIGTERM, as a service manager stops it
    assert served.process.wait(20) == 0
    assert time.monotonic() - started < 15  # up to 5 s for requests to finish, then they are cancelled
    assert gone(pid), "a tool outlived the server"
    sock.close()
    assert "Traceback" not in served.log()


def test_a_request_still_waiting_for_the_model_when_the_server_stops_is_answered_503(upstream, serve):
    import threading

    upstream.add(hang(12))
    served = serve()
    answers: list[tuple[int, bytes]] = []
    asking = threading.Thread(target=lambda: answers.append(post(f"{served.url}/chat/completions", ASK)[::2]))
    asking.start()
    deadline = time.monotonic() + 10
    while not upstream.requests and time.monotonic() < deadline:
        time.sleep(0.05)
    served.process.terminate()
    assert served.process.wait(20) == 0
    asking.join(20)
    status, body = answers[0]
    assert status == 503 and json.loads(body)["error"]["code"] == "shutting_down"
    log = served.log()
    assert "stopping 1 request(s) still running after 5 s" in log
    assert "Traceback" not in log and "ERROR" not in log


def test_an_upstream_rate_limit_is_a_429_and_its_silence_a_504(upstream, serve, isolated_env):
    config = Path(isolated_env["TOOLCHAT_CONFIG_DIR"]) / "config.yaml"
    config.write_text("max_retries: 0\nrequest_timeout: 1\n")
    upstream.add(error(429, "slow down"), hang(3))
    served = serve()
    status, headers, raw = post(f"{served.url}/chat/completions", ASK)
    assert status == 429 and json.loads(raw)["error"]["code"] == "rate_limited" and headers["Retry-After"]
    status, _, raw = post(f"{served.url}/chat/completions", ASK)
    assert status == 504 and json.loads(raw)["error"]["code"] == "upstream_timeout"
