"""A profile sets its own system prompt, max_rounds and tools.timeout (issue 28, item 7): `ask -p`,
`/profile` in the REPL and `serve` bring them into force, `config show` says where each is written,
and a wrong value stops with file:line:column."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pexpect
import pytest

from tests.support.fakeserver import FakeServer, openai_calls, sse, text_stream
from tests.support.serving import post

CONFIG = """\
system: You are a careful assistant who explains at length.
max_rounds: 6
tools:
  timeout: 60
profiles:
  terse:
    system: Answer in one word.
    max_rounds: 2
    tools:
      timeout: 1
"""

SLOW = '''
import time

def slow() -> str:
    """Take a long time."""
    time.sleep(30)
    return "finally"
'''


def config_in(folder: Path, text: str = CONFIG) -> Path:
    path = folder / "profiles.yaml"
    path.write_text(text)
    return path


def test_ask_with_a_profile_sends_the_profile_s_system_prompt(run_cli, tmp_path):
    config = config_in(tmp_path)
    with FakeServer() as server:
        server.add(sse(text_stream("Yes.")), sse(text_stream("Well, at length then.")))
        terse = run_cli("ask", "-c", str(config), "-p", "terse", "--base-url", server.url, "--no-tools", "Is it?")
        plain = run_cli("ask", "-c", str(config), "--base-url", server.url, "--no-tools", "Is it?")
        assert not server.scripts
        first, second = server.requests
    assert terse.returncode == 0 and plain.returncode == 0, terse.stderr + plain.stderr
    assert first["messages"][0] == {"role": "system", "content": "Answer in one word."}
    assert second["messages"][0] == {"role": "system", "content": "You are a careful assistant who explains at length."}


def test_a_profile_s_tool_timeout_stops_a_slow_tool(run_cli, plugin_dir, tmp_path):
    config = config_in(tmp_path)
    tools = str(plugin_dir(slow=SLOW))
    with FakeServer() as server:
        server.add(sse(openai_calls([("slow", {})])), sse(text_stream("It was stopped.")))
        started = time.monotonic()
        done = run_cli("ask", "-c", str(config), "-p", "terse", "--yes", "--no-bundled-tools", "--tools", tools,
                   "--base-url", server.url, "--json", "Run slow.")  # fmt: skip
        took = time.monotonic() - started
        assert not server.scripts
        sent = json.dumps(server.requests[-1]["messages"])
    assert done.returncode == 0, done.stderr
    assert "did not finish within 1 s and was stopped" in sent
    assert took < 25  # the top-level 60 s was not the one in force


def test_a_profile_s_max_rounds_stops_a_model_that_keeps_calling(run_cli, plugin_dir, tmp_path):
    config = config_in(tmp_path)
    tools = str(plugin_dir(quick="def quick() -> str:\n    '''Answer at once.'''\n    return 'ok'\n"))
    with FakeServer() as server:
        server.add(sse(openai_calls([("quick", {})])), sse(openai_calls([("quick", {})])))
        done = run_cli("ask", "-c", str(config), "-p", "terse", "--yes", "--no-bundled-tools", "--tools", tools,
                   "--base-url", server.url, "Keep going.")  # fmt: skip
        assert not server.scripts
        assert len(server.requests) == 2
    assert "still calling tools after 2 model calls" in done.stderr, done.stderr


def test_config_show_says_where_a_profile_s_keys_are_written(run_cli, tmp_path):
    config = config_in(tmp_path)
    done = run_cli("config", "show", "-c", str(config), "-p", "terse", env={"COLUMNS": "200"})
    assert done.returncode == 0, done.stderr
    rows = {line.split()[0]: line for line in done.stdout.splitlines() if line.strip()}
    assert "Answer in one word." in rows["system"] and f"{config}:7:5" in rows["system"]
    assert f"{config}:8:5" in rows["max_rounds"]
    assert f"{config}:10:7" in rows["tool_timeout"]
    plain = run_cli("config", "show", "-c", str(config), env={"COLUMNS": "200"})
    shown = {line.split()[0]: line for line in plain.stdout.splitlines() if line.strip()}
    assert f"{config}:1:1" in shown["system"] and f"{config}:4:3" in shown["tool_timeout"]


@pytest.mark.parametrize(
    ("written", "at", "message"),
    [
        ("    max_rounds: 0\n", "6:5", "'profiles.terse.max_rounds' must be at least 1, not 0"),
        ("    system: [a, b]\n", "6:5", "'profiles.terse.system' must be a string"),
        (
            "    tools:\n      timeout: -1\n",
            "7:7",
            "'profiles.terse.tools.timeout' must be a number of seconds above 0",
        ),
        ("    tools:\n      allow: [x]\n", "7:7", "unknown key 'profiles.terse.tools.allow'"),
    ],
)
def test_a_wrong_profile_value_is_refused_at_its_line(run_cli, tmp_path, written, at, message):
    config = config_in(tmp_path, "max_rounds: 3\nprofile: terse\nprofiles:\n  terse:\n    model: m\n" + written)
    done = run_cli("config", "validate", str(config))
    assert done.returncode == 2
    assert f"{config}:{at}: {message}" in done.stderr, done.stderr


@pytest.mark.terminal
def test_profile_in_the_repl_switches_the_system_prompt(repl, tmp_path):
    config = config_in(tmp_path)
    with FakeServer() as server:
        server.add(sse(text_stream("At length: yes.")), sse(text_stream("Yes.")))
        child = repl(server, "-c", str(config), "--no-tools")
        child.sendline("Is it?")
        child.expect("At length: yes.")
        child.expect("›")
        child.sendline("/profile terse")
        child.expect("now using openai")
        child.expect("›")
        child.sendline("Is it?")
        child.expect("Yes.")
        child.expect("›")
        assert not server.scripts
        first, second = server.requests[-2:]
    assert first["messages"][0]["content"] == "You are a careful assistant who explains at length."
    assert second["messages"][0] == {"role": "system", "content": "Answer in one word."}


@pytest.mark.terminal
def test_a_profile_without_a_system_prompt_sends_none_and_a_resumed_session_neither(repl, tmp_path):
    config = config_in(
        tmp_path, "profile: careful\nprofiles:\n  careful:\n    system: Explain at length.\n  bare: {}\n"
    )
    with FakeServer() as server:
        server.add(sse(text_stream("At length: yes.")), sse(text_stream("Yes.")), sse(text_stream("Still yes.")))
        child = repl(server, "-c", str(config), "--no-tools")
        child.sendline("Is it?")
        child.expect("At length: yes.")
        child.expect("›")
        child.sendline("/profile bare")
        child.expect("now using openai")
        child.expect("›")
        child.sendline("Is it?")
        child.expect("Yes.")
        child.expect("›")
        child.sendline("/exit")
        child.expect(pexpect.EOF)
        resumed = repl(server, "-c", str(config), "-p", "bare", "--no-tools", "--continue")
        resumed.sendline("And now?")
        resumed.expect("Still yes.")
        resumed.expect("›")
        assert not server.scripts
        first, second, third = server.requests[-3:]
    assert first["messages"][0] == {"role": "system", "content": "Explain at length."}
    assert [m["role"] for m in second["messages"]] == ["user", "assistant", "user"]
    assert [m["role"] for m in third["messages"]] == ["user", "assistant", "user", "assistant", "user"]


def test_serve_gives_each_model_its_profile_s_system_prompt(upstream, serve, tmp_path):
    config = config_in(tmp_path)
    upstream.add(sse(text_stream("Yes.")), sse(text_stream("Yes, at length.")))
    served = serve("-c", str(config), "--no-tools")
    question = [{"role": "user", "content": "Is it?"}]
    assert post(f"{served.url}/chat/completions", {"model": "terse", "messages": question})[0] == 200
    assert post(f"{served.url}/chat/completions", {"model": "toolchat", "messages": question})[0] == 200
    terse, default = upstream.requests
    assert terse["messages"][0] == {"role": "system", "content": "Answer in one word."}
    assert default["messages"][0]["content"] == "You are a careful assistant who explains at length."
