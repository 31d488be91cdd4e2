"""What a newcomer meets in the first hour (issue 28), as they would meet it."""

from __future__ import annotations

import os
import sys

import pytest

pytest.importorskip("mcp")

from fakeserver import FakeServer, openai_calls, sse, text_stream

TOKYO = [("time__get_current_time", {"timezone": "Asia/Tokyo"})]


@pytest.fixture
def server():
    with FakeServer(models=["fake"]) as running:
        yield running
        assert running.scripts == [], "scripted replies were left unused"


def without_venv_on_path() -> str:
    """PATH as a user has it who never activated the venv toolchat was installed into (and has no
    other copy of the server installed: only the system's folders)."""
    assert not os.path.exists("/usr/bin/mcp-server-time") and not os.path.exists("/bin/mcp-server-time")
    return "/usr/bin:/bin"


def test_an_mcp_server_installed_beside_toolchat_is_found_without_activating_the_venv(cli, server):
    server.add(sse(openai_calls(TOKYO)), sse(text_stream("It is evening in Tokyo.")))
    done = cli(
        "ask", "--base-url", server.url, "-m", "fake", "--no-bundled-tools", "--yes",
        "--mcp", "mcp-server-time --local-timezone UTC", "What time is it in Tokyo?",
        env={"PATH": without_venv_on_path()},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout == "It is evening in Tokyo.\n"
    assert '→ time__get_current_time {"timezone": "Asia/Tokyo"}' in done.stderr


def test_a_command_found_nowhere_names_the_folders_searched(cli, server, tmp_path):
    server.add(sse(text_stream("No server, still an answer.")))
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    done = cli(
        "ask", "--base-url", server.url, "-m", "fake", "--no-bundled-tools",
        "--mcp", "mcp-server-that-nobody-installed", "Hello?",
        env={"PATH": str(empty)},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    line = next(line for line in done.stderr.splitlines() if "mcp-server-that-nobody-installed" in line)
    assert "command not found" in line
    assert str(empty) in line and os.path.dirname(sys.executable) in line
