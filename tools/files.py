"""Read-only file tools, confined to the project folder (the folder toolchat runs tools in).

A path that leaves the folder, by `..`, an absolute path or a symlink, is refused.
"""

import os
import re
from pathlib import Path

_MAX_READ = 16_000_000  # bytes of one file that are read; the rest of a bigger file is left unread
_SKIP_DIRS = {".git", ".hg", ".svn", "node_modules", "__pycache__", ".venv", "venv", ".tox"}


def _confined(path: str) -> Path:
    root = Path.cwd().resolve()
    target = (root / path).resolve()
    if target != root and root not in target.parents:
        raise PermissionError(f"{path!r} is outside the project folder; only files under it can be read")
    return target


def _shown(target: Path) -> str:
    relative = target.relative_to(Path.cwd().resolve())
    return str(relative) if str(relative) != "." else "."


def list_directory(path: str = ".") -> str:
    """List the files and folders in a folder of the project, with sizes.

    Args:
        path: The folder, relative to the project folder.
    """
    folder = _confined(path)
    if not folder.is_dir():
        raise NotADirectoryError(f"{path!r} is not a folder")
    lines = []
    for entry in sorted(folder.iterdir(), key=lambda p: (not p.is_dir(), p.name.lower())):
        if entry.is_symlink():
            lines.append(f"{entry.name} -> (symlink)")
        elif entry.is_dir():
            lines.append(f"{entry.name}/")
        else:
            lines.append(f"{entry.name}  ({entry.stat().st_size} bytes)")
    return "\n".join(lines) if lines else f"{_shown(folder)} is empty"


def read_file(path: str, start_line: int = 1, max_lines: int = 400) -> str:
    """Read a text file of the project, with line numbers.

    Args:
        path: The file, relative to the project folder.
        start_line: The first line to show (1-based).
        max_lines: The most lines to show.
    """
    target = _confined(path)
    if not target.is_file():
        raise FileNotFoundError(f"{path!r} is not a file")
    data, size = _head(target)
    if b"\0" in data[:8192]:
        return f"{_shown(target)} is a binary file ({size} bytes)"
    lines = data.decode("utf-8", errors="replace").splitlines()
    first = max(start_line, 1)
    chosen = lines[first - 1 : first - 1 + max(max_lines, 0)]
    body = "\n".join(f"{n:>5}  {line}" for n, line in enumerate(chosen, start=first))
    if size > len(data):
        return body + f"\n[the file has {size} bytes; only the first {len(data)} were read]"
    rest = len(lines) - (first - 1 + len(chosen))
    return body + (f"\n[{rest} more lines]" if rest > 0 else "")


def search_text(pattern: str, path: str = ".", regex: bool = False, max_results: int = 100) -> str:
    """Search the text files of a project folder for a string, like grep.

    Args:
        pattern: The text to find (a regular expression when regex is true).
        path: The folder or file to search, relative to the project folder.
        regex: Treat the pattern as a Python regular expression.
        max_results: The most matching lines to return.
    """
    target = _confined(path)
    matcher = re.compile(pattern if regex else re.escape(pattern))
    results: list[str] = []
    for file in _text_files(target):
        for number, line in enumerate(_lines(file), start=1):
            if matcher.search(line):
                results.append(f"{_shown(file)}:{number}: {line.strip()[:200]}")
                if len(results) >= max_results:
                    return "\n".join(results) + f"\n[stopped at {max_results} results]"
    return "\n".join(results) if results else f"no match for {pattern!r}"


def _text_files(target: Path):
    """The regular files to search; FIFOs, sockets and devices are skipped (reading one can wait
    forever)."""
    if not target.is_dir():
        if not target.is_file():
            raise ValueError(f"{_shown(target)!r} is not a regular file or a folder")
        yield target
        return
    root = Path.cwd().resolve()
    for folder, dirs, files in os.walk(target):
        dirs[:] = sorted(d for d in dirs if d not in _SKIP_DIRS and not d.startswith("."))
        for name in sorted(files):
            file = Path(folder, name)
            resolved = file.resolve()
            if (resolved == root or root in resolved.parents) and resolved.is_file():  # symlinks that leave are skipped
                yield file


def _head(file: Path) -> tuple[bytes, int]:
    """The first _MAX_READ bytes of a file, and its size: a huge file never fills memory."""
    with open(file, "rb") as stream:
        return stream.read(_MAX_READ), os.fstat(stream.fileno()).st_size


def _lines(file: Path):
    try:
        data, _ = _head(file)
    except OSError:
        return []
    if b"\0" in data[:8192]:
        return []
    return data.decode("utf-8", errors="replace").splitlines()
