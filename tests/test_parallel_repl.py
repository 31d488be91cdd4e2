"""Calls of one reply running at once, in the REPL in a real pseudo-terminal: each question asked in
the model's order, each call shown as it starts and as it finishes with the screen's lines whole,
and Ctrl-C while several run stops every one of them and everything they started (SIGTERM to `ask`
likewise)."""

from __future__ import annotations

import os
import re
import signal
import time
from pathlib import Path

import pytest

from tests.support.fakeserver import FakeServer, openai_calls, sse, text_stream
from tests.support.terminal import press, say, see, spawn_ask

pytestmark = pytest.mark.terminal

NAP = '''
import time


def nap(tag: str, seconds: float) -> str:
    """Sleep this long, then say so."""
    time.sleep(seconds)
    return f"{tag} rested {seconds} s"
'''

HOLD = '''
import os
import subprocess
import time


def hold(tag: str) -> str:
    """Start a helper that would run for minutes, then wait for a long time."""
    helper = subprocess.Popen(["sleep", "300"])
    with open(os.path.join({folder!r}, tag), "w") as handle:
        handle.write(f"{{os.getpid()}} {{helper.pid}}")
    time.sleep(60)
    return "held"
'''


def config(tmp_path: Path, parallel: int) -> str:
    path = tmp_path / "parallel.yaml"
    path.write_text(f"tools:\n  parallel: {parallel}\n")
    return str(path)


def test_five_calls_are_asked_in_order_then_shown_starting_and_finishing(repl, server, plugin_dir, tmp_path):
    sleeps = [1.5, 0.2, 1.0, 0.0, 0.5]
    calls = [("nap", {"tag": f"n{i}", "seconds": s}) for i, s in enumerate(sleeps)]
    server.add(sse(openai_calls(calls)), sse(text_stream("Everyone rested.")))
    child = repl(server, "-c", config(tmp_path, 5), "--tools", str(plugin_dir(nap=NAP)))
    say(child, "Rest five times.")
    for tag in ("n0", "n1", "n2", "n3", "n4"):  # one question per call, in the model's order
        see(child, f'"tag": "{tag}"')
        child.expect(r"Run nap\?")
        press(child, "y")
    child.expect("Everyone rested.")
    child.expect("›")
    lines = child.screen.transcript()
    panels = [line for line in lines if "tool call nap" in line]
    assert [re.search(r"tool call (nap #\d) ─", line).group(1) for line in panels] == [f"nap #{n}" for n in range(1, 6)]
    started = [line for line in lines if "started" in line]
    assert sorted(started) == [f"  ▸ nap #{n} started" for n in range(1, 6)]  # whole lines, each once
    titles = [line for line in lines if re.search(r"nap #\d → ", line)]
    assert len(titles) == 5 and all(re.fullmatch(r"╭─ nap #\d → ok  \d+\.\d\d s ─+╮", t) for t in titles), titles
    shown_order = [int(re.search(r"#(\d)", t).group(1)) for t in titles]
    assert shown_order.index(4) < shown_order.index(1)  # said as each finished: 0 s before 1.5 s
    first_start = lines.index(started[0])
    questions = [n for n, line in enumerate(lines) if "Run nap?" in line]
    assert len(questions) == 5 and questions[-1] < first_start  # every question before any call ran
    contents = [m["content"] for m in server.requests[1]["messages"] if m["role"] == "tool"]
    assert contents == [f"n{i} rested {s} s" for i, s in enumerate(sleeps)]  # the model's order


@pytest.mark.parametrize("presses", [1, 2])  # twice: a user pressing again while the calls are stopped and said
def test_ctrl_c_while_three_calls_run_stops_each_and_all_they_started(repl, server, plugin_dir, tmp_path, presses):
    marks = tmp_path / "marks"
    marks.mkdir()
    folder = plugin_dir(hold=HOLD.format(folder=str(marks)))
    server.add(sse(openai_calls([("hold", {"tag": f"h{i}"}) for i in range(3)])), sse(text_stream("Stopped, then.")))
    child = repl(server, "--tools", str(folder), "--allow", "hold")
    say(child, "Hold three.")
    deadline = time.monotonic() + 30
    while len(list(marks.iterdir())) < 3 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert len(list(marks.iterdir())) == 3, child.screen.transcript()
    see(child, "running 3 calls")
    for _ in range(presses):
        child.sendintr()
        time.sleep(0.05)
    child.expect("›")
    cancelled = [line for line in child.screen.transcript() if re.search(r"hold #\d → cancelled", line)]
    assert len(cancelled) == 3, child.screen.transcript()
    say(child, "What happened?")
    child.expect("Stopped, then.")
    tools = [m for m in server.requests[1]["messages"] if m["role"] == "tool"]
    assert [m["tool_call_id"] for m in tools] == [f"call_{i}abc" for i in range(3)]
    assert all(m["content"] == "Cancelled: the user pressed Ctrl-C and the tool was stopped." for m in tools)
    assert server.requests[1]["messages"][-1] == {"role": "user", "content": "What happened?"}  # the turn ended
    pids = [int(pid) for mark in marks.iterdir() for pid in mark.read_text().split()]
    time.sleep(0.5)
    for pid in pids:  # each call's process and the helper it started
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)


def test_sigterm_while_three_calls_run_in_ask_stops_each_and_exits_143(isolated_env, plugin_dir, tmp_path):
    marks = tmp_path / "marks"
    marks.mkdir()
    folder = plugin_dir(hold=HOLD.format(folder=str(marks)))
    with FakeServer() as server:
        server.add(sse(openai_calls([("hold", {"tag": f"h{i}"}) for i in range(3)])))
        process = spawn_ask(isolated_env, tmp_path, "--yes", "--tools", str(folder), "--base-url", server.url, "go")
        deadline = time.monotonic() + 30
        while len(list(marks.iterdir())) < 3 and time.monotonic() < deadline:
            time.sleep(0.1)
        time.sleep(0.2)
        process.send_signal(signal.SIGTERM)
        _, err = process.communicate(timeout=30)
    assert process.returncode == 143, err
    stopped = "cancelled: Cancelled: toolchat was stopped (SIGTERM) and the tool was stopped."
    assert [line.split()[1] for line in err.splitlines() if line.endswith(stopped)] == ["hold"] * 3
    assert err.count("toolchat: interrupted") == 1
    pids = [int(pid) for mark in marks.iterdir() for pid in mark.read_text().split()]
    assert len(pids) == 6
    time.sleep(0.5)
    for pid in pids:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
