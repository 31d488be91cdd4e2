"""`toolchat serve`'s access log, as the person running it reads it: one line per request, with
its method, path, status, model, tokens and seconds; nothing a client sends can drive the
terminal, and no secret is written."""

from __future__ import annotations

import http.client
import json
import re

from tests.support.fakeserver import sse, text_stream
from tests.support.serving import ASK, lines_after, post, raw_post

KEY = "s3cret-key-for-the-access-log-test"


def test_each_request_is_one_line_with_status_model_tokens_and_seconds(upstream, serve):
    usage = {"prompt_tokens": 12, "completion_tokens": 5}
    upstream.add(sse(text_stream("Sunny.", usage=usage)), sse(text_stream("Sunny.", usage=usage)))
    served = serve()
    assert raw_post(served, ASK).status == 200
    response = raw_post(served, {**ASK, "stream": True})
    assert response.status == 200 and response.read().endswith(b"data: [DONE]\n\n")
    assert post(f"{served.url}/nowhere", ASK)[0] == 404
    lines = lines_after(served, 3)
    assert len(lines) == 3, served.log()
    assert re.fullmatch(
        r"toolchat serve: POST /v1/chat/completions 200 model=toolchat tokens=12\+5 \d+\.\d{3} s", lines[0]
    )
    assert re.fullmatch(
        r"toolchat serve: POST /v1/chat/completions 200 model=toolchat tokens=12\+5 \d+\.\d{3} s", lines[1]
    )
    assert re.fullmatch(r"toolchat serve: POST /v1/nowhere 404 \d+\.\d{3} s", lines[2])


def test_a_path_with_escapes_or_the_key_in_it_is_written_neutralised(upstream, serve):
    served = serve("--api-key-env", "SERVE_KEY", env={"SERVE_KEY": KEY})
    connection = http.client.HTTPConnection("127.0.0.1", served.port, timeout=30)
    connection.request("GET", "/v1/%1b%5b2J%1b]0;owned%07/" + KEY + "?token=" + KEY)
    assert connection.getresponse().status == 401
    lines = lines_after(served, 1)
    assert len(lines) == 1, served.log()
    log = served.log()
    assert "\x1b" not in log and "\x07" not in log and KEY not in log
    assert lines[0].startswith("toolchat serve: GET /v1/") and " 401 " in lines[0] and "***" in lines[0]
    assert "token=" not in lines[0]  # the query string is never written


def test_a_refused_request_is_logged_without_a_model(upstream, serve):
    served = serve()
    response = raw_post(served, {**ASK, "temperature": "hot"})
    assert response.status == 400 and json.loads(response.read())["error"]["param"] == "temperature"
    assert re.fullmatch(r"toolchat serve: POST /v1/chat/completions 400 \d+\.\d{3} s", lines_after(served, 1)[0])


def test_a_line_break_or_tab_in_the_path_cannot_forge_a_second_line(upstream, serve):
    served = serve()
    forged = "toolchat%20serve:%20POST%20/v1/chat/completions%20200%20model=toolchat%200.001%20s"
    connection = http.client.HTTPConnection("127.0.0.1", served.port, timeout=30)
    connection.request("GET", f"/v1/x%0a{forged}%0d%09end")
    assert connection.getresponse().status == 404
    lines = lines_after(served, 1)
    assert len(lines) == 1 and lines[0].startswith("toolchat serve: GET /v1/x\\x0atoolchat serve: POST"), served.log()
    assert "\\x0d\\x09end 404 " in lines[0]
    assert not any(line.startswith("toolchat serve: POST") for line in served.log().splitlines())
