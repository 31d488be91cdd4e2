"""How a stdio server is started so that it cannot outlive toolchat, even a `kill -9` of it: on
Linux a tiny launcher asks the kernel to kill the server when its parent (toolchat's MCP thread)
dies (PR_SET_PDEATHSIG), then becomes the server (exec). Elsewhere the server runs directly, and a
`kill -9` leaves it to notice its closed stdin."""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Mapping
from pathlib import Path

# argv: toolchat's pid, the command, its arguments
LAUNCHER = """import ctypes, os, signal, sys
ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
if os.getppid() != int(sys.argv[1]):
    sys.exit(1)  # toolchat died before the line above took effect
os.execvp(sys.argv[2], sys.argv[2:])
"""


def command_line(command: str, args: list[str], env: Mapping[str, str], cwd: Path) -> tuple[str, list[str]]:
    """The program and arguments to start; FileNotFoundError naming `command` when it is not there."""
    if os.sep in command:
        if not os.access(cwd / command, os.X_OK):
            raise FileNotFoundError(2, "not found", command)
    elif shutil.which(command, path=env.get("PATH", os.defpath)) is None:
        raise FileNotFoundError(2, "not found", command)
    if not sys.platform.startswith("linux"):
        return command, args
    return sys.executable, ["-S", "-E", "-c", LAUNCHER, str(os.getpid()), command, *args]
