"""Schemas of plugin modules cached by file path, size and mtime, so listing an unchanged folder
(and offering its tools to a model) does not import it. Only modules that loaded are cached: a
failure is tried again next time (the missing package may have been installed since). The key
also holds the Python and toolchat versions."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from toolchat import __version__
from toolchat.files import atomic_write, read_private

_KEY = f"toolchat {__version__} schemas 2 python {sys.version_info[0]}.{sys.version_info[1]}"


class SchemaCache:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.entries: dict[str, Any] = {}
        self.dirty = False
        try:
            data = json.loads(read_private(path))  # made 0600; a FIFO there is refused
            if data.get("key") == _KEY and isinstance(data.get("files"), dict):
                self.entries = data["files"]
        except (OSError, ValueError, AttributeError):
            pass

    @staticmethod
    def _stamp(module_file: Path) -> list[int]:
        info = module_file.stat()
        return [info.st_size, info.st_mtime_ns]

    def get(self, module_file: Path) -> list[dict[str, Any]] | None:
        """The described tools of an unchanged module that loaded, else None."""
        entry = self.entries.get(str(module_file))
        if entry and entry.get("stamp") == self._stamp(module_file) and isinstance(entry.get("tools"), list):
            return entry["tools"]
        return None

    def put(self, module_file: Path, tools: list[dict[str, Any]]) -> None:
        self.entries[str(module_file)] = {"stamp": self._stamp(module_file), "tools": tools}
        self.dirty = True

    def forget(self, module_file: Path) -> None:
        if self.entries.pop(str(module_file), None) is not None:
            self.dirty = True

    def save(self) -> None:
        if not self.dirty:
            return
        try:
            atomic_write(self.path, json.dumps({"key": _KEY, "files": self.entries}))
        except OSError:
            pass  # a cache that cannot be written only costs time
