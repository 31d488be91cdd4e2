"""One job of the tool worker: fork a child for it, watch the child, compose the outcome.

The child sends results as frames on a pipe that only it holds (its own forks close it, exec
closes it), and the worker does not wait for that pipe to end: a tool that leaves a process behind
still gets its result, and a child that dies is seen dying (a pidfd on Linux)."""

from __future__ import annotations

import faulthandler
import functools
import io
import os
import select
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from types import ModuleType
from typing import Any

from toolchat.safety import scrub
from toolchat.sandbox import call as sandboxing
from toolchat.tools import schema  # noqa: F401 - loaded once in the worker, not in every child
from toolchat.tools.isolation import processes
from toolchat.tools.isolation.frames import HEADER, read_frame, write_frame
from toolchat.tools.isolation.runner import cut, run_in_child, with_printed
from toolchat.tools.model import ToolStatus
from toolchat.tools.plugins import compiled


class JobState(Enum):
    """How following a child ended (`watch`)."""

    DONE = "done"  # the verdict called a frame the answer
    DIED = "died"  # the child ended first (its wait status comes with it)
    TIMEOUT = "timeout"  # the clock ran out
    TOO_LARGE = "too_large"  # it printed more than the bound
    CANCELLED = "cancelled"  # toolchat cancelled the job
    ORPHANED = "orphaned"  # toolchat went away: the worker kills everything and exits


class Verdict(Enum):
    """What a frame from the child means to `watch`."""

    DONE = "done"  # the answer
    RESTART = "restart"  # progress: the clock starts again


Judge = Callable[[Any], "Verdict | None"]  # a frame -> a Verdict, or None for neither


@dataclass
class Child:
    pid: int
    results: int  # the read end of the child's result frames
    printed: int  # the read end of its fds 1 and 2, or -1 when they go to /dev/null

    def close(self) -> None:
        for fd in (self.results, self.printed):
            if fd >= 0:
                os.close(fd)


def perform(
    job: dict[str, Any], requests: int, replies: int, module: ModuleType | None = None, preface: bytes = b""
) -> tuple[dict[str, Any] | None, int | None]:
    """The outcome of `job` (None when toolchat went away meanwhile: the worker then exits), and the
    pid of a job that returned normally, whose leftovers the worker kills right after replying.
    `module`: the plugin, imported already by a warm parent (warm.py), which this process is;
    `preface`: what that import printed, put before what the call prints."""
    started = time.monotonic()
    code = None if module is not None else compiled(job["module"])  # kept by the worker: no compiling per call
    call = sandboxing.Call(job.get("sandbox"), job["cwd"])

    def body(result_w: int) -> None:
        refused = call.enter()  # the sandbox step: after fork, before the tool's code
        if refused is None:
            status, output = run_in_child(job["module"], job["name"], job["arguments"], job["cwd"], code, module)
            status, output = status, call.explained(output)
        else:
            status, output = ToolStatus.ERROR.value, refused
        _flush()
        write_frame(result_w, {"status": status, "output": output})

    child = spawn(body, requests, replies, capture=True)
    try:
        bound = int(job.get("printed_limit", 0)) or None
        state, value, printed = watch(child, requests, job, float(job["timeout"]), lambda frame: Verdict.DONE, bound)
        printed = preface + printed
    finally:
        child.close()
        call.leave()
    if state is JobState.ORPHANED:
        return None, child.pid
    if state is JobState.DONE:  # the answer goes out first; the cleanup costs the caller nothing
        return _run_outcome(job, state, value, printed, None, time.monotonic() - started), child.pid
    status = stop(child.pid, state, value)  # stopped before anyone hears it was stopped
    return _run_outcome(job, state, value, printed, status, time.monotonic() - started), None


def outcome(job: dict[str, Any], state: JobState) -> dict[str, Any]:
    """The outcome of a job that ended `state` with nothing printed (a warm parent that hung or died)."""
    return _run_outcome(job, state, None, b"", None, 0.0)


def stop(pid: int, state: JobState, value: Any) -> int | None:
    """Kill what is left of a child; its wait status."""
    reaped = processes.kill_tree(pid)
    return value if state is JobState.DIED else reaped


def failed(job: dict[str, Any], exc: Exception) -> dict[str, Any]:
    """The outcome of a job the worker itself failed to run."""
    reason = f"the tool worker failed ({type(exc).__name__}: {exc})"
    if job.get("kind") == "run":
        return {"status": ToolStatus.ERROR.value, "output": f"Error: {reason}; the call was stopped"}
    return {"modules": {module: {"failure": reason} for module in job.get("modules", [])}}


