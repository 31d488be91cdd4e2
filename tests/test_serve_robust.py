"""`toolchat serve` under requests a clumsy or hostile client sends, each written on a raw socket:
every one is answered in OpenAI's error shape (a 4xx), never a 500, a plain-text page or a
traceback in the server's log."""

from __future__ import annotations

import json
import socket
import time

from tests.support.fakeserver import sse, text_stream
from tests.support.serving import Served, raw_post

ASK = {"model": "toolchat", "messages": [{"role": "user", "content": "Weather in Singapore?"}]}


def raw_request(served: Served, body: bytes, headers: bytes = b"") -> tuple[int, dict]:
    """`body` POSTed on a bare socket; the status and the JSON error body it is answered with."""
    with socket.create_connection(("127.0.0.1", served.port), timeout=30) as sock:
        sock.sendall(
            b"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            b"Connection: close\r\n%sContent-Length: %d\r\n\r\n%s" % (headers, len(body), body)
        )
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    head, _, payload = answer.partition(b"\r\n\r\n")
    assert b"content-type: application/json" in head.lower(), answer[:500]
    return int(head.split()[1]), json.loads(payload)


def nested(depth: int) -> bytes:
    """ASK with a client tool whose schema holds lists `depth` deep (the request passes it on)."""
    schema = b'{"type": "object", "properties": {"x": {"enum": ' + b"[" * depth + b"]" * depth + b"}}}"
    tool = b'{"type": "function", "function": {"name": "deep", "parameters": ' + schema + b"}}"
    return json.dumps(ASK)[:-1].encode() + b', "tools": [' + tool + b"]}"


def test_a_temperature_that_is_not_a_finite_number_is_a_400(upstream, serve):
    served = serve()
    for value in (b"NaN", b"Infinity", b"-Infinity"):
        body = json.dumps(ASK)[:-1].encode() + b', "temperature": ' + value + b"}"
        status, error = raw_request(served, body)
        assert (status, error["error"]["code"]) == (400, "invalid_json"), (value, error)
        assert value.decode() in error["error"]["message"]
    assert upstream.requests == []
    assert "Traceback" not in served.log()


def test_a_body_nested_deep_is_a_400_at_every_depth(upstream, serve):
    served = serve()
    for depth in (500, 700, 900, 980, 990, 5000):
        status, error = raw_request(served, nested(depth))
        assert (status, error["error"]["code"]) == (400, "invalid_json"), (depth, error)
    assert upstream.requests == []
    assert "Traceback" not in served.log()


def test_a_body_nested_within_reason_is_served(upstream, serve):
    upstream.add(sse(text_stream("fine")))
    response = raw_post(serve(), {**ASK, "metadata": [[[[{"a": [1]}]]]]})
    assert response.status == 200 and json.loads(response.read())["choices"][0]["message"]["content"] == "fine"


def test_an_origin_that_is_not_a_url_is_refused_in_openai_shape(upstream, serve):
    served = serve()
    for origin in (b"http://[", b"http://[::1", b"http://]", b"http://127.0.0.1:99999", b"::::"):
        status, error = raw_request(served, json.dumps(ASK).encode(), b"Origin: " + origin + b"\r\n")
        assert (status, error["error"]["code"]) == (403, "forbidden_origin"), (origin, error)
    assert upstream.requests == []
    assert "Traceback" not in served.log()


def test_a_client_that_disconnects_mid_body_is_one_line_in_the_log(upstream, serve):
    served = serve()
    with socket.create_connection(("127.0.0.1", served.port), timeout=30) as sock:
        sock.sendall(
            b"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            b'Content-Length: 1000\r\n\r\n{"messages": ['
        )
        time.sleep(0.3)
    deadline = time.monotonic() + 10
    while "went away" not in served.log():
        assert time.monotonic() < deadline, served.log()
        time.sleep(0.05)
    time.sleep(0.3)
    log = served.log()
    assert "Traceback" not in log and "ClientDisconnect" not in log, log
    assert len([line for line in log.splitlines() if "went away" in line]) == 1, log
    assert upstream.requests == []


def test_a_tool_choice_of_the_wrong_inner_shape_is_a_400(upstream, serve):
    served = serve()
    for choice in ({"function": []}, {"function": "x"}, {"function": {"name": 5}}, [], 7):
        status, error = raw_request(served, json.dumps({**ASK, "tool_choice": choice}).encode())
        assert (status, error["error"]["param"]) == (400, "tool_choice"), (choice, error)
    assert upstream.requests == []
    assert "Traceback" not in served.log()


def test_a_number_too_large_for_a_float_anywhere_is_a_400(upstream, serve):
    served = serve()
    tool = '{"type": "function", "function": {"name": "a", "parameters": {"type": "object", "maximum": 1e999}}}'
    for extra in (', "x": 1e999', ', "tools": [' + tool + "]", ', "metadata": {"a": [-1e999]}'):
        body = json.dumps(ASK)[:-1].encode() + extra.encode() + b"}"
        status, error = raw_request(served, body)
        assert (status, error["error"]["code"]) == (400, "invalid_json"), (extra, error)
        assert "1e999 is too large for a number" in error["error"]["message"]
    assert upstream.requests == []
    assert "Traceback" not in served.log()
