"""Processes that make a scratch folder (`toolchat.files.scratch_folder`) as a call's worker or an
MCP server's toolchat does, then live until a test kills them with -9, as a user's `kill -9` would:
the folders a killed toolchat leaves behind, made the real way."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

MAKE = "import sys, time\nfrom toolchat.files import scratch_folder\nprint(scratch_folder(sys.argv[1]), flush=True)\n"


def maker(temps: Path, kind: str) -> tuple[subprocess.Popen[str], Path]:
    """A living process whose scratch folder of `kind` ("call", "mcp") is in `temps`; the folder."""
    env = {**os.environ, "TMPDIR": str(temps)}
    code = MAKE + "time.sleep(120)\n"
    child = subprocess.Popen([sys.executable, "-c", code, kind], stdout=subprocess.PIPE, text=True, env=env)
    assert child.stdout is not None
    return child, Path(child.stdout.readline().strip())


def killed(child: subprocess.Popen[str]) -> None:
    """`kill -9`: nothing of the process cleans up."""
    child.kill()
    child.wait()
    assert child.stdout is not None
    child.stdout.close()
