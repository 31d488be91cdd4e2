"""Running a tool in a child process: a real timeout, a crash or exit that cannot take toolchat
down, and printed output that never reaches toolchat's own terminal or stdout.

The child is forked, so the tool's module is already loaded and nothing is pickled on the way in;
it gets its own session (process group) so a timeout kills whatever the tool started too.
"""

from __future__ import annotations

import inspect
import json
import os
import pickle
import select
import signal
import tempfile
import time
from pathlib import Path
from typing import Any

from toolchat.tools.model import Tool, ToolResult, ToolStatus

DEFAULT_TIMEOUT = 60.0
DEFAULT_MAX_OUTPUT_CHARS = 20_000


def run_tool(
    tool: Tool,
    arguments: dict[str, Any],
    *,
    cwd: Path,
    timeout: float = DEFAULT_TIMEOUT,
    max_output_chars: int = DEFAULT_MAX_OUTPUT_CHARS,
) -> ToolResult:
    """Run `tool` with validated `arguments`; every outcome comes back as a ToolResult.

    KeyboardInterrupt stops the tool's process before it propagates.
    """
    try:
        tool.ensure_loaded()  # imported here, once per session, so every forked run has it
    except BaseException as exc:  # noqa: BLE001 - a plugin's import can raise anything
        if isinstance(exc, KeyboardInterrupt):
            raise
        return ToolResult(ToolStatus.ERROR, f"Error: the tool's module failed to load: {type(exc).__name__}: {exc}")
    read_fd, write_fd = os.pipe()
    started = time.monotonic()
    pid = os.fork()
    if pid == 0:  # the child: never returns
        os.close(read_fd)
        _child(write_fd, tool, arguments, str(cwd), max_output_chars)
    os.close(write_fd)
    try:
        status, output = _collect(read_fd, pid, timeout)
    finally:
        os.close(read_fd)
        _stop(pid)
    return ToolResult(status, output, time.monotonic() - started)


def _collect(read_fd: int, pid: int, timeout: float) -> tuple[ToolStatus, str]:
    """Read the child's pickled result until EOF, or give up at the timeout."""
    deadline = time.monotonic() + timeout
    chunks: list[bytes] = []
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return ToolStatus.TIMEOUT, f"Error: the tool did not finish within {timeout:g} s and was stopped"
        ready, _, _ = select.select([read_fd], [], [], remaining)
        if not ready:
            continue
        chunk = os.read(read_fd, 1 << 20)
        if not chunk:
            break
        chunks.append(chunk)
    try:
        status, output = pickle.loads(b"".join(chunks))
        return ToolStatus(status), output
    except Exception:  # nothing or half a result: the process died
        return ToolStatus.ERROR, f"Error: the tool's process {_death(pid)} without returning a result"


def _death(pid: int) -> str:
    try:
        _, code = os.waitpid(pid, 0)
    except ChildProcessError:
        return "ended"
    if os.WIFSIGNALED(code):
        return f"crashed (signal {signal.Signals(os.WTERMSIG(code)).name})"
    return f"exited with code {os.WEXITSTATUS(code)}"


def _stop(pid: int) -> None:
    """Kill the tool's whole session (it may have started children) and reap the child."""
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    try:
        os.waitpid(pid, 0)
    except ChildProcessError:
        pass


def _child(write_fd: int, tool: Tool, arguments: dict[str, Any], cwd: str, limit: int) -> None:
    try:
        os.setsid()
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        capture = tempfile.TemporaryFile()
        _redirect_output(capture.fileno())
        try:
            os.chdir(cwd)
            value = _call(tool, arguments)
            status, output = ToolStatus.OK.value, to_text(value)
        except SystemExit as exc:
            status, output = ToolStatus.ERROR.value, f"Error: the tool called sys.exit({exc.code!r})"
        except BaseException as exc:  # the model reads the failure; no traceback
            status, output = ToolStatus.ERROR.value, f"Error: {type(exc).__name__}: {exc}"
        printed = _printed(capture)
        if printed:
            output = f"{output}\n\n[printed output]\n{printed}" if output else printed
        data = pickle.dumps((status, cut(output, limit)))
        view = memoryview(data)
        while view:
            view = view[os.write(write_fd, view):]
    finally:
        os._exit(0)


def _redirect_output(fd: int) -> None:
    """Point fds 1 and 2, and fresh sys.stdout/sys.stderr, at the capture file. The parent's
    Python-level buffers are dropped unflushed, so nothing toolchat had buffered is written twice."""
    import faulthandler
    import io
    import sys

    faulthandler.disable()
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)  # a tool that reads stdin gets EOF, never the user's terminal
    sys.stdin = open(os.devnull, encoding="utf-8")
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    stream = io.TextIOWrapper(os.fdopen(os.dup(fd), "wb"), encoding="utf-8", errors="replace",
                              line_buffering=True)
    sys.stdout = sys.stderr = sys.__stdout__ = sys.__stderr__ = stream


def _call(tool: Tool, arguments: dict[str, Any]) -> Any:
    kwargs = dict(arguments)
    for name, enum_class in tool.enum_params.items():
        if kwargs.get(name) is not None:
            kwargs[name] = enum_class(kwargs[name])
    if inspect.iscoroutinefunction(tool.func):
        import asyncio  # only async tools pay for it

        return asyncio.run(tool.func(**kwargs))
    value = tool.func(**kwargs)
    if inspect.isawaitable(value):
        import asyncio

        async def wait() -> Any:
            return await value
        return asyncio.run(wait())
    return value


def _printed(capture: Any) -> str:
    import sys

    try:
        sys.stdout.flush()
    except Exception:
        pass
    capture.seek(0)
    return capture.read().decode("utf-8", errors="replace").strip()


def to_text(value: Any) -> str:
    """A tool's return value as the text the model reads."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, (bytes, bytearray)):
        return bytes(value).decode("utf-8", errors="replace")
    if isinstance(value, (dict, list, tuple)):
        return json.dumps(value, ensure_ascii=False, default=str, indent=None)
    return str(value)


def cut(text: str, limit: int) -> str:
    """`text` cut to `limit` characters, with a note of how much was cut."""
    if limit <= 0 or len(text) <= limit:
        return text
    dropped = len(text) - limit
    return f"{text[:limit]}\n[output cut: {dropped} of {len(text)} characters not shown]"
