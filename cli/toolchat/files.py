"""Private files and folders: what toolchat writes may hold a conversation or a key, so it is
0600 in 0700 folders, and a symlink is never followed into someone else's file."""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

PRIVATE_FILE = 0o600
PRIVATE_DIR = 0o700


def private_folder(folder: Path) -> Path:
    """Make `folder` (and missing parents) and keep it 0700; an existing one is fixed."""
    folder.mkdir(mode=PRIVATE_DIR, parents=True, exist_ok=True)
    if stat.S_IMODE(folder.stat().st_mode) != PRIVATE_DIR:
        os.chmod(folder, PRIVATE_DIR)
    return folder


def open_private(path: Path, flags: int = os.O_WRONLY | os.O_APPEND | os.O_CREAT) -> int:
    """An fd for `path`, 0600, refusing a symlink in its place (a swapped file would receive
    someone's conversation). An existing file with looser permissions is fixed."""
    fd = os.open(path, flags | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0), PRIVATE_FILE)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise OSError(errno.EINVAL, "not a regular file")
        os.fchmod(fd, PRIVATE_FILE)
    except OSError:
        os.close(fd)
        raise
    return fd


def private_file(path: Path) -> int:
    """Open `path` for appending, 0600 (an existing file is made so; its folder 0700 when made
    here): spans may hold the conversation."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.fchmod(fd, 0o600)
    except OSError:  # not ours to change (another user's file we may append to)
        pass
    return fd
