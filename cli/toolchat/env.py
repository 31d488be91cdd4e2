"""Streams, terminal facts and folders in one object, so tests can swap any of them."""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any


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
    tty_path: str | None = "/dev/tty"  # where `ask` asks for approval; None: there is no terminal
    no_sandbox: bool = False  # --no-sandbox: tools run unconfined this run

    def open_tty(self) -> tuple[IO[str], IO[str]] | None:
        """The controlling terminal for reading and writing, or None when there is none."""
        if self.tty_path is None:
            return None
        try:
            tty_in = open(self.tty_path, encoding="utf-8", errors="replace")
        except OSError:
            return None
        try:
            return tty_in, open(self.tty_path, "w", encoding="utf-8", errors="replace")
        except OSError:
            tty_in.close()
            return None

    def consoles(self) -> tuple[Any, Any]:
        """Rich consoles for stdout and stderr (Rich is imported only by the commands that print with it)."""
        width = self.environ.get("COLUMNS", "")
        size = int(width) if width.isdigit() and int(width) > 0 else None
        return console_for(self.stdout, width=size), console_for(self.stderr, stderr=True, width=size)

    def write(self, text: str, *, err: bool = False) -> None:
        stream = self.stderr if err else self.stdout
        stream.write(text)
        stream.flush()

    @property
    def stdin_isatty(self) -> bool:
        return _isatty(self.stdin)

    @property
    def stdout_isatty(self) -> bool:
        return _isatty(self.stdout)

    @property
    def stderr_isatty(self) -> bool:
        return _isatty(self.stderr)

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


def console_for(stream: Any, *, stderr: bool = False, width: int | None = None) -> Any:
    """A Rich console on `stream` that prints text as given: no highlighting, no soft wrapping."""
    from rich.console import Console

    return Console(file=stream, stderr=stderr, highlight=False, soft_wrap=False, width=width)
