"""One job of the tool worker: fork a child for it, watch the child, compose the outcome.

The child sends its result as one frame on a pipe that only it holds (its own forks close it, exec
closes it), and the worker does not wait for that pipe to end: a tool that leaves a process behind
still gets its result, and a child that dies is seen dying (a pidfd on Linux)."""

from __future__ import annotations

import faulthandler  # noqa: F401 - children disable it
import functools
import io  # noqa: F401
import os
import select
import signal
import time
from pathlib import Path
from types import CodeType
from typing import Any

from toolchat.tools import processes
from toolchat.tools.model import ToolStatus
from toolchat.tools import schema  # noqa: F401 - loaded once in the worker, not in every child
from toolchat.tools.plugins import compiled, describe, import_failure, import_plugin
from toolchat.tools.runner import cut, run_in_child, with_printed
from toolchat.tools.worker import _complete_frame, _read_frame, _write_frame

_ORPHANED = "orphaned"


def perform(job: dict[str, Any], requests: int, replies: int) -> tuple[dict[str, Any] | None, int | None]:
    """The outcome of `job` (None when toolchat went away meanwhile: the worker then exits), and the
    pid of a job that returned normally, whose leftovers the worker kills right after replying."""
    running = job["kind"] == "run"
    result_r, result_w = os.pipe()
    printed_r, printed_w = os.pipe() if running else (-1, -1)
    started = time.monotonic()
    code = compiled(job["module"]) if running else None  # kept here, so each call skips compiling
    worker = os.getpid()
    pid = os.fork()
    if pid == 0:
        processes.die_with_parent(worker)
        for fd in (requests, replies, result_r, printed_r):
            if fd >= 0:
                os.close(fd)
        _child(job, result_w, printed_w, code)
    os.close(result_w)
    if running:
        os.close(printed_w)
    try:
        state, value, printed = _watch(pid, result_r, printed_r, requests, job)
    finally:
        os.close(result_r)
        if running:
            os.close(printed_r)
    if state == _ORPHANED:
        return None, pid
    if state == "done":  # the answer goes out first; the cleanup costs the caller nothing
        outcome = _run_outcome(job, state, value, printed, None, time.monotonic() - started) if running else value
        return outcome, pid
    reaped = processes.kill_tree(pid)  # stopped before anyone hears it was stopped
    status = value if state == "died" else reaped
    if running:
        return _run_outcome(job, state, value, printed, status, time.monotonic() - started), None
    return _describe_outcome(job, state, value, status), None


def failed(job: dict[str, Any], exc: Exception) -> dict[str, Any]:
    """The outcome of a job the worker itself failed to run."""
    reason = f"the tool worker failed ({type(exc).__name__}: {exc})"
    if job.get("kind") == "run":
        return {"status": ToolStatus.ERROR.value, "output": f"Error: {reason}; the call was stopped"}
    return {"failure": reason}


def _child(job: dict[str, Any], result_w: int, printed_w: int, code: CodeType | None) -> None:
    try:
        os.setsid()  # its own session and process group: killing the group kills what it started
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGQUIT, signal.SIGHUP, signal.SIGTSTP):
            signal.signal(sig, signal.SIG_DFL)
        os.register_at_fork(after_in_child=functools.partial(_close_quietly, result_w))
        _redirect(printed_w if printed_w >= 0 else None)
        if job["kind"] == "run":
            status, output = run_in_child(job["module"], job["name"], job["arguments"], job["cwd"], code)
            value: dict[str, Any] = {"status": status, "output": output}
        else:
            value = _describe_in_child(job["module"])
        _flush()
        _write_frame(result_w, value)
    finally:
        os._exit(0)


def _describe_in_child(module_file: str) -> dict[str, Any]:
    from toolchat.errors import ToolLoadError

    try:
        module = import_plugin(Path(module_file))
    except BaseException as exc:  # noqa: BLE001 - a plugin can raise anything at import
        return {"failure": import_failure(exc)}
    try:
        return {"tools": describe(module)}
    except ToolLoadError as exc:
        return {"failure": exc.message}
    except Exception as exc:  # noqa: BLE001 - a hostile signature or docstring
        return {"failure": f"its tools could not be described: {type(exc).__name__}: {exc}"}


def _close_quietly(fd: int) -> None:
    try:
        os.close(fd)
    except OSError:
        pass


def _redirect(printed_w: int | None) -> None:
    """stdin from /dev/null; fds 1 and 2 (and fresh sys.stdout/stderr) to the printed-output pipe,
    or to /dev/null while importing for discovery."""
    import faulthandler
    import io
    import sys

    faulthandler.disable()
    devnull = os.open(os.devnull, os.O_RDWR)
    os.dup2(devnull, 0)
    target = printed_w if printed_w is not None else devnull
    os.dup2(target, 1)
    os.dup2(target, 2)
    for fd in {devnull, target}:
        if fd > 2:
            os.close(fd)
    sys.stdin = open(os.devnull, encoding="utf-8")
    stream = io.TextIOWrapper(os.fdopen(os.dup(1), "wb"), encoding="utf-8", errors="replace", line_buffering=True)
    sys.stdout = sys.stderr = sys.__stdout__ = sys.__stderr__ = stream


