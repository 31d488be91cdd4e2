"""Transcripts on disk: one JSONL file per session, per project, in the user data dir.

The file is a log of the conversation's operations (a message appended, the list truncated, the
system prompt set, older messages compacted into one), each written and flushed as it happens, so
replaying it gives exactly the messages the model saw. The file is created with the first message,
is private (0600 in a 0700 folder), is never followed through a symlink, and has one writer at a
time (an flock). No API key is ever written: only messages, which never hold one, and those pass
through the redactor."""

from __future__ import annotations

import errno
import hashlib
import json
import os
import re
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from toolchat.files import open_private, private_folder
from toolchat.safety import strict_json


def project_key(project_dir: Path) -> str:
    """One name per project folder: readable, and unique by a hash of the full path."""
    resolved = project_dir.resolve()
    name = re.sub(r"[^A-Za-z0-9_.-]", "_", resolved.name)[:40] or "root"
    return f"{name}-{hashlib.sha1(str(resolved).encode()).hexdigest()[:10]}"


def project_folder(data_dir: Path, project_dir: Path) -> Path:
    return data_dir / "sessions" / project_key(project_dir)


def history_file(data_dir: Path, project_dir: Path) -> Path:
    """The REPL's prompt history for this project (inside its session folder, so one per key)."""
    return project_folder(data_dir, project_dir) / "prompt-history"


@dataclass
class Loaded:
    messages: list[dict[str, Any]]
    skipped: int = 0


class SessionBusy(Exception):
    """Another toolchat is writing this session."""


class SessionLog:
    """Appends a conversation's operations to one session file. If the data dir cannot be
    written, `problem` says so once and the chat goes on without saving."""

    def __init__(self, path: Path, header: dict[str, Any], redact: Callable[[str], str] = lambda text: text) -> None:
        self.path = path
        self.header = header
        self.redact = redact
        self.fd: int | None = None
        self.problem: str | None = None
        self.pending: list[dict[str, Any]] = []  # records before the first message: no file yet

    @property
    def id(self) -> str:
        return self.path.stem

    @classmethod
    def new(
        cls,
        folder: Path,
        header: dict[str, Any],
        name: str | None = None,
        redact: Callable[[str], str] = lambda text: text,
    ) -> SessionLog:
        stem = _safe(name) if name else time.strftime("%Y%m%d-%H%M%S-") + uuid.uuid4().hex[:6]
        return cls(folder / f"{stem}.jsonl", header, redact)

    def check(self) -> str | None:
        """Say now (not at the first message) when the folder cannot be written."""
        try:
            private_folder(self.path.parent, root=self.path.parents[2])  # from the data dir down
            if not os.access(self.path.parent, os.W_OK | os.X_OK):
                raise PermissionError(errno.EACCES, "permission denied")
        except OSError as exc:
            self.problem = f"history is not being saved ({self.path.parent}: {exc.strerror or exc})"
        return self.problem

    def claim(self) -> None:
        """Open an existing file for appending: take the writer's lock (SessionBusy if another
        process holds it) and cut off a torn last line, so the next record starts on its own line."""
        if not self.path.exists() and not self.path.is_symlink():
            return  # created with the first record
        self._open()

    def _open(self) -> None:
        import fcntl

        private_folder(self.path.parent, root=self.path.parents[2])
        fd = open_private(self.path, os.O_RDWR | os.O_CREAT)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise SessionBusy(f"session {self.id} is open in another toolchat") from None
        size = os.lseek(fd, 0, os.SEEK_END)
        if size:
            _cut_torn_tail(fd, size)
        else:
            os.write(fd, _line({"type": "session", **self.header}))
        self.fd = fd

    def append(self, message: dict[str, Any]) -> None:
        self._write({"type": "message", "message": message})

    def truncate(self, length: int) -> None:
        self._write({"type": "truncate", "length": length})

    def set_system(self, text: str | None) -> None:
        self._write({"type": "system", "content": text})  # null: the system prompt was removed

    def replace(self, index: int, message: dict[str, Any]) -> None:
        self._write({"type": "replace", "index": index, "message": message})

    def splice(self, start: int, end: int, message: dict[str, Any]) -> None:
        self._write({"type": "splice", "start": start, "end": end, "message": message})

    def _write(self, record: dict[str, Any]) -> None:
        if self.problem is not None:
            return
        if self.fd is None and record["type"] != "message":
            self.pending.append(record)  # a session file starts with its first message
            return
        try:
            if self.fd is None:
                self._open()
            records, self.pending = [*self.pending, record], []
            data = b"".join(_line(item) for item in records)
            os.write(self.fd, self.redact(data.decode("ascii")).encode("ascii"))  # type: ignore[arg-type]
        except SessionBusy:
            raise
        except OSError as exc:
            self.problem = f"history is not being saved ({self.path.parent}: {exc.strerror or exc})"
            self.close()

    def close(self) -> None:
        if self.fd is not None:
            os.close(self.fd)  # releases the lock
            self.fd = None


def _line(record: dict[str, Any]) -> bytes:
    # ensure_ascii: U+2028, U+0085 and lone surrogates are escaped, so a record is one line of UTF-8
    return (json.dumps(record, ensure_ascii=True) + "\n").encode("ascii")


def _cut_torn_tail(fd: int, size: int) -> None:
    """A kill mid-write leaves a last line without its newline: drop it before appending. One
    backward scan, 64 KB at a time, each byte read once (a torn line of megabytes is linear)."""
    end = size
    while end > 0:
        start = max(0, end - 65536)
        os.lseek(fd, start, os.SEEK_SET)
        block = os.read(fd, end - start)
        if end == size and block.endswith(b"\n"):
            return
        cut = block.rfind(b"\n")
        if cut >= 0:
            os.ftruncate(fd, start + cut + 1)
            break
        end = start
    else:
        os.ftruncate(fd, 0)
    os.lseek(fd, 0, os.SEEK_END)


