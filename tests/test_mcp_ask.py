"""`toolchat ask` with real MCP servers, end to end: a subprocess against a scripted loopback model."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytest.importorskip("mcp")

from tests.support.fakeserver import FakeServer, openai_calls, sse, text_stream
from tests.support.mcp_helpers import FAULTS, SERVERS, TIME, git_repo, reaped, server_pids, wait_gone

TOKYO = [("time__get_current_time", {"timezone": "Asia/Tokyo"})]


@pytest.fixture
def server():
    with FakeServer(models=["fake"]) as running:
        yield running
        assert running.scripts == [], "scripted replies were left unused"


def ask(cli, server, *args, **kwargs):
    return cli("ask", "--base-url", server.url, "-m", "fake", "--no-bundled-tools", *args, **kwargs)


def tool_messages(server: FakeServer) -> list[dict]:
    return [m for m in server.requests[-1]["messages"] if m["role"] == "tool"]


def faults_config(folder: Path, pid_dir: Path, **server: object) -> Path:
    """A config with the fault server, its PID folder passed through `env` (nothing else is)."""
    entry = {
        "command": sys.executable,
        "args": [str(SERVERS / "faults.py")],
        "env": {"FAULTS_PID_DIR": str(pid_dir)},
        **server,
    }
    path = folder / "toolchat.yaml"
    path.write_text(json.dumps({"mcp_servers": {"faults": entry}}))
    return path


def test_ask_gets_the_time_in_tokyo_from_mcp_server_time(cli, server):
    server.add(sse(openai_calls(TOKYO)), sse(text_stream("It is evening in Tokyo.")))
    done = ask(cli, server, "--yes", "--mcp", TIME, "What time is it in Tokyo?")
    assert done.returncode == 0, done.stderr
    assert done.stdout == "It is evening in Tokyo.\n"
    offered = {t["function"]["name"]: t["function"] for t in server.requests[0]["tools"]}
    assert set(offered) == {"time__get_current_time", "time__convert_time"}
    assert offered["time__get_current_time"]["parameters"]["required"] == ["timezone"]
    answer = json.loads(tool_messages(server)[0]["content"])
    assert answer["timezone"] == "Asia/Tokyo" and answer["datetime"].endswith("+09:00")
    assert '→ time__get_current_time {"timezone": "Asia/Tokyo"}' in done.stderr


def test_ask_runs_git_status_of_a_temporary_repository_from_the_config(cli, server, tmp_path):
    repo = git_repo(tmp_path / "repo")
    (repo / "toolchat.yaml").write_text(
        f"mcp_servers:\n  git:\n    command: {Path(sys.executable).parent / 'mcp-server-git'}\n"
        "    args: [--repository, .]\n"
    )
    server.add(sse(openai_calls([("git__git_status", {"repo_path": str(repo)})])), sse(text_stream("One new file.")))
    done = ask(cli, server, "-c", "toolchat.yaml", "--allow", "git__git_status", "What changed?", cwd=repo)
    assert done.returncode == 0, done.stderr
    status = tool_messages(server)[0]["content"]
    assert "On branch main" in status and "new-notes.txt" in status


def test_every_kind_of_fault_is_an_answer_to_the_model(cli, server, tmp_path):
    pid_dir = tmp_path / "pids"
    pid_dir.mkdir()
    config = faults_config(tmp_path, pid_dir, timeout=1)
    calls = [
        ("faults__image", {}),
        ("faults__fail", {}),
        ("faults__big", {}),
        ("faults__hang", {"seconds": 30}),
        ("faults__echo", {"text": 5}),
    ]
    server.add(sse(openai_calls(calls)), sse(text_stream("Noted.")))
    started = time.monotonic()
    done = ask(cli, server, "-c", str(config), "--yes", "Try them all")
    assert done.returncode == 0, done.stderr
    image, fail, big, hang, invalid = (m["content"] for m in tool_messages(server))
    assert image == "a red pixel\n[image/png, 14 kB]"
    assert fail.startswith("Error") and "the disk is full" in fail
    assert big.startswith("x" * 20000 + "\n[output cut: 980000 of 1000000 characters not shown]")
    assert hang == "Error: timed out after 1 s; the request was cancelled."
    assert "invalid arguments" in invalid and "text" in invalid  # checked against the inputSchema first
    assert time.monotonic() - started < 25
    assert wait_gone(server_pids(pid_dir), 1) == []


def test_a_server_that_exits_while_idle_costs_no_approved_call(cli, server, tmp_path):
    pid_dir = tmp_path / "pids"
    pid_dir.mkdir()
    config = faults_config(tmp_path, pid_dir)
    # the model takes over a second to ask again: the server has exited (0.2 s after answering) by then
    second = sse(openai_calls([("faults__echo", {"text": "still here"})]), delay=0.3)
    server.add(sse(openai_calls([("faults__leave", {})])), second, sse(text_stream("Done.")))
    done = ask(cli, server, "-c", str(config), "--yes", "Leave, then echo")
    assert done.returncode == 0, done.stderr
    assert [m["content"] for m in tool_messages(server)] == ["leaving", "still here"]
    assert [line for line in done.stderr.splitlines() if "restarting" in line] == [
        "toolchat: mcp faults stopped; restarting it"
    ]
    assert len(server_pids(pid_dir)) == 2
    assert wait_gone(server_pids(pid_dir), 1) == []


def test_a_server_that_cannot_start_is_one_line_and_the_rest_go_on(cli, server):
    server.add(sse(openai_calls(TOKYO)), sse(text_stream("Evening.")))
    done = ask(cli, server, "--yes", "--mcp", f"{FAULTS} exit-at-start", "--mcp", TIME, "Time in Tokyo?")
    assert done.returncode == 0, done.stderr
    lines = [line for line in done.stderr.splitlines() if "mcp faults" in line]
    assert len(lines) == 1
    assert "could not start" in lines[0] and "faults.py exit-at-start" in lines[0]
    assert "cannot open the database" in lines[0]
    assert "environment:" not in done.stdout  # its stderr never reaches stdout


@pytest.mark.parametrize("kill", [signal.SIGTERM, signal.SIGKILL], ids=["SIGTERM", "SIGKILL"])
def test_no_server_nor_its_daemon_outlives_ask_even_after_a_signal_mid_call(server, isolated_env, tmp_path, kill):
    if kill == signal.SIGKILL and not sys.platform.startswith("linux"):
        pytest.skip("servers die with toolchat's kill -9 through PR_SET_PDEATHSIG, on Linux")
    pid_dir = tmp_path / "pids"
    pid_dir.mkdir()
    daemon = ["daemon-at-start"] if sys.platform.startswith("linux") else []  # reaped there only
    config = faults_config(tmp_path, pid_dir, args=[str(SERVERS / "faults.py"), *daemon])
    server.add(sse(openai_calls([("faults__hang", {"seconds": 600})])))
    with reaped(pid_dir):
        _ask_then_kill_mid_call(server, isolated_env, tmp_path, config, kill)
        assert wait_gone(server_pids(pid_dir), 3) == []


def _ask_then_kill_mid_call(server, isolated_env, tmp_path, config, kill):
    pid_dir = tmp_path / "pids"
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "toolchat",
            "ask",
            "-c",
            str(config),
            "--base-url",
            server.url,
            "-m",
            "fake",
            "--no-bundled-tools",
            "--yes",
            "hang",
        ],
        env=isolated_env,
        cwd=tmp_path,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    deadline = time.monotonic() + 30
    while "faults__hang" not in "".join(str(r) for r in server.requests) or not os.listdir(pid_dir):
        assert time.monotonic() < deadline and process.poll() is None
        time.sleep(0.1)
    time.sleep(0.5)  # the call is under way
    process.send_signal(kill)
    _, err = process.communicate(timeout=10)
    assert process.returncode == (143 if kill == signal.SIGTERM else -signal.SIGKILL), err


def test_no_setsid_daemon_of_a_server_outlives_ask(cli, server, tmp_path):
    if not sys.platform.startswith("linux"):
        pytest.skip("the launcher reaps a server's daemons as a child subreaper, on Linux")
    pid_dir = tmp_path / "pids"
    pid_dir.mkdir()
    config = faults_config(tmp_path, pid_dir, args=[str(SERVERS / "faults.py"), "daemon-at-start"])
    server.add(sse(openai_calls([("faults__daemon", {})])), sse(text_stream("Started.")))
    with reaped(pid_dir):
        done = ask(cli, server, "-c", str(config), "--yes", "Start a daemon")
        assert done.returncode == 0, done.stderr
        assert tool_messages(server)[0]["content"] == "started a daemon"
        daemons = [p.name for p in pid_dir.iterdir() if p.read_text() == "daemon"]
        assert len(daemons) == 2  # one forked at start, one during the call; both ignore SIGTERM
        assert wait_gone(server_pids(pid_dir), 3) == []


def test_servers_of_an_untrusted_project_config_never_start(cli, server, tmp_path):
    pid_dir = tmp_path / "pids"
    pid_dir.mkdir()
    project = tmp_path / "project"
    project.mkdir()
    faults_config(project, pid_dir)
    done = cli("ask", "--base-url", server.url, "-m", "fake", "hello", cwd=project)
    assert done.returncode == 2
    assert "toolchat config trust" in done.stderr
    time.sleep(0.5)
    assert list(pid_dir.iterdir()) == []


def test_without_servers_the_mcp_sdk_is_never_imported(cli, isolated_env, tmp_path):
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "toolchat", "tools", "list"],
        env=isolated_env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    imported = {line.rsplit("|", 1)[-1].strip() for line in done.stderr.splitlines() if line.startswith("import time:")}
    assert "mcp" not in imported and "anyio" not in imported and "toolchat.mcp" not in imported


def test_servers_configured_without_the_sdk_exit_2_with_the_install_command(isolated_env, tmp_path):
    (tmp_path / "toolchat.yaml").write_text("mcp_servers:\n  time:\n    command: mcp-server-time\n")
    code = (
        "import sys; sys.modules['mcp'] = None; from toolchat.commands.app import main; "
        "sys.exit(main(['ask', '-c', 'toolchat.yaml', '--base-url', 'http://127.0.0.1:9/v1', 'hi']))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        env=isolated_env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )
    assert done.returncode == 2
    assert "pip install 'toolchat[mcp]'" in done.stderr


def test_allow_and_deny_take_server_patterns_and_tools_limits_what_is_offered(cli, server, tmp_path):
    repo = git_repo(tmp_path / "repo")
    (repo / "toolchat.yaml").write_text(
        json.dumps(
            {
                "mcp_servers": {
                    "time": {"command": str(Path(sys.executable).parent / "mcp-server-time")},
                    "git": {
                        "command": str(Path(sys.executable).parent / "mcp-server-git"),
                        "args": ["--repository", "."],
                        "tools": ["git_status", "git_log", "git_blame"],
                    },
                }
            }
        )
    )
    server.add(sse(openai_calls(TOKYO)), sse(text_stream("Evening.")))
    done = ask(cli, server, "-c", "toolchat.yaml", "--allow", "time__*", "--deny", "git__git_log", "Time?", cwd=repo)
    assert done.returncode == 0, done.stderr
    offered = sorted(t["function"]["name"] for t in server.requests[0]["tools"])
    assert offered == ["git__git_status", "time__convert_time", "time__get_current_time"]
    assert "Asia/Tokyo" in tool_messages(server)[0]["content"]  # allowed by the pattern: no terminal needed
    assert "mcp git: offers no tool named 'git_blame'" in done.stderr


def test_an_http_server_with_a_bearer_token_from_the_environment(cli, server, tmp_path):
    from tests.support.mcp_helpers import HttpServer
    from tests.support.ports import free_port

    docs = HttpServer(free_port(), token="tok-from-env-123456")
    try:
        (tmp_path / "toolchat.yaml").write_text(
            f"mcp_servers:\n  docs:\n    url: {docs.url}\n    headers: {{Authorization: 'Bearer ${{DOCS_TOKEN}}'}}\n"
        )
        server.add(sse(openai_calls([("docs__lookup", {"word": "cache"})])), sse(text_stream("Page 7.")))
        done = ask(
            cli,
            server,
            "-c",
            "toolchat.yaml",
            "--yes",
            "--json",
            "Where is cache?",
            env={"DOCS_TOKEN": "tok-from-env-123456"},
        )
        assert done.returncode == 0, done.stderr
        call = json.loads(done.stdout)["tool_calls"][0]
        assert (call["output"], call["source"]) == ("docs: cache is documented on page 7", "mcp docs")
        assert "tok-from-env-123456" not in done.stdout + done.stderr
    finally:
        docs.stop()


def test_tool_choice_naming_a_tool_of_a_server_that_failed_exits_2(cli, server):
    done = ask(cli, server, "--yes", "--mcp", f"{FAULTS} exit-at-start", "--tool-choice", "faults__echo", "Echo")
    assert done.returncode == 2
    assert "mcp faults: could not start" in done.stderr
    assert "--tool-choice names 'faults__echo', which is not an offered tool" in done.stderr


def mcp_json_beside_time(folder: Path, **others: dict) -> None:
    """A pasted .mcp.json with mcp-server-time and `others`, named by a toolchat.yaml in `folder`."""
    time_server = {"command": str(Path(sys.executable).parent / "mcp-server-time"), "args": ["--local-timezone", "UTC"]}
    (folder / ".mcp.json").write_text(json.dumps({"mcpServers": {"time": time_server, **others}}))
    (folder / "toolchat.yaml").write_text("mcp_servers: .mcp.json\n")


def test_servers_from_a_pasted_mcp_json_file_and_a_disabled_one(cli, server, tmp_path):
    pid_dir = tmp_path / "pids"
    pid_dir.mkdir()
    off = {"command": sys.executable, "args": [str(SERVERS / "faults.py")], "env": {"FAULTS_PID_DIR": str(pid_dir)}}
    mcp_json_beside_time(tmp_path, off={**off, "enabled": False})
    server.add(sse(openai_calls(TOKYO)), sse(text_stream("Evening.")))
    done = ask(cli, server, "-c", "toolchat.yaml", "--yes", "Time in Tokyo?")
    assert done.returncode == 0, done.stderr
    assert "Asia/Tokyo" in tool_messages(server)[0]["content"]
    assert not any(t["function"]["name"].startswith("off__") for t in server.requests[0]["tools"])
    assert list(pid_dir.iterdir()) == []  # a disabled server never starts


def test_a_variable_not_set_in_one_server_of_an_mcp_json_stops_only_that_server(cli, server, tmp_path):
    mcp_json_beside_time(tmp_path, docs={"command": sys.executable, "env": {"DOCS_TOKEN": "${DOCS_TOKEN_NOT_SET}"}})
    server.add(sse(openai_calls(TOKYO)), sse(text_stream("Evening.")))
    done = ask(cli, server, "-c", "toolchat.yaml", "--yes", "Time in Tokyo?")
    assert done.returncode == 0, done.stderr
    assert "Asia/Tokyo" in tool_messages(server)[0]["content"]
    assert "mcp docs:" in done.stderr and "environment variable DOCS_TOKEN_NOT_SET is not set" in done.stderr
    assert f"{tmp_path / '.mcp.json'}:" in done.stderr
