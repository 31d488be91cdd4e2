"""Starting real MCP servers for tests: the two from the package index (`mcp-server-time`,
`mcp-server-git`), the fault server and the bearer-token HTTP server of tests/mcp_servers/."""

from __future__ import annotations

import contextlib
import os
import shlex
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from toolchat.config.mcp_spec import McpServerSpec
from toolchat.mcp import parse_flag

BIN = Path(sys.executable).parent
SERVERS = Path(__file__).parents[1] / "mcp_servers"
TIME = f"{BIN / 'mcp-server-time'} --local-timezone UTC"
FAULTS = f"{shlex.quote(sys.executable)} {SERVERS / 'faults.py'}"


def git(repo: Path) -> str:
    return f"{BIN / 'mcp-server-git'} --repository {repo}"


def spec(command: str, name: str | None = None, pid_dir: Path | None = None, **fields: object) -> McpServerSpec:
    server = parse_flag(command)
    if name:
        server.name = name
    if pid_dir is not None:
        server.env = {"FAULTS_PID_DIR": str(pid_dir)}
    for key, value in fields.items():
        setattr(server, key, value)
    return server


def alive(pid: int) -> bool:
    """Whether a process exists and is not a zombie waiting to be reaped."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def server_pids(pid_dir: Path) -> list[int]:
    """The PIDs the fault servers wrote (one file each)."""
    return [int(p.name) for p in pid_dir.iterdir()]


def wait_gone(pids: list[int], seconds: float) -> list[int]:
    """The PIDs still alive after up to `seconds`."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and any(alive(pid) for pid in pids):
        time.sleep(0.05)
    return [pid for pid in pids if alive(pid)]


@contextlib.contextmanager
def reaped(pid_dir: Path) -> Iterator[None]:
    """Kill whatever fault server or daemon of `pid_dir` a failing test leaves behind."""
    try:
        yield
    finally:
        for pid in server_pids(pid_dir):
            with contextlib.suppress(OSError):
                if b"faults.py" in Path(f"/proc/{pid}/cmdline").read_bytes():  # not a reused PID
                    os.kill(pid, signal.SIGKILL)


def git_repo(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@e",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@e",
    }
    subprocess.run(["git", "init", "-q", "-b", "main", str(folder)], check=True, env=env)
    (folder / "tracked.txt").write_text("one\n")
    subprocess.run(["git", "-C", str(folder), "add", "tracked.txt"], check=True, env=env)
    subprocess.run(["git", "-C", str(folder), "commit", "-q", "-m", "first"], check=True, env=env)
    (folder / "new-notes.txt").write_text("not yet added\n")
    return folder


class HttpServer:
    """tests/mcp_servers/http_server.py under uvicorn on a free port, stopped after."""

    def __init__(self, port: int, token: str) -> None:
        self.url = f"http://127.0.0.1:{port}/mcp"
        self.process = subprocess.Popen(
            [sys.executable, str(SERVERS / "http_server.py"), str(port)],
            env={**os.environ, "MCP_TEST_TOKEN": token},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        import socket

        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with socket.socket() as sock:
                if sock.connect_ex(("127.0.0.1", port)) == 0:
                    return
            time.sleep(0.05)
        self.stop()
        raise RuntimeError("the HTTP MCP server did not start")

    def stop(self) -> None:
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
