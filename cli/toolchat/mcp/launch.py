"""How a stdio server is started so that it cannot outlive toolchat, even a `kill -9` of it: on
Linux a tiny launcher asks the kernel to kill the server when its parent (toolchat's MCP thread)
dies (PR_SET_PDEATHSIG), confines it when its entry says `sandbox: true` (Landlock: writes only in
its cwd, its own temp folder and the usual devices; TCP only with `network: true`), then becomes
the server (exec), so the sandbox holds for the server and all it starts. Elsewhere the server runs
directly, and a `kill -9` leaves it to notice its closed stdin."""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

# argv: toolchat's pid, the sandbox ("" or the folder toolchat is imported from, then "tcp" or
# "no-tcp" and the server's temporary folder), the command, its arguments
LAUNCHER = """import ctypes, os, signal, sys
ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
if os.getppid() != int(sys.argv[1]):
    sys.exit(1)  # toolchat died before the line above took effect
rest = sys.argv[3:]
if sys.argv[2]:
    sys.path.insert(0, sys.argv[2])
    from toolchat.sandbox.launched import confine_server
    confine_server(rest.pop(0) == "tcp", rest.pop(0))
os.execvp(rest[0], rest)
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
    here = str(Path(__file__).resolve().parents[2])
    box = [here, "tcp" if sandbox else "no-tcp", tmpdir] if sandbox is not None else [""]
    return sys.executable, ["-S", "-E", "-c", LAUNCHER, str(os.getpid()), *box, command, *args]


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