def _flush() -> None:
    import sys

    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:  # noqa: BLE001 - a tool may have closed or replaced it
            pass


def _watch(pid: int, result_r: int, printed_r: int, requests: int,
           job: dict[str, Any]) -> tuple[str, Any, bytes]:
    """("done", result) | ("died", wait status) | ("timeout" | "cancelled" | "too_large" |
    "orphaned", None), with what the child printed."""
    deadline = time.monotonic() + float(job["timeout"])
    bound = int(job.get("printed_limit", 0)) or None
    result, printed = bytearray(), bytearray()
    pidfd = _pidfd(pid)
    watched = [result_r, requests] + ([printed_r] if printed_r >= 0 else []) + ([pidfd] if pidfd >= 0 else [])
    try:
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return "timeout", None, bytes(printed)
            ready = select.select(watched, [], [], min(remaining, 3600.0 if pidfd >= 0 else 0.02))[0]
            if requests in ready:
                message = _read_frame(requests)
                if message is None:
                    return _ORPHANED, None, bytes(printed)
                if message.get("kind") == "cancel" and message.get("id") == job.get("id"):
                    return "cancelled", None, bytes(printed)
                continue  # a cancel of an earlier job that had finished
            if printed_r in ready:
                _read_into(printed_r, printed, watched)
            if bound is not None and len(printed) > bound:
                return "too_large", None, bytes(printed[:bound])
            if result_r in ready:
                _read_into(result_r, result, watched)
                value = _complete_frame(result)
                if value is not None:
                    _drain(printed_r, printed, bound)
                    return "done", value, bytes(printed)
            ended = pidfd in ready if pidfd >= 0 else _exited(pid)
            if ended:
                _drain(result_r, result, None)
                _drain(printed_r, printed, bound)
                value = _complete_frame(result)
                if value is not None:
                    return "done", value, bytes(printed)
                return "died", _status(pid), bytes(printed)
    finally:
        if pidfd >= 0:
            os.close(pidfd)


def _pidfd(pid: int) -> int:
    try:
        return os.pidfd_open(pid)  # type: ignore[attr-defined]
    except (AttributeError, OSError):
        return -1


_reaped: dict[int, int] = {}


def _exited(pid: int) -> bool:
    try:
        done, status = os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        return True
    if done:
        _reaped[pid] = status
    return bool(done)


def _status(pid: int) -> int | None:
    if pid in _reaped:
        return _reaped.pop(pid)
    try:
        return os.waitpid(pid, 0)[1]
    except ChildProcessError:
        return None


def _read_into(fd: int, buffer: bytearray, watched: list[int]) -> bool:
    chunk = os.read(fd, 1 << 16)
    if not chunk:
        watched.remove(fd)  # every holder closed it
        return False
    buffer += chunk
    return True


def _drain(fd: int, buffer: bytearray, bound: int | None) -> None:
    """What is already in the pipe, without waiting for writers that are still alive."""
    if fd < 0:
        return
    os.set_blocking(fd, False)
    try:
        while bound is None or len(buffer) <= bound:
            chunk = os.read(fd, 1 << 16)
            if not chunk:
                break
            buffer += chunk
    except BlockingIOError:
        pass
    if bound is not None:
        del buffer[bound:]


def _run_outcome(job: dict[str, Any], state: str, value: Any, printed_bytes: bytes, status: int | None,
                 duration: float) -> dict[str, Any]:
    printed = printed_bytes.decode("utf-8", errors="replace").strip()
    if state == "done":
        outcome, output = value.get("status", ToolStatus.ERROR.value), with_printed(str(value.get("output", "")), printed)
    elif state == "died":
        outcome = ToolStatus.ERROR.value
        output = with_printed(f"Error: the tool's process {processes.death(status)} without returning a result", printed)
    elif state == "timeout":
        outcome = ToolStatus.TIMEOUT.value
        output = f"Error: the tool did not finish within {float(job['timeout']):g} s and was stopped"
    elif state == "too_large":
        outcome = ToolStatus.ERROR.value
        output = (f"Error: the tool's output was too large (more than {_size(len(printed_bytes))}); "
                  "it was stopped")
    else:
        outcome, output = ToolStatus.CANCELLED.value, "Cancelled: the call was interrupted and stopped"
    return {"status": outcome, "output": cut(output, int(job["limit"])), "duration": duration}


def _size(count: int) -> str:
    return f"{count / 1_000_000:g} MB" if count >= 1_000_000 else f"{count:,} bytes"


def _describe_outcome(job: dict[str, Any], state: str, value: Any, status: int | None) -> dict[str, Any]:
    if state == "done":
        return value
    if state == "died":
        return {"failure": f"the process {processes.death(status)} while importing it"}
    if state == "timeout":
        return {"failure": f"importing it took longer than {float(job['timeout']):g} s (does it hang at import?)"}
    return {"failure": "importing it was interrupted"}
