"""Sandboxed tools (Landlock): what a plugin tool, and everything it starts, may write and connect
to once it runs, as a user meets it with `toolchat tools run` in a real subprocess.

The project folder is the test's tmp_path; HOME is a folder made outside it. These tests run as
root here: Landlock holds for root too (root's DAC bypass does not bypass it), so nothing below
changes with the user; root can write only where the sandbox allows, like anyone else."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import sys
import threading
from pathlib import Path

import pytest

from tests.support.scratch import killed, maker
from toolchat.sandbox import landlock

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Landlock is Linux's")

TOOLS = '''
import os, socket, subprocess
from pathlib import Path

def write_home(name: str) -> str:
    """Write a file in HOME."""
    Path(os.environ["HOME"], name).write_text("escaped")
    return "wrote"

def write_here(name: str) -> str:
    """Write a file in the project folder."""
    Path(name).write_text("fine")
    return "wrote " + name

def shell_home(name: str) -> str:
    """A child process writes in HOME."""
    done = subprocess.run(["sh", "-c", 'echo x > "$HOME/$0"', name], capture_output=True, text=True)
    return f"exit {done.returncode}: {done.stderr.strip()}"

def connect(port: int) -> str:
    """Open a TCP connection to a loopback port."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as conn:
        return conn.recv(10).decode()

def git_commit(message: str) -> str:
    """Commit everything in the project folder with git."""
    steps = [["init", "-q"], ["add", "-A"], ["-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", message]]
    for step in steps:
        done = subprocess.run(["git", *step], capture_output=True, text=True)
        if done.returncode:
            return f"git {step[0]} failed: {done.stderr.strip()}"
    return subprocess.run(["git", "log", "--format=%s"], capture_output=True, text=True).stdout.strip()

def import_from(folder: str) -> str:
    """Import a module from a folder and give its VALUE."""
    import importlib, sys
    sys.path.insert(0, folder)
    return str(importlib.import_module("outside").VALUE)

def temp_folder() -> str:
    """Write in TMPDIR and say where it is."""
    import tempfile
    with tempfile.NamedTemporaryFile(delete=False) as f:
        f.write(b"x")
    return os.environ["TMPDIR"] + "|" + f.name