def spawn(body: Callable[[int], None], requests: int, replies: int, *, capture: bool) -> Child:
    """Fork a child in its own session, stdin closed, fds 1 and 2 captured (or /dev/null), that runs
    `body(result_w)` and exits; it dies with the worker."""
    result_r, result_w = os.pipe()
    printed_r, printed_w = os.pipe() if capture else (-1, -1)
    worker = os.getpid()
    pid = os.fork()
    if pid == 0:
        try:
            processes.die_with_parent(worker)
            for fd in (requests, replies, result_r, printed_r):
                if fd >= 0:
                    os.close(fd)
            os.setsid()  # its own session and process group: killing the group kills what it started
            for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGQUIT, signal.SIGHUP, signal.SIGTSTP):
                signal.signal(sig, signal.SIG_DFL)
            os.register_at_fork(after_in_child=functools.partial(_close_quietly, result_w))
            _redirect(printed_w if capture else None)
            body(result_w)
        finally:
            os._exit(0)
    os.close(result_w)
    if capture:
        os.close(printed_w)
    return Child(pid, result_r, printed_r)


def _close_quietly(fd: int) -> None:
    try:
        os.close(fd)
    except OSError:
        pass


def _redirect(printed_w: int | None) -> None:
    """stdin from /dev/null; fds 1 and 2 (and fresh sys.stdout/stderr) to the printed-output pipe,
    or to /dev/null while importing for discovery."""
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


def watch(
    child: Child, requests: int, job: dict[str, Any], timeout: float, verdict: Judge, bound: int | None = None
) -> tuple[JobState, Any, bytes]:
    """Follow a child until `verdict` calls a frame DONE (DONE, that frame), it dies (DIED, its
    wait status), the clock runs out (TIMEOUT; RESTART frames reset it), it prints more than
    `bound` bytes (TOO_LARGE), the job is cancelled (CANCELLED) or toolchat is gone (ORPHANED);
    with what it printed."""
    deadline = time.monotonic() + timeout
    result, printed = bytearray(), bytearray()
    pidfd = _pidfd(child.pid)
    watched = [fd for fd in (child.results, requests, child.printed, pidfd) if fd >= 0]
    try:
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return JobState.TIMEOUT, None, bytes(printed)
            ready = select.select(watched, [], [], min(remaining, 3600.0 if pidfd >= 0 else 0.02))[0]
            if requests in ready:
                message = read_frame(requests)
                if message is None:
                    return JobState.ORPHANED, None, bytes(printed)
                if message.get("kind") == "cancel" and message.get("id") == job.get("id"):
                    return JobState.CANCELLED, None, bytes(printed)
                continue  # a cancel of an earlier job that had finished
            if child.printed in ready:
                _read_into(child.printed, printed, watched)
            if bound is not None and len(printed) > bound:
                return JobState.TOO_LARGE, None, bytes(printed[:bound])
            ended = pidfd in ready if pidfd >= 0 else _exited(child.pid)
            if child.results in ready or ended:
                if ended:
                    _drain(child.results, result, None)
                else:
                    _read_into(child.results, result, watched)
                for frame in _frames(result):
                    answer = verdict(frame)
                    if answer is Verdict.DONE:
                        _drain(child.printed, printed, bound)
                        return JobState.DONE, frame, bytes(printed)
                    if answer is Verdict.RESTART:
                        deadline = time.monotonic() + timeout
            if ended:
                _drain(child.printed, printed, bound)
                return JobState.DIED, _status(child.pid), bytes(printed)
    finally:
        if pidfd >= 0:
            os.close(pidfd)


def _frames(buffer: bytearray) -> list[Any]:
    """The whole frames at the start of `buffer`, taken out of it (a frame that is not JSON is
    dropped)."""
    import json

    found = []
    while len(buffer) >= HEADER.size:
        size = HEADER.unpack_from(buffer)[0]
        if len(buffer) < HEADER.size + size:
            break
        body = bytes(buffer[HEADER.size : HEADER.size + size])
        del buffer[: HEADER.size + size]
        try:
            found.append(json.loads(body))
        except ValueError:
            continue
    return found


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


def _read_into(fd: int, buffer: bytearray, watched: list[int]) -> None:
    chunk = os.read(fd, 1 << 16)
    if not chunk:
        watched.remove(fd)  # every holder closed it
    buffer += chunk


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


def _run_outcome(
    job: dict[str, Any], state: JobState, value: Any, printed_bytes: bytes, status: int | None, duration: float
) -> dict[str, Any]:
    printed = printed_bytes.decode("utf-8", errors="replace").strip()
    if state is JobState.DONE:
        outcome, output = (
            value.get("status", ToolStatus.ERROR.value),
            with_printed(str(value.get("output", "")), printed),
        )
    elif state is JobState.DIED:
        outcome = ToolStatus.ERROR.value
        output = with_printed(
            f"Error: the tool's process {processes.death(status)} without returning a result", printed
        )
    elif state is JobState.TIMEOUT:
        outcome = ToolStatus.TIMEOUT.value
        output = f"Error: the tool did not finish within {float(job['timeout']):g} s and was stopped"
    elif state is JobState.TOO_LARGE:
        outcome = ToolStatus.ERROR.value
        output = f"Error: the tool's output was too large (more than {_size(len(printed_bytes))}); it was stopped"
    else:
        outcome, output = ToolStatus.CANCELLED.value, "Cancelled: the call was interrupted and stopped"
    return {"status": outcome, "output": cut(scrub(output), int(job["limit"])), "duration": duration}


def _size(count: int) -> str:
    return f"{count / 1_000_000:g} MB" if count >= 1_000_000 else f"{count:,} bytes"
