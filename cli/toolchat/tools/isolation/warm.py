"""Warm parents: a per-module process forked from the tool worker that imports a plugin once and
forks each call of it, so a plugin's import cost is paid once, not per call.

The warm parent is confined by the call's sandbox policy before it imports (with its own private
temporary folder), and each call, a fresh fork of it, is confined again to the project and the
call's own temporary folder inside that one, then killed with everything it started, as a cold
call is. What a call sees of another is only what the module's import left in the parent: a call's
changes die with its process. A module that starts threads at import, fails or crashes at import,
or that the sandbox refuses, is not kept warm: its calls run cold, as before (one line, answered).
A warm parent is keyed by the file's stamp (size, mtime), cwd, policy and the hidden variables, so
an edited file is imported afresh; it is dropped after `IDLE` seconds unused and dies with the worker.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from toolchat.tools.isolation import jobs, processes
from toolchat.tools.isolation.frames import read_frame, write_frame

IDLE = 120.0  # seconds a warm parent lives unused
MOST = 8  # warm parents per worker (the least recently used goes first)


@dataclass
class _Parent:
    pid: int
    jobs: int  # the worker writes jobs here
    replies: int  # and reads outcomes here
    tmpdir: str
    used: float


_parents: dict[tuple[Any, ...], _Parent] = {}
_cold: set[tuple[Any, ...]] = set()  # keys whose module cannot be kept warm


def _key(job: dict[str, Any]) -> tuple[Any, ...] | None:
    try:
        info = os.stat(job["module"])
    except OSError:
        return None
    policy = json.dumps(job.get("sandbox"), sort_keys=True)
    return (job["module"], info.st_size, info.st_mtime_ns, job["cwd"], policy, tuple(job.get("hide") or ()))


def perform(job: dict[str, Any], requests: int, replies: int) -> tuple[dict[str, Any] | None, int | None]:
    """The outcome of a run job, from a warm parent when the module can be kept warm; else cold."""
    key = _key(job)
    if key is None or key in _cold:
        return jobs.perform(job, requests, replies)
    parent = _parents.get(key) or _start(key, job, requests)
    if isinstance(parent, tuple):
        return parent  # the import hung, or the job was cancelled or orphaned meanwhile
    if parent is None:
        _cold.add(key)
        return jobs.perform(job, requests, replies)
    parent.used = time.monotonic()
    return _relay(key, parent, job, requests), None


def _start(key: tuple[Any, ...], job: dict[str, Any], requests: int) -> Any:
    """A warm parent that imported the module; None when it cannot be kept warm; or, when the
    import hung or the job ended meanwhile, the (outcome, None) to answer with."""
    _drop_stale(key[0])
    while len(_parents) >= MOST:
        drop(min(_parents, key=lambda k: _parents[k].used))
    jobs_r, jobs_w = os.pipe()
    replies_r, replies_w = os.pipe()
    tmpdir = tempfile.mkdtemp(prefix="toolchat-warm-")
    pid = os.fork()
    if pid == 0:
        try:
            _parent_main(job, jobs_r, replies_w, tmpdir)
        finally:
            os._exit(0)
    os.close(jobs_r)
    os.close(replies_w)
    parent = _Parent(pid, jobs_w, replies_r, tmpdir, time.monotonic())
    processes.KEEP.add(pid)
    child = jobs.Child(pid, replies_r, -1)
    state, value, _ = jobs.watch(child, requests, job, float(job["timeout"]), lambda frame: jobs.Verdict.DONE)
    if state is jobs.JobState.DONE and value.get("ready"):
        _parents[key] = parent
        return parent
    _end(parent)
    if state is jobs.JobState.ORPHANED:
        return None, None
    if state in (jobs.JobState.TIMEOUT, jobs.JobState.CANCELLED):
        return jobs.outcome(job, state), None
    return None  # it failed, crashed, started threads or was refused: run cold


def _parent_main(job: dict[str, Any], jobs_r: int, replies_w: int, tmpdir: str) -> None:
    from pathlib import Path

    from toolchat.sandbox.policy import Policy, confine
    from toolchat.tools.plugins import compiled, import_plugin

    processes.die_with_parent(os.getppid())
    processes.keep_only_fds(jobs_r, replies_w)
    processes.KEEP.clear()
    _parents.clear()
    processes.become_subreaper()  # what a call leaves behind is this parent's to kill
    os.environ["TMPDIR"] = tempfile.tempdir = tmpdir
    refused = confine(Policy.from_job(job.get("sandbox")), job["cwd"], tmpdir)  # None: it holds (or is off)
    with _printed_at_import(int(job.get("printed_limit", 0)) or 1 << 20) as printed:
        try:
            os.chdir(job["cwd"])
            module = import_plugin(Path(job["module"]), compiled(job["module"]))
        except BaseException:  # noqa: BLE001 - a cold call reports the failure as it always did
            module = None
    warm = refused is None and module is not None and threading.active_count() == 1
    write_frame(replies_w, {"ready": warm})
    if warm:
        _serve(module, jobs_r, replies_w, printed[0])


@contextlib.contextmanager
def _printed_at_import(limit: int) -> Iterator[list[bytes]]:
    """What the module prints while it is imported (fds 1 and 2, its subprocesses too), up to
    `limit` bytes: it belongs to the first call's result, as it would have in a cold call."""
    printed = [b""]
    with tempfile.TemporaryFile() as capture:
        for fd in (1, 2):
            os.dup2(capture.fileno(), fd)
        try:
            yield printed
        finally:
            for stream in (sys.stdout, sys.stderr):
                with contextlib.suppress(Exception):
                    stream.flush()
            devnull = os.open(os.devnull, os.O_RDWR)
            for fd in (1, 2):
                os.dup2(devnull, fd)
            os.close(devnull)
            capture.seek(0)
            printed[0] = capture.read(limit)


