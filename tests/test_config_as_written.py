"""`config trust` and `config show` as a newcomer meets them (issue 28, items 5 and 6): trust shows the
file as written and needs no variable set; show never cuts the file:line:column it is for, in a pipe
or at 80 columns, and marks the keys the backend does not use."""

from __future__ import annotations

import time
from pathlib import Path

import pexpect
import pytest

from tests.support.fakeserver import FakeServer, sse, text_stream
from tests.support.terminal import press, say, see, spawn

README_MCP = """\
backend: openai
base_url: http://127.0.0.1:9/v1
api_key: ${VLLM_API_KEY:-EMPTY}
stream: true
mcp_servers:
  docs:
    url: https://docs.example/mcp
    headers: {Authorization: "Bearer ${DOCS_TOKEN}"}
"""


def project(tmp_path: Path, text: str = README_MCP) -> Path:
    folder = tmp_path / "a-project-folder-with-a-long-enough-name"
    folder.mkdir()
    (folder / "toolchat.yaml").write_text(text)
    return folder


def test_config_trust_needs_no_variable_and_shows_the_file_as_written(run_cli, tmp_path):
    folder = project(tmp_path)
    trusting = run_cli("config", "trust", cwd=folder)
    assert trusting.returncode == 0, trusting.stderr
    assert "not set" not in trusting.stdout + trusting.stderr
    assert "api_key: ${VLLM_API_KEY:-***}" in trusting.stdout and "stream: true" in trusting.stdout
    assert "EMPTY" not in trusting.stdout  # a default is a literal value: hidden like one
    # the variable is needed only when the value is used: the docs server alone does not start, and says
    # where; the rest of the file is in force
    used = run_cli("tools", "list", cwd=folder)
    assert used.returncode == 0, used.stderr
    said = " ".join((used.stdout + used.stderr).split())
    assert f"mcp docs: could not start `https://docs.example/mcp`: {folder / 'toolchat.yaml'}:8:" in said
    assert "environment variable DOCS_TOKEN is not set" in said and "get_weather" in said


def test_a_variable_not_set_outside_an_mcp_server_stops_when_the_file_is_used(run_cli, tmp_path):
    folder = project(tmp_path, "backend: openai\nbase_url: ${MY_BASE_URL}\n")
    assert run_cli("config", "trust", cwd=folder).returncode == 0
    used = run_cli("ask", "hi", cwd=folder)
    assert used.returncode == 2 and f"{folder / 'toolchat.yaml'}:2:" in used.stderr
    assert "environment variable MY_BASE_URL is not set" in used.stderr


@pytest.mark.parametrize(
    "written",
    ["sk-literal-secret-0123456789", "${VLLM_API_KEY:-sk-literal-secret-0123456789}", "sk-literal-secret-${SUFFIX}"],
)
def test_a_literal_api_key_is_never_shown_by_trust_or_show(run_cli, tmp_path, written):
    folder = project(tmp_path, f"backend: openai\nbase_url: http://127.0.0.1:9/v1\napi_key: '{written}'\n")
    shown = run_cli("config", "show", cwd=folder)
    trusting = run_cli("config", "trust", cwd=folder)
    after = run_cli("config", "show", cwd=folder)
    for done in (shown, trusting, after):
        assert done.returncode == 0, done.stderr
        assert "literal-secret" not in done.stdout + done.stderr


def rows_of(lines: list[str]) -> dict[str, str]:
    return {line.split()[0]: line for line in lines if line.strip() and not line.startswith(" ")}


def assert_show_is_whole(lines: list[str], where: str) -> None:
    rows = rows_of(lines)
    for name, line in (("backend", "1:1"), ("api_key", "3:1"), ("stream", "4:1"), ("mcp_servers.docs", "6:3")):
        assert rows[name].rstrip().endswith(f" {where}:{line}"), rows[name]
    assert "(not used by the openai backend)" in rows["n_gpu_layers"] and "(not used" in rows["n_ctx"]
    assert "(not used" not in rows["base_url"] and "(not used" not in rows["max_retries"]
    assert "(the first model the server lists)" in rows["model"]
    assert "${VLLM_API_KEY:-***}" in rows["api_key"] and " true " in rows["stream"]


def test_config_show_in_a_pipe_cuts_nothing(run_cli, tmp_path):
    folder = project(tmp_path)
    shown = run_cli("config", "show", cwd=folder, env={"COLUMNS": "60"})
    assert shown.returncode == 0, shown.stderr
    assert_show_is_whole(shown.stdout.splitlines(), str(folder / "toolchat.yaml"))
    assert f"toolchat config trust {folder / 'toolchat.yaml'}`)" in shown.stdout  # the command on one line


@pytest.mark.terminal
def test_config_show_at_80_columns_keeps_file_line_column_whole(isolated_env, tmp_path):
    folder = project(tmp_path)
    child = spawn("config", "show", env=isolated_env, cwd=folder, columns=80, rows=60)
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0
    assert_show_is_whole(child.screen.transcript(), "toolchat.yaml")  # the full path is under "Files in force"


@pytest.mark.terminal
def test_answering_y_to_the_trust_question_says_it_was_taken(isolated_env, tmp_path):
    folder = project(tmp_path, "api_key: ${VLLM_API_KEY:-EMPTY}\nstream: true\nsystem: You are a pirate.\n")
    with FakeServer() as server:
        server.add(sse(text_stream("Arr.")))
        child = spawn("--base-url", server.url, "-m", "m", env=isolated_env, cwd=folder, columns=200)
        child.expect(r"Trust it and use it\?")
        shown = "\n".join(child.screen.transcript())
        assert "api_key: ${VLLM_API_KEY:-***}" in shown and "stream: true" in shown and "EMPTY" not in shown
        press(child, "y")
        see(child, f"trusted {folder / 'toolchat.yaml'}; an edit to it will need trust again")
        child.expect("›")
        say(child, "hello")
        child.expect("Arr.")  # the trusted file's system prompt is in use
        assert "pirate" in str(server.requests[0]["messages"])
        child.expect("›")
        time.sleep(0.3)  # the prompt takes the terminal before Ctrl-D, as in a person's session
        child.sendeof()
        child.expect(pexpect.EOF)
