"""MCP servers in the REPL, in a real pseudo-terminal: the banner, `/mcp`, `/mcp restart NAME`, an
approved call to a real server, and no server left running after the REPL leaves."""

from __future__ import annotations

import json
import sys
import time

import pexpect
import pytest

pytest.importorskip("mcp")

from tests.support.fakeserver import FakeServer, openai_calls, sse, text_stream
from tests.support.mcp_helpers import SERVERS, server_pids, wait_gone
from tests.support.terminal import press, say, see, spawn


def test_servers_in_the_repl_from_banner_to_exit(isolated_env, tmp_path):
    pid_dir = tmp_path / "pids"
    pid_dir.mkdir()
    config = tmp_path / "toolchat.yaml"
    config.write_text(
        json.dumps(
            {
                "mcp_servers": {
                    "faults": {
                        "command": sys.executable,
                        "args": [str(SERVERS / "faults.py")],
                        "env": {"FAULTS_PID_DIR": str(pid_dir)},
                    },
                    "broken": {"command": sys.executable, "args": [str(SERVERS / "faults.py"), "exit-at-start"]},
                }
            }
        )
    )
    with FakeServer(models=["fake"]) as server:
        server.add(sse(openai_calls([("faults__echo", {"text": "hello from mcp"})])), sse(text_stream("It echoed.")))
        child = spawn(
            "chat",
            "-c",
            str(config),
            "--base-url",
            server.url,
            "-m",
            "fake",
            "--no-bundled-tools",
            env=isolated_env,
            cwd=tmp_path,
        )
        try:
            child.expect("mcp: faults (starting|ready)")  # the banner does not wait for servers
            child.expect("›")
            say(child, "Echo something")
            see(child, "faults__echo")
            see(child, "mcp faults")  # the approval panel says where the call goes
            press(child, "y")
            see(child, "It echoed.")
            say(child, "/mcp")
            see(child, "faults stdio ready")
            see(child, "broken stdio failed")
            see(child, "cannot open the database")
            say(child, "/mcp restart faults")
            see(child, "faults stdio ready")
            assert len(server_pids(pid_dir)) == 2
            child.expect("›")
            time.sleep(0.3)
            child.sendeof()
            child.expect(pexpect.EOF)
        finally:
            if child.isalive():
                child.terminate(force=True)
        child.close()
        assert child.exitstatus == 0
        assert server.scripts == []
        tool_message = [m for m in server.requests[-1]["messages"] if m["role"] == "tool"][0]
        assert tool_message["content"] == "hello from mcp"
    assert wait_gone(server_pids(pid_dir), 3) == []


@pytest.mark.parametrize("signal_name", ["SIGHUP", "SIGTERM"])
def test_a_closed_terminal_or_sigterm_stops_every_server(isolated_env, tmp_path, signal_name):
    import os
    import signal

    pid_dir = tmp_path / "pids"
    pid_dir.mkdir()
    config = tmp_path / "toolchat.yaml"
    config.write_text(
        json.dumps(
            {
                "mcp_servers": {
                    name: {
                        "command": sys.executable,
                        "args": [str(SERVERS / "faults.py")],
                        "env": {"FAULTS_PID_DIR": str(pid_dir)},
                    }
                    for name in ("one", "two")
                }
            }
        )
    )
    with FakeServer(models=["fake"]) as server:
        child = spawn("chat", "-c", str(config), "--base-url", server.url, "-m", "fake", env=isolated_env, cwd=tmp_path)
        try:
            child.expect("›")
            deadline = time.monotonic() + 20
            while len(os.listdir(pid_dir)) < 2 and time.monotonic() < deadline:
                time.sleep(0.1)
            time.sleep(1)  # both sessions are up
            child.kill(getattr(signal, signal_name))
            child.expect(pexpect.EOF, timeout=10)
            child.close()
            assert child.exitstatus == 128 + getattr(signal, signal_name)  # the signal, named by the exit code
        finally:
            if child.isalive():
                child.terminate(force=True)
    pids = server_pids(pid_dir)
    assert len(pids) == 2
    assert wait_gone(pids, 3) == []


def test_a_turn_waits_for_a_server_still_starting_and_ctrl_c_stops_the_wait(isolated_env, tmp_path):
    config = tmp_path / "toolchat.yaml"
    config.write_text(
        json.dumps(
            {
                "mcp_servers": {
                    "slow": {
                        "command": sys.executable,
                        "args": [str(SERVERS / "faults.py"), "hang-at-start"],
                        "startup_timeout": 60,
                    }
                }
            }
        )
    )
    with FakeServer(models=["fake"]) as server:
        child = spawn("chat", "-c", str(config), "--base-url", server.url, "-m", "fake", env=isolated_env, cwd=tmp_path)
        try:
            child.expect("mcp: slow starting")
            child.expect("›")
            say(child, "hello")
            time.sleep(1.5)  # the turn is waiting for the server, not calling the model
            assert server.requests == []
            child.sendintr()
            see(child, "interrupted")
            child.expect("›")
            say(child, "/mcp")
            see(child, "slow stdio starting")  # still starting: Ctrl-C stopped the wait, not the server
            child.expect("›")
            time.sleep(0.3)
            started = time.monotonic()
            child.sendeof()
            child.expect(pexpect.EOF)
            assert time.monotonic() - started < 5
        finally:
            if child.isalive():
                child.terminate(force=True)
        assert server.requests == []
