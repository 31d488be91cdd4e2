"""MCP tools are known before the first turn, in a real pseudo-terminal: as each server becomes ready
its tools join (the toolbar's counts, `/tools`, `/allow NAME`, Tab completion), the banner's count
is the count of what is offered, a server that fails says so on one line above the prompt (the line
being typed kept whole), a slow server joins while the prompt is in use; and the bottom toolbar at
80 and 120 columns, nothing cut inside a word."""

from __future__ import annotations

import json
import re
import sys
import threading
import time
from pathlib import Path

import pexpect
import pytest

pytest.importorskip("mcp")

from tests.support.fakeserver import sse, text_stream
from tests.support.mcp_helpers import SERVERS, TIME
from tests.support.terminal import press, say, see, spawn
from toolchat.tools.registry import discover

BUNDLED = discover([]).names()
FAULT_TOOLS = ["echo", "hang", "big", "fail", "image", "grow", "refuse", "die", "leave", "daemon"]


def configure(tmp_path: Path, **servers: dict) -> Path:
    config = tmp_path / "toolchat.yaml"
    config.write_text(json.dumps({"mcp_servers": servers}))
    return config


def faults(mode: str = "serve", **entry: object) -> dict:
    return {"command": sys.executable, "args": [str(SERVERS / "faults.py"), mode], **entry}


def gated(gate: Path, mode: str = "serve") -> dict:
    """The fault server, waiting until the test creates `gate` before it goes on in `mode`."""
    return faults(mode, env={"FAULTS_GATE": str(gate)})


@pytest.fixture
def chat(server, isolated_env, tmp_path):
    """chat(config, columns=120): the REPL at its first prompt, with the bottom toolbar drawn (the
    emulator answers prompt-toolkit's cursor request); `child.banner` is what came before the prompt.
    Killed after the test if still running."""
    children = []

    def start(config: Path, columns: int = 120) -> pexpect.spawn:
        args = ("chat", "-c", str(config), "--base-url", server.url, "-m", "fake")
        child = spawn(*args, env=isolated_env, cwd=tmp_path, columns=columns, cpr=True)
        children.append(child)
        child.expect("/help for commands")
        child.banner = child.before
        child.expect("›")
        return child

    yield start
    for child in children:
        if child.isalive():
            child.terminate(force=True)


def complete(child: pexpect.spawn, typed: str) -> None:
    """Type `typed`, press Tab, then Enter."""
    press(child, typed)
    press(child, "\t")  # completions are computed in the background: give them a moment
    time.sleep(0.5)
    child.send("\r")


def wait_for_toolbar(child: pexpect.spawn, text: str, seconds: float = 20) -> str:
    """The toolbar once it shows `text` (it is redrawn as servers become ready)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            child.expect("nothing will match this", timeout=0.2)
        except pexpect.TIMEOUT:
            pass
        rows = [row for row in child.screen.shown() if "approval:" in row]
        if rows and text in rows[-1]:
            return rows[-1]
    raise AssertionError(f"the toolbar never showed {text!r}: {child.screen.shown()}")


def leave(child: pexpect.spawn) -> None:
    time.sleep(0.3)
    child.sendeof()
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0


@pytest.mark.terminal
def test_a_ready_servers_tools_are_known_before_any_turn(chat, server, tmp_path):
    config = configure(tmp_path, time={"command": TIME.split()[0], "args": TIME.split()[1:]})
    child = chat(config)
    count = int(re.search(r"(\d+) tools", child.banner).group(1))
    if "so far" in child.banner:  # printed while the server was still starting
        assert count == len(BUNDLED) and "time starting" in child.banner, child.banner
    else:
        assert count == len(BUNDLED) + 2 and "time ready (2)" in child.banner, child.banner
    wait_for_toolbar(child, "mcp: time ready (2)")
    say(child, "/tools")
    see(child, "time__get_current_time ask")
    see(child, "time__convert_time ask")
    child.expect("›")
    say(child, "/allow time__get_current_time")
    see(child, "time__get_current_time now runs without asking")
    child.expect("›")
    complete(child, "/deny time__conv")
    see(child, "time__convert_time is no longer offered")
    child.expect("›")
    assert server.requests == []  # all of it before any turn
    server.add(sse(text_stream("Noted.")))
    say(child, "hello")
    see(child, "Noted.")
    child.expect("›")
    leave(child)
    offered = [tool["function"]["name"] for tool in server.requests[0]["tools"]]
    assert offered == [*BUNDLED, "time__get_current_time"]  # the denied one is not offered


@pytest.mark.terminal
def test_a_server_that_fails_after_the_prompt_is_up_says_so_above_the_line_being_typed(chat, server, tmp_path):
    gate = tmp_path / "gate"
    config = configure(tmp_path, stuck=gated(gate, "exit-at-start"))
    child = chat(config)
    assert "stuck starting" in child.banner
    press(child, "hello wor")
    time.sleep(0.5)
    gate.touch()  # now it fails, with the prompt up and a line half typed
    see(child, "mcp stuck: could not start")  # when it fails, not at the first turn
    see(child, "cannot open the database")
    toolbar_row = wait_for_toolbar(child, "stuck failed")
    rows = child.screen.shown()
    said = next(n for n, row in enumerate(rows) if row.startswith("mcp stuck: could not start"))
    prompt = next(n for n, row in enumerate(rows) if row.startswith("›"))
    assert said < prompt and rows[prompt] == "› hello wor", rows  # the line typed, whole, below it
    assert rows.index(toolbar_row) > prompt
    server.add(sse(text_stream("Hello back.")))
    say(child, "ld")
    see(child, "Hello back.")
    child.expect("›")
    assert server.requests[0]["messages"][-1] == {"role": "user", "content": "hello world"}
    assert sum("mcp stuck: could not start" in row for row in child.screen.transcript()) == 1  # said once
    leave(child)


@pytest.mark.terminal
def test_a_slow_server_joins_while_the_prompt_is_already_in_use(chat, server, tmp_path):
    gate = tmp_path / "gate"
    config = configure(tmp_path, slow=gated(gate))
    child = chat(config)
    assert f"{len(BUNDLED)} tools so far" in child.banner and "slow starting" in child.banner
    say(child, "/tools")  # usable at once: what is offered so far, and who is still starting
    see(child, "mcp: slow starting")
    child.expect("›")
    assert "slow__echo" not in child.before
    wait_for_toolbar(child, "mcp: slow starting")
    say(child, "/allow slow__echo")  # too early: said so, not "no tool named" alone
    see(child, "no tool named 'slow__echo' yet: mcp slow is still starting")
    child.expect("›")
    time.sleep(1.5)  # the server is slow; the prompt is not
    gate.touch()
    wait_for_toolbar(child, "mcp: slow ready (10)")
    say(child, "/tools")
    see(child, "slow__echo ask Say the text back.")
    child.expect("›")
    complete(child, "/allow slow__ec")
    see(child, "slow__echo now runs without asking")
    child.expect("›")
    leave(child)
    assert server.requests == []


@pytest.mark.terminal
def test_a_question_sent_before_a_server_is_ready_waits_and_the_model_sees_its_tools(chat, server, tmp_path):
    gate = tmp_path / "gate"
    child = chat(configure(tmp_path, slow=gated(gate)))
    server.add(sse(text_stream("All tools seen.")))
    say(child, "hello")
    time.sleep(1.5)  # the turn waits for the server, not calling the model
    assert server.requests == []
    gate.touch()
    see(child, "All tools seen.")
    child.expect("›")
    offered = [tool["function"]["name"] for tool in server.requests[0]["tools"]]
    assert offered == [*BUNDLED, *(f"slow__{name}" for name in FAULT_TOOLS)]
    leave(child)


HOSTILE = """import os, sys, time
while not os.path.exists(sys.argv[1]):
    time.sleep(0.05)
