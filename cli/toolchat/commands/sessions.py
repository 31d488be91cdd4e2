"""The `toolchat sessions ...` command."""

from __future__ import annotations

import difflib
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

from toolchat.errors import UsageError
from toolchat.safety import one_line
from toolchat.sessions import load, project_folder, session_path, sessions_in, to_markdown
from toolchat.terminal.render import clean, plain


def list_sessions(data_dir: Path, project_dir: Path, out: Console) -> None:
    found = sessions_in(project_folder(data_dir, project_dir))
    if not found:
        out.print(plain(f"no sessions yet for {project_dir}"))
        return
    table = Table(box=None, header_style="bold", pad_edge=False)
    for column in ("id", "last used", "messages", "first question"):
        table.add_column(column)
    for path in found:
        loaded = load(path)
        if not loaded.messages:
            continue  # an empty session (left at once) is not worth a row
        first = next((m.get("content") or "" for m in loaded.messages if m.get("role") == "user"), "")
        when = time.strftime("%Y-%m-%d %H:%M", time.localtime(path.stat().st_mtime))
        table.add_row(plain(one_line(path.stem)), when, str(len(loaded.messages)), plain(" ".join(first.split())[:60]))
    out.print(table)


def show_session(data_dir: Path, project_dir: Path, session_id: str, consoles: tuple[Console, Console]) -> None:
    out, err = consoles
    folder = project_folder(data_dir, project_dir)
    path = session_path(folder, session_id)  # an id is a name in this project's folder, never a path
    if path is None:
        names = [p.stem for p in sessions_in(folder)]
        close = difflib.get_close_matches(session_id, names, n=1)
        raise UsageError(
            f"no session '{clean(session_id)}' in this project",
            f"did you mean '{close[0]}'?" if close else "`toolchat sessions list` shows them",
        )
    loaded = load(path)
    if loaded.skipped:
        err.print(plain(f"warning: skipped {loaded.skipped} corrupt line(s) in {path}", "yellow"))
    out.print(plain(to_markdown(loaded.messages)), soft_wrap=True)
