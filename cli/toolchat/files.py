"""Private files and folders: what toolchat writes may hold a conversation or a key, so it is
0600 in 0700 folders, and a symlink is never followed into someone else's file. Files replaced
whole (trust, the tool cache, the bundled model) are written atomically, here."""

from __future__ import annotations

import errno
import os
import re
import shutil
import stat
import tempfile
from collections.abc import Callable
from pathlib import Path

PRIVATE_FILE = 0o600
PRIVATE_DIR = 0o700


def private_folder(folder: Path, root: Path | None = None) -> Path:
    """Make `folder` 0700 with every missing parent (mkdir's `parents=True` would leave them to
    the umask). With `root` (toolchat's own data or cache dir), the folders from `root` down are
    kept 0700 too, so no one else can list the project folders in `sessions/`. An existing folder
    is only tightened when it is the user's own, a real folder (never through a symlink) and
    writable by no one else: a shared one with the sticky bit (`/tmp`), owned by the user or root,
    keeps its mode; any other that others may write in is refused (they could swap what toolchat
    writes)."""
    ours = [folder]
    if root is not None and folder.is_relative_to(root):
        ours += [parent for parent in folder.parents if parent.is_relative_to(root)]
    for path in ours:
        if path.exists():
            _keep_private(path, tighten=True)  # refused before anything is made in it
    _make(folder)
    return folder


def _make(folder: Path) -> None:
    """Each missing folder down to `folder`, 0700 whatever the umask; none in a shared folder."""
    missing = [path for path in (folder, *folder.parents) if not path.exists()]
    if missing:
        _keep_private(missing[-1].parent, tighten=False)
    for made in reversed(missing):
        made.mkdir(mode=PRIVATE_DIR, exist_ok=True)
        os.chmod(made, PRIVATE_DIR)


def _keep_private(path: Path, tighten: bool) -> None:
    info, link = path.stat(), path.is_symlink()
    mode = stat.S_IMODE(info.st_mode)
    sticky = mode & stat.S_ISVTX and info.st_uid in (0, os.getuid())  # its owner could still rename in it
    if mode & 0o022 and not sticky:
        shared = f"other users may write in {path} (mode {mode:04o}), so toolchat writes nothing there"
        raise PermissionError(errno.EACCES, shared)
    if tighten and mode != PRIVATE_DIR and not mode & 0o022 and not link and info.st_uid == os.getuid():
        os.chmod(path, PRIVATE_DIR)


def open_private(path: Path, flags: int = os.O_WRONLY | os.O_APPEND | os.O_CREAT) -> int:
    """An fd for `path`, 0600, refusing a symlink in its place (a swapped file would receive
    someone's conversation) and anything not a regular file: opened non-blocking, so a FIFO in
    its place is refused at once, never waited on. An existing file of ours with looser
    permissions is fixed (another user's, that we may append to, is left as it is)."""
    fd = os.open(path, flags | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0), PRIVATE_FILE)
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise OSError(errno.EINVAL, "not a regular file")
        os.set_blocking(fd, True)
        if stat.S_IMODE(info.st_mode) != PRIVATE_FILE and info.st_uid == os.getuid():
            os.fchmod(fd, PRIVATE_FILE)
    except OSError:
        os.close(fd)
        raise
    return fd


def read_private(path: Path) -> str:
    """The text of a private file of toolchat's (trust records, the tool cache), through
    `open_private`: a FIFO or device in its place is an OSError, never a hang."""
    with os.fdopen(open_private(path, os.O_RDONLY), encoding="utf-8", errors="replace") as file:
        return file.read()


def private_file(path: Path) -> int:
    """`open_private` for appending to a file the user named (a trace): its missing folders are
    made 0700 (each of them); an existing folder is the user's and keeps its mode, but one others
    may write in without the sticky bit is refused."""
    _make(path.parent)
    _keep_private(path.parent, tighten=False)
    return open_private(path)


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


# toolchat-KIND-PID-START-NS-XXXXXXXX: the maker's process id, its start (clock ticks since boot)
# and PID namespace, then mkdtemp's eight random characters
_SCRATCH = re.compile(r"toolchat-(?:call|mcp)-([1-9]\d{0,9})-(\d{1,20})-(\d{1,20})-[a-z0-9_]{8}")
_swept = False


def scratch_folder(kind: str) -> str:
    """A private (0700) temporary folder for one call or one MCP server, named after the process
    that makes it, which removes it when done. A `kill -9` leaves it behind, so the first one a
    process makes first removes those whose maker is gone."""
    global _swept
    if not _swept:
        _swept = True
        sweep_scratch(Path(tempfile.gettempdir()))
    pid = os.getpid()
    return tempfile.mkdtemp(prefix=f"toolchat-{kind}-{pid}-{_started(pid) or 0}-{_namespace()}-")


def sweep_scratch(folder: Path) -> None:
    """Remove the scratch folders in `folder` whose maker has exited: only this user's own real
    folders (never a symlink), 0700 as made, named exactly as `scratch_folder` names them. The
    maker is the process with its number and start time: a number used again by another process
    (started later) is not the maker. A folder made in another PID namespace (a container sharing
    /tmp) is kept: its number means nothing here."""
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return
    namespace = _namespace()
    for entry in entries:
        match = _SCRATCH.fullmatch(entry.name)
        try:
            if match is None or int(match.group(3)) != namespace or not entry.is_dir(follow_symlinks=False):
                continue
            info = entry.stat(follow_symlinks=False)
            if info.st_uid != os.getuid() or stat.S_IMODE(info.st_mode) != PRIVATE_DIR:
                continue
        except OSError:
            continue
        if not _alive(int(match.group(1)), int(match.group(2))):
            shutil.rmtree(entry.path, ignore_errors=True)


def _alive(pid: int, start: int) -> bool:
    """Whether process `pid`, started at `start`, still runs. Where /proc does not say when a
    process started (start 0), any process with that number counts."""
    if start:
        return _started(pid) == start
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError):
        return True  # someone else's process, or no such number: leave it be
    return True


def _started(pid: int) -> int | None:
    """When process `pid` started, in clock ticks since boot (/proc/PID/stat's 22nd field; the
    2nd, the command's name in parentheses, may hold spaces); None without such a process."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as file:
            fields = file.read().rsplit(b")", 1)[1].split()
        return int(fields[19])
    except (OSError, IndexError, ValueError):
        return None


def _namespace() -> int:
    """The inode of this process's PID namespace (0 where /proc does not show it)."""
    try:
        return os.stat("/proc/self/ns/pid").st_ino
    except OSError:
        return 0
