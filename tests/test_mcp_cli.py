"""The MCP commands as a user runs them: `toolchat mcp list`, `toolchat mcp logs NAME`."""

from __future__ import annotations

import json
import sys

import pytest

pytest.importorskip("mcp")

from tests.support.mcp_helpers import BIN, FAULTS, SERVERS, TIME


def test_mcp_list_shows_each_server_state_tools_or_error(cli):
    done = cli("mcp", "list", "--mcp", TIME, "--mcp", f"{FAULTS} exit-at-start", "--mcp", "no-such-server-cmd")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    time_line = next(line for line in lines if line.startswith("time  "))
    assert "stdio  ready  started " in time_line and "2 tools" in time_line and "mcp-server-time" in time_line
    assert any(line.startswith("faults  stdio  failed") for line in lines)
    assert "    error: it exited before answering (connection closed)" in lines
    assert "    stderr: faults: cannot open the database" in lines
    assert any(line.startswith("    error: command not found: no-such-server-cmd (not found in ") for line in lines)


def test_mcp_logs_prints_what_a_server_wrote_to_stderr(cli):
    cli("mcp", "list", "--mcp", f"{FAULTS} exit-at-start")
    done = cli("mcp", "logs", "faults")
    assert done.returncode == 0
    assert "faults.py exit-at-start" in done.stdout and "faults: cannot open the database" in done.stdout
    unknown = cli("mcp", "logs", "nope")
    assert unknown.returncode == 2
    assert "no log for an MCP server named 'nope'" in unknown.stderr and "faults" in unknown.stderr


def test_servers_whose_names_differ_only_in_punctuation_keep_their_own_logs(cli, tmp_path):
    faults = f"[{FAULTS.split()[1]!r}]"
    (tmp_path / "toolchat.yaml").write_text(
        "mcp_servers:\n"
        f"  docs.v1:\n    command: {sys.executable}\n    args: {faults[:-1]}, exit-at-start]\n"
        f"  docs_v1:\n    command: {sys.executable}\n    args: {faults[:-1]}, garbage-at-start]\n"
        "    startup_timeout: 1\n"
    )
    assert cli("config", "trust", cwd=tmp_path).returncode == 0
    cli("mcp", "list", cwd=tmp_path)
    dotted, underscored = cli("mcp", "logs", "docs.v1", cwd=tmp_path), cli("mcp", "logs", "docs_v1", cwd=tmp_path)
    assert dotted.returncode == 0 and underscored.returncode == 0, dotted.stderr + underscored.stderr
    assert "exit-at-start" in dotted.stdout and "garbage-at-start" not in dotted.stdout
    assert "garbage-at-start" in underscored.stdout and "exit-at-start" not in underscored.stdout


def test_mcp_list_without_servers_says_how_to_add_one(cli):
    done = cli("mcp", "list")
    assert done.returncode == 0 and "no MCP servers configured" in done.stdout


def test_mcp_alone_is_mcp_list_not_an_error_with_help(cli, tmp_path):
    time_config(tmp_path)
    assert cli("config", "trust", cwd=tmp_path).returncode == 0
    alone = cli("mcp", cwd=tmp_path)
    assert alone.returncode == 0, alone.stderr
    time_line = next(line for line in alone.stdout.splitlines() if line.startswith("time  "))
    assert "stdio  ready  started " in time_line and "2 tools" in time_line
    assert "Usage:" not in alone.stdout + alone.stderr


def time_config(folder, name: str = "time"):
    path = folder / "toolchat.yaml"
    path.write_text(
        f"mcp_servers:\n  {name}:\n    command: {BIN / 'mcp-server-time'}\n    args: [--local-timezone, UTC]\n"
    )
    return path


def test_tools_list_show_and_run_include_mcp_tools(cli, tmp_path):
    config = str(time_config(tmp_path))
    listed = cli("tools", "list", "-c", config, "--no-bundled-tools")
    assert listed.returncode == 0, listed.stderr
    row = next(line for line in listed.stdout.splitlines() if line.startswith("time__get_current_time"))
    assert row.rstrip().endswith("mcp time")
    shown = cli("tools", "show", "time__convert_time", "-c", config)
    assert shown.returncode == 0 and "target_timezone" in shown.stdout and "mcp time" in shown.stdout
    ran = cli("tools", "run", "time__get_current_time", "-c", config, "--args", '{"timezone": "Asia/Tokyo"}')
    assert ran.returncode == 0, ran.stderr
    assert '"timezone": "Asia/Tokyo"' in ran.stdout
    schema = cli("tools", "schema", "time__get_current_time", "-c", config)
    assert json.loads(schema.stdout)[0]["function"]["name"] == "time__get_current_time"


def test_a_plugin_tool_with_an_mcp_tools_name_is_an_error_naming_both(cli, tmp_path, plugin_dir):
    folder = plugin_dir(clash='def time__get_current_time(timezone: str) -> str:\n    """Mine."""\n    return "x"\n')
    done = cli("tools", "list", "-c", str(time_config(tmp_path)), "--tools", str(folder))
    assert done.returncode == 2
    assert "two tools are named 'time__get_current_time'" in done.stderr
    assert "clash.py" in done.stderr and "mcp time" in done.stderr


def test_ask_json_names_each_calls_source(cli, tmp_path):
    from tests.support.fakeserver import FakeServer, openai_calls, sse, text_stream

    with FakeServer(models=["fake"]) as server:
        server.add(
            sse(openai_calls([("time__get_current_time", {"timezone": "UTC"}), ("calculate", {"expression": "2+2"})])),
            sse(text_stream("Done.")),
        )
        done = cli(
            "ask",
            "--json",
            "--yes",
            "-c",
            str(time_config(tmp_path)),
            "--base-url",
            server.url,
            "-m",
            "fake",
            "Time and sum?",
        )
        assert server.scripts == []
    assert done.returncode == 0, done.stderr
    calls = json.loads(done.stdout)["tool_calls"]
    assert [(c["name"], c["source"]) for c in calls] == [
        ("time__get_current_time", "mcp time"),
        ("calculate", "bundled"),
    ]


def test_a_token_a_server_echoes_to_stderr_is_hidden_everywhere(cli, tmp_path):
    (tmp_path / "toolchat.yaml").write_text(
        json.dumps(
            {
                "mcp_servers": {
                    "faults": {
                        "command": sys.executable,
                        "args": [str(SERVERS / "faults.py"), "exit-at-start"],
                        "env": {"FAULTS_TOKEN": "${SERVICE_TOKEN}"},
                    }
                }
            }
        )
    )
    token = {"SERVICE_TOKEN": "tok-9f8e7d6c5b4a"}
    listed = cli("mcp", "list", "-c", "toolchat.yaml", env=token)
    assert "    stderr: faults: login with token *** refused" in listed.stdout.splitlines()
    logs = cli("mcp", "logs", "faults", "-c", "toolchat.yaml", env=token)
    assert "login with token *** refused" in logs.stdout
    asked = cli("ask", "-c", "toolchat.yaml", "--base-url", "http://127.0.0.1:9/v1", "hi", env=token)
    assert "could not start" in asked.stderr
    assert "tok-9f8e7d6c5b4a" not in listed.stdout + logs.stdout + asked.stderr + asked.stdout
