"""The fault matrix of docs/RELIABILITY.md: the rows not already proven elsewhere."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.support.fakes import ScriptedBackend, answer, call, calls
from tests.support.fakeserver import FakeServer, openai_calls, sse, text_stream
from tests.support.terminal import spawn_ask
from toolchat.config.file import load_file
from toolchat.conversation import Conversation
from toolchat.engine import Engine, Policy
from toolchat.errors import ConfigError
from toolchat.sessions import SessionLog, load
from toolchat.tools import RunLimits, discover

REPO = Path(__file__).resolve().parents[1]


def test_fifty_calls_in_one_reply_are_all_answered_in_order(tmp_path):
    many = [call("calculate", {"expression": f"{n} + 1"}, id=f"c{n}") for n in range(50)]
    backend = ScriptedBackend(calls(*many), answer("done"))
    engine = Engine(
        backend,
        discover([]),
        approve=lambda p: None,
        on_event=lambda e: None,
        policy=Policy(True),
        limits=RunLimits(tmp_path),
    )
    result = engine.run_turn("go")
    assert [r.output for r in result.calls] == [str(n + 1) for n in range(50)]
    assert [m["tool_call_id"] for m in engine.messages if m["role"] == "tool"] == [f"c{n}" for n in range(50)]


def test_a_tool_that_prints_does_not_corrupt_asks_stdout(cli, plugin_dir):
    folder = plugin_dir(
        noisy="import os\n\ndef noisy() -> str:\n    '''Noisy.'''\n    print('PRINTED')\n"
        "    os.write(1, b'RAW FD1 ')\n    os.write(2, b'RAW FD2 ')\n    return 'value'\n"
    )
    with FakeServer() as server:
        server.add(sse(openai_calls([("noisy", {})])), sse(text_stream("The answer.")))
        done = cli("ask", "--yes", "--tools", str(folder), "--base-url", server.url, "go")
        assert done.stdout == "The answer.\n"
        # stderr holds toolchat's own lines only: the call, and the result whose preview quotes the print
        assert [line[:1] for line in done.stderr.splitlines()] == ["→", "←"]
        assert "[printed output]\nPRINTED\nRAW FD1 RAW FD2" in server.requests[1]["messages"][-1]["content"]


def test_ask_stderr_lines_neutralise_escapes_from_tools(cli, plugin_dir):
    folder = plugin_dir(evil="def evil() -> str:\n    '''Evil.'''\n    return '\\x1b]0;pwned\\x07\\x1b[2J'\n")
    with FakeServer() as server:
        server.add(sse(openai_calls([("evil", {})])), sse(text_stream("ok")))
        done = cli("ask", "--yes", "--tools", str(folder), "--base-url", server.url, "go")
    assert "\x1b" not in done.stderr and "\\x1b]0;pwned\\x07" in done.stderr


def test_ask_with_stdin_closed(isolated_env, tmp_path):
    with FakeServer() as server:
        server.add(sse(text_stream("fine")))
        done = subprocess.run(
            ["bash", "-c", f"{sys.executable} -m toolchat ask --base-url {server.url} hello 0<&-"],
            capture_output=True,
            text=True,
            env=isolated_env,
            cwd=tmp_path,
            start_new_session=True,
        )
    assert (done.returncode, done.stdout) == (0, "fine\n")


def test_ctrl_c_in_ask_exits_130(isolated_env, tmp_path):
    with FakeServer() as server:
        server.add(sse(text_stream(" ".join(["word"] * 300), pieces=300), delay=0.05))
        process = spawn_ask(isolated_env, tmp_path, "--base-url", server.url, "talk")
        deadline = time.monotonic() + 20
        while not server.requests and time.monotonic() < deadline:
            time.sleep(0.1)
        time.sleep(0.5)
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=20)
    assert process.returncode == 130
    assert out.startswith("word word") and "toolchat: interrupted" in err and "Traceback" not in err


def test_sigterm_while_a_tool_runs_stops_the_tool_and_exits_143(isolated_env, tmp_path, plugin_dir):
    marker = tmp_path / "tool-pid"
    folder = plugin_dir(
        slow=f"import os, time\n\ndef slow() -> str:\n    '''Slow.'''\n"
        f"    open({str(marker)!r}, 'w').write(str(os.getpid()))\n    time.sleep(60)\n    return 'x'\n"
    )
    with FakeServer() as server:
        server.add(sse(openai_calls([("slow", {})])))
        process = spawn_ask(isolated_env, tmp_path, "--yes", "--tools", str(folder), "--base-url", server.url, "go")
        deadline = time.monotonic() + 20
        while not marker.exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        time.sleep(0.2)
        tool_pid = int(marker.read_text())
        process.send_signal(signal.SIGTERM)
        _, err = process.communicate(timeout=20)
    assert process.returncode == 143
    assert "← slow cancelled: Cancelled: toolchat was stopped (SIGTERM) and the tool was stopped." in err
    assert err.count("toolchat: interrupted") == 1  # said once, not by both the command and main
    time.sleep(0.5)
    with pytest.raises(ProcessLookupError):
        os.kill(tool_pid, 0)


def test_a_long_session_resumes_and_continues(tmp_path):
    path = tmp_path / "long.jsonl"
    conversation = Conversation(None, SessionLog(path, {"project": str(tmp_path)}))
    messages: list[dict] = []
    for n in range(100):
        messages.append({"role": "user", "content": f"question {n}"})
        ids = [f"c{n}a", f"c{n}b"]
        messages.append(
            {
                "role": "assistant",
                "content": "",
                "tool_calls": [
                    {"id": i, "type": "function", "function": {"name": "calculate", "arguments": '{"expression": "1"}'}}
                    for i in ids
                ],
            }
        )
        messages += [{"role": "tool", "tool_call_id": i, "content": "1"} for i in ids]
        messages.append({"role": "assistant", "content": f"answer {n}"})
        for message in messages[len(conversation) :]:
            conversation.append(message)
    conversation.log.close()
    assert len(messages) == 500 and sum(m["role"] == "tool" for m in messages) == 200
    loaded = load(path)
    assert loaded.messages == messages and loaded.skipped == 0
    backend = ScriptedBackend(answer("still going"))
    resumed = Conversation()
    resumed.restore(loaded.messages, SessionLog(path, {}))
    engine = Engine(
        backend,
        discover([]),
        approve=lambda p: None,
        on_event=lambda e: None,
        policy=Policy(),
        limits=RunLimits(tmp_path),
        conversation=resumed,
    )
    assert engine.run_turn("one more").answer == "still going"
    assert len(backend.requests[0].messages) == 501


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=200))
def test_random_yaml_never_raises_anything_but_a_config_error(tmp_path_factory, text):
    path = tmp_path_factory.mktemp("fuzz") / "toolchat.yaml"
    path.write_text(text, encoding="utf-8")
    try:
        load_file(path, {})
    except ConfigError:
        pass


@settings(max_examples=200, deadline=None)
@given(
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
        lambda inner: (
            st.lists(inner, max_size=3)
            | st.dictionaries(
                st.sampled_from(["profile", "profiles", "tools", "paths", "backend", "max_rounds", "x", "allow"]),
                inner,
                max_size=4,
            )
        ),
        max_leaves=10,
    )
)
def test_random_config_structures_never_raise_anything_but_a_config_error(tmp_path_factory, data):
    import yaml

    path = tmp_path_factory.mktemp("fuzz") / "toolchat.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    try:
        load_file(path, {})
    except ConfigError:
        pass


def test_nothing_runs_a_shell_on_model_output():
    for source in list((REPO / "cli").rglob("*.py")) + list((REPO / "tools").rglob("*.py")):
        text = source.read_text()
        assert (
            "shell=True" not in text and "os.system(" not in text and "eval(" not in text.replace("literal_eval(", "")
        ), source
