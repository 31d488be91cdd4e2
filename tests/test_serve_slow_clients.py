"""`toolchat serve` against clients that misbehave at the socket: one that leaves mid-stream, one
that sends its headers a byte at a time (or nothing), one that stops reading its stream. Each is
let go in bounded time, its request stopped, and said as it happened in the access log."""

from __future__ import annotations

import json
import re
import socket
import time
import urllib.request

from tests.support.fakeserver import chunk, sse, text_stream
from tests.support.serving import Served

ASK = {"model": "toolchat", "messages": [{"role": "user", "content": "Count slowly."}]}


def request_bytes(body: dict) -> bytes:
    data = json.dumps(body).encode()
    return (
        b"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        b"Content-Length: %d\r\n\r\n%s" % (len(data), data)
    )


def completion_lines(served: Served, count: int = 1, seconds: float = 15) -> list[str]:
    deadline = time.monotonic() + seconds
    while True:
        found = [line for line in served.log().splitlines() if "POST /v1/chat/completions" in line]
        if len(found) >= count or time.monotonic() > deadline:
            return found
        time.sleep(0.05)


def running(served: Served) -> int:
    with urllib.request.urlopen(f"{served.root}/health", timeout=10) as response:
        return json.loads(response.read())["running"]


def closed_within(sock: socket.socket, seconds: float, trickle: bytes = b"") -> float | None:
    """How long until the server closes `sock` (sending `trickle` every 0.2 s meanwhile), or None."""
    started = time.monotonic()
    sock.settimeout(0.2)
    while time.monotonic() - started < seconds:
        try:
            if trickle:
                sock.sendall(trickle)
            if sock.recv(65536) == b"":
                return time.monotonic() - started
        except TimeoutError:
            continue
        except (ConnectionResetError, BrokenPipeError):
            return time.monotonic() - started
    return None


def test_a_client_that_leaves_mid_stream_is_a_499_in_the_log_and_its_upstream_stream_is_closed(upstream, serve):
    upstream.add(sse(text_stream("one two three four five six seven eight nine ten", pieces=10), delay=0.4))
    served = serve()
    with socket.create_connection(("127.0.0.1", served.port), timeout=10) as sock:
        sock.sendall(request_bytes({**ASK, "stream": True}))
        seen = b""
        while b'"content": "one' not in seen:
            seen += sock.recv(65536)
        left = time.monotonic()
    [line] = completion_lines(served)
    assert re.fullmatch(
        r"toolchat serve: POST /v1/chat/completions 499 model=toolchat \d+\.\d{3} s "
        r"\(the client went away mid-stream\)",
        line,
    ), served.log()
    while running(served):  # the turn ends at the upstream's next chunk, not after all ten
        assert time.monotonic() - left < 2, "the request went on after its client left"
        time.sleep(0.05)
    assert "Traceback" not in served.log()


def test_a_client_that_sends_its_headers_slowly_or_nothing_is_cut_off_at_the_header_timeout(upstream, serve):
    served = serve("--header-timeout", "1")
    with socket.create_connection(("127.0.0.1", served.port), timeout=10) as sock:
        sock.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        seconds = closed_within(sock, 6, trickle=b"X-Slow: 1\r\n")
    assert seconds is not None and 0.8 < seconds < 3, seconds
    with socket.create_connection(("127.0.0.1", served.port), timeout=10) as silent:
        seconds = closed_within(silent, 6)
    assert seconds is not None and 0.8 < seconds < 3, seconds
    # a keep-alive connection: its first request answered, its second's headers as bounded
    upstream.add(sse(text_stream("fine")))
    with socket.create_connection(("127.0.0.1", served.port), timeout=10) as sock:
        sock.sendall(request_bytes(ASK))
        answer = b""
        while b'"fine"' not in answer:
            answer += sock.recv(65536)
        assert answer.startswith(b"HTTP/1.1 200 ")
        sock.sendall(b"GET /health HTTP/1.1\r\n")
        seconds = closed_within(sock, 6, trickle=b"X")
    assert seconds is not None and seconds < 3, seconds
    assert running(served) == 0 and len(upstream.requests) == 1
    assert "Traceback" not in served.log()


def test_a_client_that_stops_reading_its_stream_is_cut_off_at_the_time_limit(upstream, serve):
    piece = "x" * 32768
    upstream.add(sse([chunk({"content": piece}) for _ in range(240)] + [chunk(finish="stop")]))  # ~8 MB
    served = serve("--time-limit", "2")
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.settimeout(10)
        sock.connect(("127.0.0.1", served.port))
        sock.sendall(request_bytes({**ASK, "stream": True}))
        started = time.monotonic()
        [line] = completion_lines(served)  # while the client reads nothing
        took = time.monotonic() - started
        received = b""
        try:
            while part := sock.recv(1 << 20):
                received += part
        except ConnectionResetError:
            pass
    assert 2 < took < 6, (took, served.log())
    assert re.fullmatch(
        r"toolchat serve: POST /v1/chat/completions 504 model=toolchat \d+\.\d{3} s "
        r"\(its client read too slowly: cut at the time limit\)",
        line,
    ), served.log()
    assert b"data: [DONE]" not in received
    assert running(served) == 0
    assert "Traceback" not in served.log() and "ASGI" not in served.log()


def test_a_body_trickled_past_the_time_limit_is_a_408_and_nothing_is_sent_upstream(upstream, serve):
    served = serve("--time-limit", "1")
    with socket.create_connection(("127.0.0.1", served.port), timeout=10) as sock:
        sock.sendall(
            b"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            b'Content-Length: 100000\r\n\r\n{"messages": ['
        )
        started, took = time.monotonic(), None
        sock.settimeout(0.2)
        answer = b""
        while not answer.endswith(b"}}") and time.monotonic() - started < 6:
            try:
                sock.sendall(b" ")
                answer += sock.recv(65536)
            except TimeoutError:
                continue
            except (ConnectionResetError, BrokenPipeError):
                break
            if answer.startswith(b"HTTP/1.1 ") and took is None:
                took = time.monotonic() - started
    assert answer.startswith(b"HTTP/1.1 408 ") and took is not None and 0.8 < took < 3, (took, answer)
    assert b'"code": "time_limit"' in answer
    assert upstream.requests == []
    assert "Traceback" not in served.log()