def load(path: Path) -> Loaded:
    """Replay a session file. Lines are split on \\n only (a message may hold U+2028); a corrupt
    or torn line is skipped and counted."""
    messages: list[dict[str, Any]] = []
    loaded = Loaded(messages)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError:
        return loaded
    with os.fdopen(fd, "rb") as file:
        data = file.read()
    for raw in data.split(b"\n"):
        if not raw.strip():
            continue
        try:
            record = strict_json(raw.decode("utf-8", errors="replace"))  # NaN could not be sent
            kind = record["type"]
        except (ValueError, KeyError, TypeError):
            loaded.skipped += 1
            continue
        if not _replay(messages, kind, record):
            loaded.skipped += 1
    return loaded


def _replay(messages: list[dict[str, Any]], kind: str, record: dict[str, Any]) -> bool:
    """Apply one record; False for one of the wrong shape (skipped and counted, as corrupt ones)."""
    if kind == "message" and valid_message(record.get("message")):
        messages.append(record["message"])
    elif kind == "truncate" and isinstance(record.get("length"), int):
        del messages[record["length"] :]
    elif kind == "replace" and isinstance(record.get("index"), int) and valid_message(record.get("message")):
        if 0 <= record["index"] < len(messages):
            messages[record["index"]] = record["message"]
    elif kind == "splice" and isinstance(record.get("message"), dict):
        start, end = record.get("start"), record.get("end")
        if isinstance(start, int) and isinstance(end, int) and 0 <= start <= end <= len(messages):
            messages[start:end] = [record["message"]]
    elif kind == "system" and "content" in record and isinstance(record["content"], (str, type(None))):
        _set_system(messages, record.get("content"))
    else:
        return kind == "session"
    return True


def _set_system(messages: list[dict[str, Any]], text: str | None) -> None:
    if messages and messages[0].get("role") == "system":
        del messages[0]
    if text is not None:
        messages.insert(0, {"role": "system", "content": text})


_ROLES = ("system", "user", "assistant", "tool")


def valid_message(message: Any) -> bool:
    """A message of the shape toolchat writes: a known role, text content, calls with a function
    of a string name, a tool answer naming its call by a string."""
    if not isinstance(message, dict) or message.get("role") not in _ROLES:
        return False
    if not isinstance(message.get("content"), (str, list, type(None))):
        return False
    if message["role"] == "tool" and not isinstance(message.get("tool_call_id"), (str, type(None))):
        return False
    calls = message.get("tool_calls")
    return calls is None or (isinstance(calls, list) and all(_valid_call(call) for call in calls))


def _valid_call(call: Any) -> bool:
    function = call.get("function") if isinstance(call, dict) else None
    return (
        isinstance(function, dict)
        and isinstance(call.get("id"), (str, type(None)))
        and isinstance(function.get("name"), str)
        and isinstance(function.get("arguments"), (str, type(None)))
    )


NOT_RUN = "Not run: the session ended before this call finished."


def repair(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Answer calls left without a tool message (a kill while a tool ran), so the history is valid.
    By position, not by id alone: a call is answered only by the tool messages that follow its
    assistant message (a server that names every call `call_0` reuses ids across rounds)."""
    result: list[dict[str, Any]] = []
    waiting: list[Any] = []  # ids of the last assistant message's calls not yet answered
    for message in messages:
        if message.get("role") == "tool" and message.get("tool_call_id") in waiting:
            waiting.remove(message.get("tool_call_id"))
        elif waiting:
            result += [_not_run(call_id) for call_id in waiting]
            waiting = []
        result.append(message)
        if message.get("role") == "assistant":
            waiting = [call.get("id") for call in message.get("tool_calls") or []]
    return result + [_not_run(call_id) for call_id in waiting]


def _not_run(call_id: Any) -> dict[str, Any]:
    return {"role": "tool", "tool_call_id": call_id, "content": NOT_RUN}


def sessions_in(folder: Path) -> list[Path]:
    """Session files of a project, oldest first (by last write)."""
    if not folder.is_dir():
        return []
    found = [p for p in folder.glob("*.jsonl") if p.is_file() and not p.is_symlink()]
    return sorted(found, key=lambda p: p.stat().st_mtime)


def session_path(folder: Path, session_id: str) -> Path | None:
    """The file of `session_id` inside `folder`; None for an id that would leave it."""
    if not session_id or _safe(session_id) != session_id:  # no "/": a name inside `folder`, dots too
        return None
    path = folder / f"{session_id}.jsonl"
    return path if path.is_file() and not path.is_symlink() else None


def to_markdown(messages: list[dict[str, Any]]) -> str:
    parts = []
    for message in messages:
        role = message.get("role")
        if role == "tool":
            parts.append(f"**tool result** (`{message.get('tool_call_id')}`):\n\n```\n{message.get('content')}\n```")
            continue
        thought = message.get("reasoning")
        if isinstance(thought, dict) and thought.get("text"):
            quoted = "\n".join(f"> {line}" for line in str(thought["text"]).strip().splitlines())
            parts.append(f"**{role} reasoning**:\n\n{quoted}")
        if message.get("content"):
            parts.append(f"**{role}**:\n\n{message['content']}")
        for call in message.get("tool_calls") or []:
            function = call.get("function") or {}
            parts.append(
                f"**tool call** `{function.get('name')}` (`{call.get('id')}`):\n\n"
                f"```json\n{function.get('arguments')}\n```"
            )
    return "\n\n".join(parts) + "\n"


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", name)[:80] or "session"
