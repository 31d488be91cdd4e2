"""Transcripts on disk: one JSONL file per session, per project, in the user data dir. Every
message is appended and flushed as it happens, so a kill loses at most the message in flight.
A corrupt or truncated line is skipped with a warning. No API key is ever written: only messages,
which never hold one."""

from __future__ import annotations

import hashlib
import json
import re
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any


def project_folder(data_dir: Path, project_dir: Path) -> Path:
    resolved = str(project_dir.resolve())
    name = re.sub(r"[^A-Za-z0-9_.-]", "_", project_dir.resolve().name)[:40] or "root"
    return data_dir / "sessions" / f"{name}-{hashlib.sha1(resolved.encode()).hexdigest()[:10]}"


@dataclass
class Loaded:
    messages: list[dict[str, Any]]
    skipped: int = 0
    header: dict[str, Any] = field(default_factory=dict)


class SessionStore:
    """Appends to one session file; if the data dir cannot be written, says so once and goes on."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.written = 0
        self.file: IO[str] | None = None
        self.problem: str | None = None

    @property
    def id(self) -> str:
        return self.path.stem

    @classmethod
    def new(cls, folder: Path, name: str | None = None) -> SessionStore:
        stem = _safe(name) if name else time.strftime("%Y%m%d-%H%M%S-") + uuid.uuid4().hex[:6]
        return cls(folder / f"{stem}.jsonl")

    def open(self, header: dict[str, Any], existing: int = 0) -> None:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fresh = not self.path.exists()
            self.file = open(self.path, "a", encoding="utf-8")
            if fresh:
                self._write({"type": "session", **header})
        except OSError as exc:
            self.problem = f"history is not being saved ({self.path.parent}: {exc.strerror or exc})"
            self.file = None
        self.written = existing

    def sync(self, messages: list[dict[str, Any]]) -> None:
        """Append the messages not yet written; record a truncation when the list shrank."""
        if len(messages) < self.written:
            self._write({"type": "truncate", "length": len(messages)})
            self.written = len(messages)
        for message in messages[self.written:]:
            self._write({"type": "message", "message": message})
        self.written = len(messages)

    def _write(self, record: dict[str, Any]) -> None:
        if self.file is None:
            return
        try:
            self.file.write(json.dumps(record, ensure_ascii=False) + "\n")
            self.file.flush()
        except OSError as exc:
            self.problem = f"history is not being saved ({exc.strerror or exc})"
            self.file = None

    def close(self) -> None:
        if self.file is not None:
            self.file.close()
            self.file = None


def load(path: Path) -> Loaded:
    messages: list[dict[str, Any]] = []
    loaded = Loaded(messages)
    try:
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return loaded
    for line in lines:
        try:
            record = json.loads(line)
            kind = record["type"]
        except (ValueError, KeyError, TypeError):
            loaded.skipped += 1
            continue
        if kind == "session":
            loaded.header = record
        elif kind == "message" and isinstance(record.get("message"), dict):
            messages.append(record["message"])
        elif kind == "truncate" and isinstance(record.get("length"), int):
            del messages[record["length"]:]
    loaded.messages = repair(messages)
    return loaded


def repair(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Answer calls left without a tool message (a kill while a tool ran), so the history is valid."""
    answered = {m.get("tool_call_id") for m in messages if m.get("role") == "tool"}
    result: list[dict[str, Any]] = []
    for message in messages:
        result.append(message)
        for call in message.get("tool_calls") or []:
            if call.get("id") not in answered:
                result.append({"role": "tool", "tool_call_id": call.get("id"),
                               "content": "Not run: the session ended before this call finished."})
    return result


def sessions_in(folder: Path) -> list[Path]:
    if not folder.is_dir():
        return []
    return sorted(folder.glob("*.jsonl"), key=lambda p: p.stat().st_mtime)


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", name)[:80] or "session"
