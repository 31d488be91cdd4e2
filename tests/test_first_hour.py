"""What a newcomer meets in the first hour (issue 28), as they would meet it."""

from __future__ import annotations

import os
import sys

import pytest

from tests.support.fakeserver import FakeServer, openai_calls, sse, text_stream

TOKYO = [("time__get_current_time", {"timezone": "Asia/Tokyo"})]


@pytest.fixture
def server():
    pytest.importorskip("mcp")
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


CALCULATE = {"type": "function", "function": {"name": "calculate", "description": "Evaluate arithmetic."}}
DIFF = """Write a commit message for this diff

diff --git a/x.py b/x.py
--- a/x.py
+++ b/x.py
@@ -1,3 +1,4 @@
 import os
+import sys
"""


@pytest.mark.parametrize("question", ["What's 17 * 23?", "(2 + 3) * 4 = ?", "what is 10 / 4", "2**10?"])
def test_a_sum_of_numbers_offers_the_bundled_model_its_calculator(question):
    from toolchat.backends.bundled import tools_named

    assert tools_named(question, [CALCULATE]) == [CALCULATE]


@pytest.mark.parametrize("question", [DIFF, "Read a/x.py", "due 2026-11-25", "half is 1/2", "v1.2 + 3"])
def test_a_path_a_date_or_a_diff_is_not_a_sum(question):
    from toolchat.backends.bundled import tools_named

    assert tools_named(question, [CALCULATE]) == []
