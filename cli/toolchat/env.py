"""Streams, terminal facts and folders in one object, so tests can swap any of them."""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Mapping


def _user_dir(kind: str) -> Path:
    import platformdirs

    return Path(getattr(platformdirs, f"user_{kind}_dir")("toolchat", appauthor=False))


@dataclass
class Environment:
    stdin: IO[str] = field(default_factory=lambda: sys.stdin)
    stdout: IO[str] = field(default_factory=lambda: sys.stdout)
    stderr: IO[str] = field(default_factory=lambda: sys.stderr)
    environ: Mapping[str, str] = field(default_factory=lambda: os.environ)
    cwd: Path = field(default_factory=Path.cwd)

    @property
    def stdin_isatty(self) -> bool:
        return _isatty(self.stdin)

    @property
    def stdout_isatty(self) -> bool:
        return _isatty(self.stdout)

    @property
    def debug(self) -> bool:
        return self.environ.get("TOOLCHAT_DEBUG", "") not in ("", "0")

    @property
    def config_dir(self) -> Path:
        override = self.environ.get("TOOLCHAT_CONFIG_DIR")
        return Path(override) if override else _user_dir("config")

    @property
    def data_dir(self) -> Path:
        override = self.environ.get("TOOLCHAT_DATA_DIR")
        return Path(override) if override else _user_dir("data")

    @property
    def cache_dir(self) -> Path:
        override = self.environ.get("TOOLCHAT_CACHE_DIR")
        return Path(override) if override else _user_dir("cache")


def _isatty(stream: IO[str]) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False
