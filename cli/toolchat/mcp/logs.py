"""Each server's stderr goes to its own log in the data dir, never to the terminal; its tail is shown
when the server fails, and `toolchat mcp logs NAME` prints it."""

from __future__ import annotations

import hashlib
import os
import time
from pathlib import Path
from typing import IO

from toolchat.files import open_private, private_folder
from toolchat.mcp.names import sanitise
from toolchat.safety import clean

TAIL = 5


def log_path(data_dir: Path, server: str) -> Path:
    """The server's own log: its name made safe for a file name; a name that had to change (or is
    long) ends in a short hash of the original, so `docs.v1` and `docs_v1` never share a log."""
    name = sanitise(server)
    if name != server or len(name) > 100:
        name = f"{name[:100]}-{hashlib.sha1(server.encode('utf-8', 'surrogatepass')).hexdigest()[:8]}"
    return data_dir / "mcp-logs" / f"{name}.log"


LOG_LIMIT = 4 * 1024 * 1024  # what a log keeps at each start, and what `mcp logs` prints at most
_TAIL_BYTES = 64 * 1024  # enough for the last lines a failure shows


def open_log(path: Path, command: str, *, append: bool) -> IO[str]:
    """The file the server's stderr is written to (private: it may hold what the server read);
    a header line marks each start. A log grown past LOG_LIMIT keeps only its last LOG_LIMIT
    bytes when the server starts again. With the folder unwritable, stderr is discarded."""
    try:
        private_folder(path.parent, root=path.parents[1])
        if append:
            _cap(path)
        fd = open_private(path, os.O_WRONLY | os.O_CREAT | (os.O_APPEND if append else os.O_TRUNC))
        log = os.fdopen(fd, "a", encoding="utf-8", errors="replace")
    except OSError:
        return open(os.devnull, "w", encoding="utf-8")
    log.write(f"--- {time.strftime('%Y-%m-%d %H:%M:%S')} started: {command}\n")
    log.flush()
    return log


def _cap(path: Path) -> None:
    """Keep the last LOG_LIMIT bytes of an oversized log, moved to its start one block at a time."""
    if not path.exists() or path.stat().st_size <= LOG_LIMIT:
        return
    fd = open_private(path, os.O_RDWR)
    try:
        start = os.fstat(fd).st_size - LOG_LIMIT
        for offset in range(0, LOG_LIMIT, _TAIL_BYTES):
            os.pwrite(fd, os.pread(fd, min(_TAIL_BYTES, LOG_LIMIT - offset), start + offset), offset)
        os.ftruncate(fd, LOG_LIMIT)
    finally:
        os.close(fd)


def read_log(path: Path, limit: int = LOG_LIMIT) -> str:
    """The last `limit` bytes of the log, read from its end (a log of gigabytes is never read whole)."""
    try:
        fd = open_private(path, os.O_RDONLY)
    except OSError:
        return ""
    try:
        size = os.fstat(fd).st_size
        data = os.pread(fd, min(size, limit), max(0, size - limit))
    finally:
        os.close(fd)
    cut = f"[{size - limit} earlier bytes not shown]\n" if size > limit else ""
    return cut + data.decode("utf-8", errors="replace")


def tail(path: Path, lines: int = TAIL) -> list[str]:
    """The last lines the server wrote since it last started, made safe for a terminal."""
    text = read_log(path, _TAIL_BYTES)
    start = text.rfind("\n--- ")
    recent = text[start + 1 :] if start >= 0 else text
    kept = [line for line in recent.splitlines()[1:] if line.strip()]
    return [clean(line)[:300] for line in kept[-lines:]]
