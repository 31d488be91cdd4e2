"""How a stdio server is started so that neither it nor anything it starts outlives toolchat, even
a `kill -9` of it: on Linux a tiny launcher asks the kernel to signal it when its parent (toolchat's
MCP thread) dies (PR_SET_PDEATHSIG), confines itself when the entry says `sandbox: true` (Landlock:
writes only in its cwd, its own temp folder and the usual devices; TCP only with `network: true`),
so the sandbox holds for the server and all it starts, then becomes a child subreaper and runs the
server as its child; when the server ends, or toolchat does, it kills every process left, setsid
daemons included (the tool worker's `processes`). Elsewhere the server runs directly, and a
`kill -9` leaves it to notice its closed stdin."""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

# argv: toolchat's pid, the folder toolchat is imported from, the sandbox ("", "tcp" or "no-tcp"),
# the server's temporary folder (when sandboxed; else ""), the command, its arguments. The launcher
# stays the server's parent, a child subreaper: a daemon the server forks (setsid, SIGTERM ignored)
# is adopted by it and killed when the server goes, or when toolchat does (its PR_SET_PDEATHSIG is
# SIGTERM, which it catches to kill what is left).
LAUNCHER = """import ctypes, os, signal, sys
signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
if os.getppid() != int(sys.argv[1]):
    sys.exit(1)  # toolchat died before the line above took effect
sys.path.insert(0, sys.argv[2])
from toolchat.tools.isolation import processes
rest = sys.argv[5:]
if sys.argv[3]:
    from toolchat.sandbox.launched import confine_server
    confine_server(sys.argv[3] == "tcp", sys.argv[4])
processes.become_subreaper()
launcher, server, status = os.getpid(), os.fork(), 1 << 8
try:
    if server == 0:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        processes.die_with_parent(launcher)
        try:
            os.execvp(rest[0], rest)
        except OSError as exc:
            print(f"toolchat: cannot run {rest[0]}: {exc.strerror}", file=sys.stderr, flush=True)
        os._exit(127)
    devnull = os.open(os.devnull, os.O_RDWR)
    os.dup2(devnull, 0), os.dup2(devnull, 1)  # the pipes are the server's alone
    while (ended := os.waitpid(-1, 0))[0] != server:
        pass  # an orphan the subreaper adopted and reaped
    status = ended[1]
finally:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)  # a second SIGTERM cannot cut the killing short
    processes.kill_all()
sys.exit(os.WEXITSTATUS(status) if os.WIFEXITED(status) else 128 + os.WTERMSIG(status))
"""


def sandbox_of(spec: Any) -> bool | None:
    """None: unconfined; else whether the sandboxed server may open TCP connections."""
    return bool(spec.network) if getattr(spec, "sandbox", False) else None


def command_line(
    command: str, args: list[str], env: Mapping[str, str], cwd: Path, sandbox: bool | None = None, tmpdir: str = ""
) -> tuple[str, list[str]]:
    """The program and arguments to start; FileNotFoundError naming `command` (and, for a bare
    name, the folders searched) when it is not there. A sandboxed server's temporary folder is
    `tmpdir`, made (and removed once it has stopped) by the caller."""
    if os.sep in command:
        if not os.access(cwd / command, os.X_OK):
            raise FileNotFoundError(2, "not found", command)
    else:
        command = find_program(command, env.get("PATH", os.defpath))
    if not sys.platform.startswith("linux"):
        return command, args
    box = "" if sandbox is None else "tcp" if sandbox else "no-tcp"
    home = str(Path(__file__).resolve().parents[2])
    return sys.executable, ["-S", "-E", "-c", LAUNCHER, str(os.getpid()), home, box, tmpdir, command, *args]


def find_program(name: str, path: str) -> str:
    """A bare command name on PATH, else beside the Python running toolchat (its venv's `bin`, where
    `.venv/bin/pip install mcp-server-time` puts a server even when the venv was never activated)."""
    beside = str(Path(sys.executable).parent)
    for folders in (path, beside):
        found = shutil.which(name, path=folders)
        if found is not None:
            return found if folders is beside else name
    searched = [folder for folder in path.split(os.pathsep) if folder] + [beside]
    raise FileNotFoundError(2, f"not found in {', '.join(dict.fromkeys(searched))}", name)
