"""Hostile input, round three (issue 27), from MCP servers: a server that fills its log, one that
leaves a daemon behind, one that exits while idle. Each test is the attack as it was found."""

from __future__ import annotations

import os
from pathlib import Path

from toolchat.mcp import logs


def test_a_log_of_hundreds_of_megabytes_is_capped_and_its_tail_read_from_the_end(tmp_path, monkeypatch):
    path = logs.log_path(tmp_path / "data", "chatty")
    logs.open_log(path, "chatty-server", append=True).close()
    with path.open("ab") as out:  # the server's stderr, 40 MB of it, then its last words
        out.write((b"noise " * 1000 + b"\n") * 6800)
        out.write(b"fatal: the last thing it said\n")
    read, real_pread = [], os.pread
    monkeypatch.setattr(os, "pread", lambda fd, n, at: read.append(n) or real_pread(fd, n, at))
    assert logs.tail(path)[-1] == "fatal: the last thing it said"
    assert sum(read) <= 64 * 1024, f"read {sum(read)} bytes for a 5-line tail"
    read.clear()
    shown = logs.read_log(path)
    assert sum(read) <= logs.LOG_LIMIT and shown.startswith("[") and "earlier bytes not shown" in shown
    logs.open_log(path, "chatty-server", append=True).close()  # the next start caps what is kept
    monkeypatch.undo()
    size = path.stat().st_size
    assert logs.LOG_LIMIT <= size <= logs.LOG_LIMIT + 200
    assert "fatal: the last thing it said" in Path(path).read_text()[-300:]
    assert logs.tail(path) == []  # the new start has said nothing yet
