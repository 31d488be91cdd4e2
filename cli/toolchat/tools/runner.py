"""Running a tool in a child process: a real timeout, a crash or exit that cannot take toolchat
down, and printed output that never reaches toolchat's own terminal or stdout.

The child is forked, so the tool's module is already loaded and nothing is pickled on the way in;
it gets its own session (process group) so a timeout kills whatever the tool started too.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import multiprocessing
import os
import signal
import tempfile
import time
from multiprocessing.connection import Connection
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
    ctx = multiprocessing.get_context("fork")
    receiver, sender = ctx.Pipe(duplex=False)
    process = ctx.Process(
        target=_child, args=(sender, tool, arguments, str(cwd), max_output_chars), daemon=True
    )
    started = time.monotonic()
    process.start()
    sender.close()
    try:
        if receiver.poll(timeout):
            status, output = _receive(receiver, process)
        else:
            status, output = ToolStatus.TIMEOUT, f"Error: the tool did not finish within {timeout:g} s and was stopped"
    finally:
        _stop(process)
        receiver.close()
    return ToolResult(status, output, time.monotonic() - started)


def _receive(receiver: Connection, process: Any) -> tuple[ToolStatus, str]:
    try:
        status, output = receiver.recv()
        return ToolStatus(status), output
    except (EOFError, OSError):
        process.join(5)
        code = process.exitcode
        if code is not None and code < 0:
            reason = f"crashed (signal {signal.Signals(-code).name})"
        else:
            reason = f"exited with code {code}"
        return ToolStatus.ERROR, f"Error: the tool's process {reason} without returning a result"


def _stop(process: Any) -> None:
    if process.is_alive():
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            process.kill()
    process.join(5)
    # the tool may have left children in its session; they go too
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError, TypeError):
        pass


def _child(sender: Connection, tool: Tool, arguments: dict[str, Any], cwd: str, limit: int) -> None:
    os.setsid()
    signal.signal(signal.SIGINT, signal.SIG_DFL)
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
    sender.send((status, cut(output, limit)))
    sender.close()


def _redirect_output(fd: int) -> None:
    """Point fds 1 and 2, and fresh sys.stdout/sys.stderr, at the capture file. The parent's
    Python-level buffers are dropped unflushed, so nothing toolchat had buffered is written twice."""
    import faulthandler
    import io
    import sys

    faulthandler.disable()
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
        return asyncio.run(tool.func(**kwargs))
    value = tool.func(**kwargs)
    if inspect.isawaitable(value):
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