sys.stderr.write("\\x1b[2J\\x1b[H\\x1b]0;owned\\x07cleared your screen\\r\\x1b[2Kmcp ok: ready\\n")
sys.exit(1)
"""


@pytest.mark.terminal
def test_servers_failing_at_once_with_hostile_stderr_never_drive_the_terminal(chat, server, tmp_path):
    gate = tmp_path / "gate"
    script = tmp_path / "hostile.py"
    script.write_text(HOSTILE)
    entry = {"command": sys.executable, "args": [str(script), str(gate)]}
    child = chat(configure(tmp_path, one=entry, two=entry, three=entry))
    press(child, "still typing")
    time.sleep(0.5)
    gate.touch()  # all three fail at once, with the prompt up
    wait_for_toolbar(child, "one failed · two failed · three failed")
    rows = child.screen.shown()
    assert any(row.startswith("toolchat  openai") for row in rows), rows  # the screen was not cleared
    for name in ("one", "two", "three"):
        said = [row for row in child.screen.transcript() if row.startswith(f"mcp {name}: could not start")]
        assert len(said) == 1, child.screen.transcript()  # once each
    text = "\n".join(child.screen.transcript())
    assert "\\x1b[2J\\x1b[H\\x1b]0;owned\\x07cleared your screen" in text  # shown, not obeyed
    assert not any(row.startswith("mcp ok") for row in rows)  # no line forged by a carriage return
    assert rows[next(n for n, row in enumerate(rows) if row.startswith("›"))] == "› still typing"
    child.send("\x15")  # the line typed is cleared, and the REPL goes on
    leave(child)


def test_ask_waits_for_a_slow_server_and_offers_every_tool_in_its_first_call(cli, server, tmp_path):
    gate = tmp_path / "gate"
    config = configure(tmp_path, slow=gated(gate), time={"command": TIME.split()[0], "args": TIME.split()[1:]})
    server.add(sse(text_stream("Seen them all.")))
    threading.Timer(1.5, gate.touch).start()
    done = cli("ask", "-c", str(config), "--base-url", server.url, "-m", "fake", "hello")
    assert done.returncode == 0, done.stderr
    offered = [tool["function"]["name"] for tool in server.requests[0]["tools"]]
    assert offered == [
        *BUNDLED,
        *(f"slow__{name}" for name in FAULT_TOOLS),
        "time__get_current_time",
        "time__convert_time",
    ]


@pytest.mark.terminal
@pytest.mark.parametrize("columns", [80, 120])
def test_the_toolbar_fits_the_terminal_and_cuts_no_word(chat, server, tmp_path, columns):
    config = configure(tmp_path, faults=faults(), docs=faults("exit-at-start"))
    child = chat(config, columns)
    # at 80 columns the cut comes before either server's state
    row = wait_for_toolbar(child, "faults ready (10) · docs failed" if columns == 120 else "mcp: faults")
    facts = " default · openai · fake · context 0/unknown · approval: ask · mcp: faults ready (10) · docs failed"
    assert len(row) < columns  # the last column stays empty: a full row would wrap
    if columns == 120:  # the first hint gave way whole; the rest is there
        assert row == facts + " · /help", row
    else:  # too long even alone: cut after a whole word, and said so
        assert row.endswith("…") and facts.startswith(row[:-1]), row
        assert facts[len(row) - 1] == " ", row  # the next character is a space: no word was cut
    leave(child)
