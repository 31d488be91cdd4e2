"""Sandboxed tools (Landlock): what a plugin tool, and everything it starts, may write and connect
to once it runs, as a user meets it with `toolchat tools run` in a real subprocess.

The project folder is the test's tmp_path; HOME is a folder made outside it. These tests run as
root here: Landlock holds for root too (root's DAC bypass does not bypass it), so nothing below
changes with the user; root can write only where the sandbox allows, like anyone else."""

from __future__ import annotations

import json
import os
import socket
import sys
import threading
from pathlib import Path

import pytest

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

    def run(tool: str, arguments: dict, *flags: str, config: str | None = None):
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
            env={"HOME": str(home)},
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
    server.close()
    thread.join(5)
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


def test_read_only_mode_refuses_project_writes_but_not_the_temp_folder(box, tmp_path):
    done = box("write_here", {"name": "nope.txt"}, config="sandbox:\n  mode: read-only\n")
    assert not (tmp_path / "nope.txt").exists()
    assert "PermissionError" in done.stderr
    done = box("temp_folder", {}, config="sandbox:\n  mode: read-only\n")
    tmpdir, file = done.stdout.strip().split("|")
    assert Path(tmpdir).name.startswith("toolchat-call-") and file.startswith(tmpdir)
    assert not Path(tmpdir).exists()  # removed after the call


def test_a_kernel_without_landlock_runs_unconfined_unless_required(monkeypatch, tmp_path, home):
    """The system call fails as on a kernel without Landlock (ENOSYS) or with it disabled
    (EOPNOTSUPP): the step says why; `required` then refuses to run the tool."""
    import ctypes
    import errno

    from toolchat.sandbox import policy

    for code in (errno.ENOSYS, errno.EOPNOTSUPP):

        def missing(*args: object, code: int = code) -> int:
            ctypes.set_errno(code)
            return -1

        monkeypatch.setattr(landlock, "_syscall", missing)
        enforcer = policy.Landlock()
        why = enforcer.unavailable()
        assert why is not None and ("no Landlock" in why or "disabled" in why)
        assert "not available" in enforcer.facts()[0]
        assert policy.confine(policy.Policy(), str(tmp_path), str(tmp_path), enforcer) == why


def test_the_enforcer_reports_this_machine():
    facts = "\n".join(__import__("toolchat.sandbox.policy", fromlist=["ENFORCER"]).ENFORCER.facts())
    assert f"Landlock ABI {landlock.abi()}" in facts