def _serve(module: Any, jobs_r: int, replies_w: int, preface: bytes = b"") -> None:
    while True:
        job = read_frame(jobs_r)
        if job is None:
            break
        if job.get("kind") != "run":
            continue  # a cancel that came after its job had finished
        for name in job.get("hide") or ():
            os.environ.pop(name, None)
        outcome, leftover = jobs.perform(job, jobs_r, replies_w, module, preface)
        preface = b""  # printed at import: the first call's, once
        if outcome is None:
            break
        write_frame(replies_w, outcome)
        if leftover is not None:
            processes.kill_tree(leftover)
    processes.kill_all()


def _relay(key: tuple[Any, ...], parent: _Parent, job: dict[str, Any], requests: int) -> dict[str, Any] | None:
    """Hand the job to its warm parent and pass a cancel on; the parent's outcome."""
    try:
        write_frame(parent.jobs, job)
    except OSError:
        drop(key)
        return jobs.failed(job, OSError("its warm parent ended"))
    child = jobs.Child(parent.pid, parent.replies, -1)
    backstop = float(job["timeout"]) + 30.0  # the parent keeps the call's own time limit
    state, value, _ = jobs.watch(child, requests, job, backstop, lambda frame: jobs.Verdict.DONE)
    if state is jobs.JobState.CANCELLED:
        write_frame(parent.jobs, {"kind": "cancel", "id": job.get("id")})
        state, value, _ = jobs.watch(child, -1, job, backstop, lambda frame: jobs.Verdict.DONE)
    if state is jobs.JobState.DONE:
        return value
    drop(key)
    if state is jobs.JobState.ORPHANED:
        return None
    return jobs.outcome(job, jobs.JobState.DIED if state is jobs.JobState.DIED else state)


def _drop_stale(module: str) -> None:
    for key in [k for k in _parents if k[0] == module]:
        drop(key)


def drop(key: tuple[Any, ...]) -> None:
    parent = _parents.pop(key, None)
    if parent is not None:
        _end(parent)


def _end(parent: _Parent) -> None:
    """Kill a warm parent (what its call left is adopted by the worker, which kills it next) and
    remove its temporary folder."""
    for fd in (parent.jobs, parent.replies):
        try:
            os.close(fd)
        except OSError:
            pass
    processes.KEEP.discard(parent.pid)
    processes.kill_tree(parent.pid)
    shutil.rmtree(parent.tmpdir, ignore_errors=True)


def expire(now: float | None = None) -> float | None:
    """Drop the parents idle for `IDLE` seconds; the seconds until the next one would be."""
    now = time.monotonic() if now is None else now
    for key in [k for k, p in _parents.items() if now - p.used >= IDLE]:
        drop(key)
    return min((p.used + IDLE - now for p in _parents.values()), default=None)


def drop_all() -> None:
    for key in list(_parents):
        drop(key)
