"""`toolchat serve`'s own tool rounds run the calls of one reply at once too (they share the engine):
the upstream reads the results in its own order, and a client that goes away stops every call its
request was running."""

from __future__ import annotations

import json
import time
import urllib.request

from tests.support.fakeserver import openai_calls, sse, text_stream
from tests.support.serving import gone, post, send_raw

NAP = '''
import time


def nap(tag: str, seconds: float) -> str:
    """Sleep this long, then say when the call ran."""
    started = time.time()
    time.sleep(seconds)
    return f"{tag} {started:.3f} {time.time():.3f}"


def hold(tag: str, folder: str) -> str:
    """Say where it runs, then wait for a long time."""
    import os
    with open(os.path.join(folder, tag), "w") as handle:
        handle.write(str(os.getpid()))
    time.sleep(60)
    return "held"
'''

ASK = {"model": "toolchat", "messages": [{"role": "user", "content": "Rest."}]}


def test_serve_runs_the_calls_of_one_reply_at_once_and_answers_in_the_model_s_order(upstream, serve, plugin_dir):
    calls = [("nap", {"tag": f"n{i}", "seconds": s}) for i, s in enumerate([0.9, 0.1, 0.5])]
    upstream.add(sse(openai_calls(calls)), sse(text_stream("Rested.")))
    served = serve("--tools", str(plugin_dir(nap=NAP)), "--allow", "nap")
    status, _, raw = post(f"{served.url}/chat/completions", ASK)
    assert status == 200, raw
    body = json.loads(raw)
    assert body["choices"][0]["message"]["content"] == "Rested."
    assert [c["id"] for c in body["toolchat"]["calls"]] == ["call_0abc", "call_1abc", "call_2abc"]  # finished 1, 2, 0
    tools = [m for m in upstream.requests[1]["messages"] if m["role"] == "tool"]
    assert [m["content"].split()[0] for m in tools] == ["n0", "n1", "n2"]
    ran = [(float(a), float(b)) for _, a, b in (m["content"].split() for m in tools)]
    assert max(start for start, _ in ran) < min(end for _, end in ran)  # all three at once


def test_a_client_that_goes_away_stops_every_call_its_request_runs(upstream, serve, plugin_dir, tmp_path):
    marks = tmp_path / "marks"
    marks.mkdir()
    upstream.add(sse(openai_calls([("hold", {"tag": f"h{i}", "folder": str(marks)}) for i in range(3)])))
    served = serve("--tools", str(plugin_dir(nap=NAP)), "--allow", "hold")
    sock = send_raw(served, {**ASK, "stream": True})
    deadline = time.monotonic() + 30
    while len(list(marks.iterdir())) < 3 and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.1)
    pids = [int(mark.read_text()) for mark in marks.iterdir()]
    assert len(pids) == 3
    sock.close()
    for pid in pids:
        assert gone(pid), "a call kept running after its client went away"
    deadline = time.monotonic() + 5
    while json.loads(urllib.request.urlopen(f"{served.root}/health").read())["running"]:
        assert time.monotonic() < deadline, "the request kept running"
        time.sleep(0.05)
    assert len(upstream.requests) == 1  # the model was not asked again
