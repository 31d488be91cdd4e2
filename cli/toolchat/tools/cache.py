"""Schemas of plugin modules cached by file path, size and mtime, so listing an unchanged folder
(and offering its tools to a model) does not import it; a tool's module is imported when the tool
first runs. The key also holds the Python and toolchat versions."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

from toolchat import __version__

_KEY = f"toolchat {__version__} python {sys.version_info[0]}.{sys.version_info[1]}"


class SchemaCache:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.entries: dict[str, Any] = {}
        self.dirty = False
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            if data.get("key") == _KEY and isinstance(data.get("files"), dict):
                self.entries = data["files"]
        except (OSError, ValueError, AttributeError):
            pass

    @staticmethod
    def _stamp(module_file: Path) -> list[int]:
        info = module_file.stat()
        return [info.st_size, info.st_mtime_ns]

    def get(self, module_file: Path) -> dict[str, Any] | None:
        entry = self.entries.get(str(module_file))
        if entry and entry.get("stamp") == self._stamp(module_file):
            return entry
        return None

    def put(self, module_file: Path, tools: list[dict[str, Any]], failure: str | None) -> None:
        self.entries[str(module_file)] = {"stamp": self._stamp(module_file), "tools": tools, "failure": failure}
        self.dirty = True

    def save(self) -> None:
        if not self.dirty:
            return
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            temporary = self.path.with_suffix(f".{os.getpid()}.tmp")
            temporary.write_text(json.dumps({"key": _KEY, "files": self.entries}), encoding="utf-8")
            os.replace(temporary, self.path)
        except OSError:
            pass  # a cache that cannot be written only costs time