'''


@pytest.fixture
def home(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("home")  # outside the project folder (tmp_path)


@pytest.fixture
def box(cli, plugin_dir, home, tmp_path):
    folder = plugin_dir(probe=TOOLS)

    def run(tool: str, arguments: dict, *flags: str, config: str | None = None, env: dict | None = None):
        extra = []
        if config is not None:
            (tmp_path / "sandbox.yaml").write_text(config)
            extra = ["-c", str(tmp_path / "sandbox.yaml")]
        return cli(
            "tools",
            "run",
            tool,
            "--args",
            json.dumps(arguments),
            "-t",
            str(folder),
            *flags,
            *extra,
            env={"HOME": str(home), **(env or {})},
        )

    return run


@pytest.fixture
def loopback():
    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(10)
    accepted: list[socket.socket] = []

    def serve() -> None:
        try:
            conn, _ = server.accept()
            conn.sendall(b"hello")
            accepted.append(conn)
        except OSError:
            pass

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield server.getsockname()[1], accepted
    with contextlib.suppress(OSError):  # wakes an accept still waiting: closing alone does not (5 s a test)
        server.shutdown(socket.SHUT_RDWR)
    server.close()
    thread.join(5)
    assert not thread.is_alive()
    for conn in accepted:
        conn.close()


def test_a_plugin_writing_to_home_is_refused_and_told_why(box, home):
    done = box("write_home", {"name": "escape.txt"})
    assert not (home / "escape.txt").exists()
    assert "PermissionError" in done.stderr
    assert "(the sandbox allows writes only in the project folder)" in done.stderr


def test_a_plugin_writes_in_the_project(box, tmp_path):
    done = box("write_here", {"name": "made.txt"})
    assert done.stdout.strip() == "wrote made.txt", done.stderr
    assert (tmp_path / "made.txt").read_text() == "fine"


def test_a_child_process_of_the_tool_is_confined_too(box, home):
    done = box("shell_home", {"name": "escape2.txt"})
    assert not (home / "escape2.txt").exists()
    assert "exit 0" not in done.stdout and "Permission denied" in done.stdout


def test_a_tcp_connection_is_refused(box, loopback):
    port, accepted = loopback
    done = box("connect", {"port": port})
    assert "PermissionError" in done.stderr and "refuses TCP connections" in done.stderr
    assert accepted == []


def test_sandbox_network_lets_the_named_tool_connect(box, loopback):
    port, _ = loopback
    done = box("connect", {"port": port}, config="sandbox:\n  network: [conn*]\n")
    assert done.stdout.strip() == "hello", done.stderr


def test_no_sandbox_lifts_it_for_one_run(box, home):
    done = box("write_home", {"name": "free.txt"}, "--no-sandbox")
    assert done.stdout.strip() == "wrote", done.stderr
    assert (home / "free.txt").exists()


def test_sandbox_write_adds_a_folder_relative_to_the_config(box, home, tmp_path):
    relative = os.path.relpath(home, tmp_path)  # the config file is in tmp_path
    done = box("write_home", {"name": "allowed.txt"}, config=f"sandbox:\n  write: [{relative}]\n")
    assert done.stdout.strip() == "wrote", done.stderr
    assert (home / "allowed.txt").read_text() == "escaped"


def test_git_works_in_the_project(box, tmp_path):
    (tmp_path / "notes.txt").write_text("x")
    done = box("git_commit", {"message": "first"})  # .git/index.lock, objects, refs: all in the project
    assert done.stdout.strip() == "first", done.stderr
    assert (tmp_path / ".git" / "HEAD").exists()


def test_pythons_pycache_outside_the_project_fails_silently(box, home):
    (home / "outside.py").write_text("VALUE = 42\n")
    writes_bytecode = {"PYTHONDONTWRITEBYTECODE": ""}  # as Python does by default
    done = box("import_from", {"folder": str(home)}, env=writes_bytecode)
    assert (done.returncode, done.stdout.strip()) == (0, "42"), done.stderr
    assert "Error" not in done.stdout + done.stderr and not (home / "__pycache__").exists()
    unconfined = box("import_from", {"folder": str(home)}, "--no-sandbox", env=writes_bytecode)  # the test can fail:
    assert unconfined.stdout.strip() == "42" and (home / "__pycache__").exists()  # Python writes it


def test_read_only_mode_refuses_project_writes_but_not_the_temp_folder(box, tmp_path):
    done = box("write_here", {"name": "nope.txt"}, config="sandbox:\n  mode: read-only\n")
    assert not (tmp_path / "nope.txt").exists()
    assert "PermissionError" in done.stderr
    done = box("temp_folder", {}, config="sandbox:\n  mode: read-only\n")
    tmpdir, file = done.stdout.strip().split("|")
    assert Path(tmpdir).name.startswith("toolchat-call-") and file.startswith(tmpdir)
    assert not Path(tmpdir).exists()  # removed after the call


@pytest.fixture
def no_landlock(monkeypatch):
    """The Landlock system calls fail as on a kernel without it (ENOSYS) or with it disabled
    (EOPNOTSUPP), at the lowest edge: libc's syscall(2). The tool worker is forked afresh from
    this process, so its calls' children meet the same kernel."""
    import ctypes
    import errno

    from toolchat.sandbox import policy
    from toolchat.tools.isolation import worker

    def play(code: int) -> None:
        def missing(*args: object) -> int:
            ctypes.set_errno(code)
            return -1

        worker.stop()
        monkeypatch.setattr(landlock, "_syscall", missing)
        monkeypatch.setattr(policy, "ENFORCER", policy.Landlock())

    play(errno.ENOSYS)
    yield play
    worker.stop()


def test_without_landlock_tools_run_unconfined_and_the_run_is_told_once(no_landlock, run_cli, plugin_dir, home):
    import errno

    folder = plugin_dir(probe=TOOLS)
    target = home / "unconfined.txt"
    args = ("tools", "run", "write_here", "--args", json.dumps({"name": str(target)}), "-t", str(folder))
    done = run_cli(*args)
    assert done.stdout.strip() == f"wrote {target}", done.stderr
    assert done.stderr.count("this kernel has no Landlock") == 1
    assert "tools run unconfined" in done.stderr
    no_landlock(errno.EOPNOTSUPP)
    done = run_cli("sandbox", "-t", str(folder))
    assert "Landlock: not available (Landlock is disabled in this kernel" in done.stdout
    assert "write_here" in done.stdout and "sandbox: none (Landlock is disabled" in done.stdout


def test_without_landlock_required_refuses_to_run_tools(no_landlock, run_cli, plugin_dir, home, tmp_path):
    folder = plugin_dir(probe=TOOLS)
    (tmp_path / "box.yaml").write_text("sandbox:\n  required: true\n")
    target = home / "never.txt"
    args = ("tools", "run", "write_here", "--args", json.dumps({"name": str(target)}), "-t", str(folder))
    done = run_cli(*args, "-c", str(tmp_path / "box.yaml"))
    assert not target.exists()
    assert "tools will not run (sandbox.required)" in done.stderr
    assert "the sandbox is required (sandbox.required) but cannot be enforced" in done.stderr
    assert "the tool was not run" in done.stderr


def test_the_sandbox_command_reports_this_machine_and_each_tool(cli, plugin_dir, tmp_path):
    folder = plugin_dir(probe=TOOLS)
    (tmp_path / "box.yaml").write_text("sandbox:\n  network: [connect]\n")
    done = cli("sandbox", "-t", str(folder), "-c", str(tmp_path / "box.yaml"))
    lines = done.stdout.splitlines()
    assert f"  Landlock ABI {landlock.abi()}" in lines
    assert "  TCP bind and connect: refused unless allowed" in lines
    assert any("UDP" in line and "not covered" in line for line in lines)
    rows = {line.split()[0]: line.split(None, 1)[1].strip() for line in lines if line.split()[:1] and "writes:" in line}
    assert rows["connect"] == "writes: project; network: yes"
    assert rows["write_home"] == "writes: project; network: no"
    off = cli("sandbox", "-t", str(folder), "--no-sandbox")
    assert "sandbox: off for this run (--no-sandbox)" in off.stdout
    first = cli("--no-sandbox", "sandbox", "-t", str(folder))  # before the command, as `--help` would be
    assert first.returncode == 0 and "sandbox: off for this run (--no-sandbox)" in first.stdout, first.stderr


SERVER = """
import os, runpy, sys
try:
    with open(os.environ["ESCAPE"], "w") as f:
        f.write("escaped")
except PermissionError as exc:
    with open("refused.txt", "w") as f:  # its own folder stays writable
        f.write(str(exc))
if os.environ.get("SCRATCH"):  # and its own temporary folder is writable
    with open(os.path.join(os.environ["TMPDIR"], "scratch"), "w") as f, open("tmpdir.txt", "w") as said:
        f.write("x")
        said.write(os.environ["TMPDIR"])
sys.argv = [os.environ["FAULTS"], "serve"]
runpy.run_path(os.environ["FAULTS"], run_name="__main__")
"""


def test_a_sandboxed_mcp_server_cannot_write_outside_its_folder_and_still_serves(cli, tmp_path, home):
    pytest.importorskip("mcp")
    from tests.support.mcp_helpers import SERVERS

    folder = tmp_path / "server"
    folder.mkdir()
    (folder / "wrapped.py").write_text(SERVER)
    escape = home / "mcp-escape.txt"
    config = tmp_path / "mcp.yaml"
    entry = {
        "command": sys.executable,
        "args": [str(folder / "wrapped.py")],
        "cwd": str(folder),
        "env": {"ESCAPE": str(escape), "FAULTS": str(SERVERS / "faults.py")},
        "sandbox": True,
    }
    config.write_text(json.dumps({"mcp_servers": {"f": entry}}))
    ran = cli("tools", "run", "f__echo", "-c", str(config), "--args", '{"text": "still here"}')
    assert "still here" in ran.stdout, ran.stderr
    assert not escape.exists()
    assert "Permission denied" in (folder / "refused.txt").read_text()
    entry["sandbox"] = False  # the same server, unconfined: it escapes (the test can fail)
    config.write_text(json.dumps({"mcp_servers": {"f": entry}}))
    ran = cli("tools", "run", "f__echo", "-c", str(config), "--args", '{"text": "again"}')
    assert "again" in ran.stdout and escape.read_text() == "escaped"


def test_a_sandboxed_mcp_servers_temp_folder_is_gone_once_toolchat_exits(cli, tmp_path, tmp_path_factory):
    pytest.importorskip("mcp")
    from tests.support.mcp_helpers import SERVERS

    temps = tmp_path_factory.mktemp("temps")  # toolchat's TMPDIR, outside the project
    folder = tmp_path / "server"
    folder.mkdir()
    (folder / "wrapped.py").write_text(SERVER)
    entry = {
        "command": sys.executable,
        "args": [str(folder / "wrapped.py")],
        "cwd": str(folder),
        "env": {"ESCAPE": str(temps / "escape.txt"), "FAULTS": str(SERVERS / "faults.py"), "SCRATCH": "1"},
        "sandbox": True,
    }
    (tmp_path / "mcp.yaml").write_text(json.dumps({"mcp_servers": {"f": entry}}))
    for _ in range(2):  # each run's folder is its own, and each goes
        args = ("tools", "run", "f__echo", "-c", str(tmp_path / "mcp.yaml"), "--args", '{"text": "hi"}')
        ran = cli(*args, env={"TMPDIR": str(temps)})
        assert "hi" in ran.stdout, ran.stderr
        used = Path((folder / "tmpdir.txt").read_text())
        assert used.parent == temps and used.name.startswith("toolchat-mcp-")  # the server wrote in it
        assert not used.exists()
    assert sorted(p.name for p in temps.iterdir()) == []


def test_folders_a_killed_toolchat_left_behind_are_removed_at_the_next_start(cli, tmp_path, tmp_path_factory, request):
    pytest.importorskip("mcp")
    from tests.support.mcp_helpers import SERVERS

    temps = tmp_path_factory.mktemp("temps")
    living, alive = maker(temps, "call")  # a toolchat still running keeps its own
    request.addfinalizer(lambda: killed(living))
    gone, stale = maker(temps, "mcp")
    killed(gone)  # a toolchat killed with -9 left its folder
    (stale / "inside").mkdir()
    outside = tmp_path / "not-toolchats"
    outside.mkdir()
    (outside / "keep.txt").write_text("mine")
    planted = stale.with_name(stale.name[:-8] + "symlink0")
    planted.symlink_to(outside)  # a symlink is never followed
    (temps / "toolchat-mcp-notanumber").mkdir()
    entry = {"command": sys.executable, "args": [str(SERVERS / "faults.py")], "sandbox": True}
    (tmp_path / "mcp.yaml").write_text(json.dumps({"mcp_servers": {"f": entry}}))
    ran = cli(
        "tools",
        "run",
        "f__echo",
        "-c",
        str(tmp_path / "mcp.yaml"),
        "--args",
        '{"text": "hi"}',
        env={"TMPDIR": str(temps)},
    )
    assert "hi" in ran.stdout, ran.stderr
    assert not stale.exists() and alive.is_dir() and (outside / "keep.txt").read_text() == "mine"
    assert sorted(p.name for p in temps.iterdir()) == sorted([alive.name, planted.name, "toolchat-mcp-notanumber"])


def test_a_project_config_widens_the_sandbox_only_once_trusted_and_trust_says_what_it_widens(box, cli, tmp_path, home):
    (tmp_path / "toolchat.yaml").write_text(f"sandbox:\n  write: [{home}]\n  network: ['*']\n  required: true\n")
    done = box("write_home", {"name": "widened.txt"})  # untrusted: skipped, the default sandbox holds
    assert "not trusted" in done.stderr and not (home / "widened.txt").exists()
    trusted = cli("config", "trust", str(tmp_path / "toolchat.yaml"))
    assert f"sandbox.write: [{home}] (widens the sandbox: tools may write there)" in trusted.stdout
    assert "sandbox.network: ['*'] (widens the sandbox: these tools may open TCP connections)" in trusted.stdout
    assert "sandbox.required: true\n" in trusted.stdout  # as the file writes it
    done = box("write_home", {"name": "widened.txt"})
    assert done.stdout.strip() == "wrote", done.stderr


def test_serve_runs_tools_sandboxed_by_default(upstream, serve, plugin_dir, home):
    from tests.support.fakeserver import openai_calls, sse, text_stream
    from tests.support.serving import post

    upstream.add(sse(openai_calls([("write_home", {"name": "served.txt"})])), sse(text_stream("Could not.")))
    served = serve("--tools", str(plugin_dir(probe=TOOLS)), "--allow", "write_home", env={"HOME": str(home)})
    ask = {"model": "toolchat", "messages": [{"role": "user", "content": "Write in my home"}]}
    status, _, raw = post(f"{served.url}/chat/completions", ask)
    assert status == 200 and json.loads(raw)["choices"][0]["message"]["content"] == "Could not.", raw
    assert not (home / "served.txt").exists()
    told = [m for m in upstream.requests[1]["messages"] if m["role"] == "tool"][0]["content"]
    assert "PermissionError" in told and "the sandbox allows writes only in the project folder" in told
