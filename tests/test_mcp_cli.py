"""The MCP commands as a user runs them: `toolchat mcp list`, `toolchat mcp logs NAME`."""

from __future__ import annotations

import pytest

pytest.importorskip("mcp")

from mcp_helpers import FAULTS, TIME  # noqa: E402


def test_mcp_list_shows_each_server_state_tools_or_error(cli):
    done = cli("mcp", "list", "--mcp", TIME, "--mcp", f"{FAULTS} exit-at-start", "--mcp", "no-such-server-cmd")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    time_line = next(line for line in lines if line.startswith("time  "))
    assert "stdio  ready  started " in time_line and "2 tools" in time_line and "mcp-server-time" in time_line
    assert any(line.startswith("faults  stdio  failed") for line in lines)
    assert "    error: it exited before answering (connection closed)" in lines
    assert "    stderr: faults: cannot open the database" in lines
    assert "    error: command not found: no-such-server-cmd" in lines


def test_mcp_logs_prints_what_a_server_wrote_to_stderr(cli):
    cli("mcp", "list", "--mcp", f"{FAULTS} exit-at-start")
    done = cli("mcp", "logs", "faults")
    assert done.returncode == 0
    assert "faults.py exit-at-start" in done.stdout and "faults: cannot open the database" in done.stdout
    unknown = cli("mcp", "logs", "nope")
    assert unknown.returncode == 2
    assert "no log for an MCP server named 'nope'" in unknown.stderr and "faults" in unknown.stderr


def test_mcp_list_without_servers_says_how_to_add_one(cli):
    done = cli("mcp", "list")
    assert done.returncode == 0 and "no MCP servers configured" in done.stdout
