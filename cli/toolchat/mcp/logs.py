"""Each server's stderr goes to its own log in the data dir, never to the terminal; its tail is shown
when the server fails, and `toolchat mcp logs NAME` prints it."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import IO

from toolchat.files import open_private, private_folder
from toolchat.mcp.names import sanitise
from toolchat.safety import clean

TAIL = 5


def log_path(data_dir: Path, server: str) -> Path:
    return data_dir / "mcp-logs" / f"{sanitise(server)}.log"


def open_log(path: Path, command: str, *, append: bool) -> IO[str]:
    """The file the server's stderr is written to (private: it may hold what the server read);
    a header line marks each start. With the folder unwritable, stderr is discarded."""
    try:
        private_folder(path.parent, root=path.parents[1])
        fd = open_private(path, os.O_WRONLY | os.O_CREAT | (os.O_APPEND if append else os.O_TRUNC))
        log = os.fdopen(fd, "a", encoding="utf-8", errors="replace")
    except OSError:
        return open(os.devnull, "w", encoding="utf-8")
    log.write(f"--- {time.strftime('%Y-%m-%d %H:%M:%S')} started: {command}\n")
    log.flush()
    return log


def read_log(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""


def tail(path: Path, lines: int = TAIL) -> list[str]:
    """The last lines the server wrote since it last started, made safe for a terminal."""
    text = read_log(path)
    start = text.rfind("\n--- ")
    recent = text[start + 1 :] if start >= 0 else text
    kept = [line for line in recent.splitlines()[1:] if line.strip()]
    return [clean(line)[:300] for line in kept[-lines:]]
