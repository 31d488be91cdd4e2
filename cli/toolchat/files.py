"""Private files and folders: what toolchat writes may hold a conversation or a key, so it is
0600 in 0700 folders, and a symlink is never followed into someone else's file. Files replaced
whole (trust, the tool cache, the bundled model) are written atomically, here."""

from __future__ import annotations

import errno
import os
import stat
import tempfile
from collections.abc import Callable
from pathlib import Path

PRIVATE_FILE = 0o600
PRIVATE_DIR = 0o700


def private_folder(folder: Path) -> Path:
    """Make `folder` and keep it 0700 (an existing one is fixed); parents made on the way are
    0700 too (mkdir's `parents=True` would leave them to the umask)."""
    missing = [folder, *(parent for parent in folder.parents if not parent.exists())]
    for made in reversed([path for path in missing if not path.exists()]):
        made.mkdir(mode=PRIVATE_DIR, exist_ok=True)
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


def atomic_write(path: Path, content: str | bytes | Callable[[Path], object]) -> None:
    """Replace `path` whole or not at all: the content (text, bytes, or a writer given a path) goes
    to a private temporary file beside it, renamed over `path` once complete; on any failure or
    interrupt the temporary file is removed and `path` is untouched. Its folder is made private."""
    private_folder(path.parent)
    handle, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".partial")  # 0600
    temporary = Path(name)
    try:
        if callable(content):
            os.close(handle)
            content(temporary)
            os.chmod(temporary, PRIVATE_FILE)
        else:
            with os.fdopen(handle, "wb") as out:
                out.write(content.encode("utf-8") if isinstance(content, str) else content)
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
