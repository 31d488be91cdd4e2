"""The tool worker: a small fork server that every tool call and every plugin import is forked
from, never toolchat's own process (which soon runs threads: the spinner, prompt-toolkit, MCP's
event loop, and forking a process with threads can deadlock the child).

`start()` forks it first thing in `main`, before any thread exists (tests and embedded use start
it on first use). Each job gets a fresh child in its own session with stdin closed; the worker
reads the child's printed output (bounded), waits for its result frame or its death, and kills
every process the job started: its process group, and on Linux every orphan, since the worker is
their subreaper. The worker reads requests from a pipe; when toolchat dies the pipe ends, and the
worker kills whatever runs and exits.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from toolchat.tools.isolation.frames import read_frame, write_frame

if TYPE_CHECKING:
    from toolchat.tools.model import ToolResult


@dataclass
class _Worker:
    pid: int
    requests: int  # toolchat writes jobs here
    replies: int  # and reads their outcomes here
    owner: int = field(default_factory=os.getpid)
    last_id: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)


_pool: list[_Worker] = []  # the first is forked by start(); more only while calls overlap
_pool_lock = threading.Lock()


SCRUBBED = ("OPENAI_API_KEY",)  # the variables toolchat itself reads a key from
_hidden: set[str] = set()  # more variables holding a secret in force, named by hide_secrets()


def hide_secrets(secrets: Iterable[str | None], environ: Mapping[str, str] | None = None) -> None:
    """Keep from every tool the variables whose value holds one of `secrets` (an api_key given as
    `${MY_TOKEN}`, a secret-looking `${VAR}` of the config): each later job tells the worker to
    drop them from its environment before anything of the job runs."""
    environ = os.environ if environ is None else environ
    wanted = [s.strip() for s in secrets if s and len(s.strip()) >= 4]
    _hidden.update(name for name, value in environ.items() if any(secret in value for secret in wanted))


def _drop_variables(names: Iterable[str]) -> None:
    for name in (*SCRUBBED, *names):  # toolchat's own key is never passed on to a tool
        os.environ.pop(name, None)


def start() -> None:
    """Fork the worker now (idempotent). Call before any thread starts. Without fork (Windows)
    there is no worker, and running Python tools says so."""
    if not hasattr(os, "fork"):
        return
    with _pool_lock:
        if not (_pool and _pool[0].owner == os.getpid()):
            _pool[:] = [_fork_worker()]  # (a fork of toolchat does not share its parent's workers)


def _fork_worker() -> _Worker:
    job_r, job_w = os.pipe()
    reply_r, reply_w = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            _serve(job_r, reply_w)
        finally:
            os._exit(0)
    os.close(job_r)
    os.close(reply_w)
    return _Worker(pid, job_w, reply_r)


def _acquire() -> _Worker:
    """An idle worker, locked for one job. Calls that overlap (the calls of one reply run at once,
    `toolchat serve` answering several requests) each get their own, so frames to and from one
    worker are never mixed: one more worker is forked then, from a process that may have threads by
    now, which is still no worse than forking every call from it."""
    start()
    with _pool_lock:
        for worker in _pool:
            if worker.lock.acquire(blocking=False):
                return worker
        worker = _fork_worker()
        worker.lock.acquire()
        _pool.append(worker)
        return worker


def _retire(worker: _Worker) -> None:
    """Take a dead worker out of the pool (while its job lock is held)."""
    with _pool_lock:
        if worker in _pool:
            _pool.remove(worker)
    _close(worker)


def _close(worker: _Worker) -> None:
    """Close a worker's pipes (it kills whatever it runs and exits) and reap it."""
    for fd in (worker.requests, worker.replies):
        try:
            os.close(fd)
        except OSError:
            pass
    try:
        os.waitpid(worker.pid, 0)
    except ChildProcessError:
        pass


def stop() -> None:
    """End every worker; the next job starts a new one."""
    with _pool_lock:
        workers = [worker for worker in _pool if worker.owner == os.getpid()]
        _pool.clear()
    for worker in workers:
        _close(worker)


def worker_pid() -> int | None:
    """The pid of the first worker (the one `main` starts)."""
    return _pool[0].pid if _pool and _pool[0].owner == os.getpid() else None


def request(job: dict[str, Any]) -> dict[str, Any] | None:
    """Send one job and wait for its outcome; None if the worker died. KeyboardInterrupt stops the
    job (and everything it started) before it propagates. Jobs carry ids, so a reply left over
    from an interrupted job is never taken for the next one's."""
    if not hasattr(os, "fork"):
        return None
    worker = _acquire()
    try:
        worker.last_id += 1
        job = {**job, "id": worker.last_id, "hide": sorted(_hidden)}
        sent = False
        me = threading.get_ident()
        try:
            with _flight:  # a cancel from another thread never lands inside this frame
                write_frame(worker.requests, job)
                sent = True
                _in_flight[me] = (worker, job["id"])
            reply = _reply_to(worker, job["id"])
        except KeyboardInterrupt:
            if sent:
                _cancel(worker, job["id"])
            raise
        except OSError:
            reply = None
        finally:
            with _flight:
                _in_flight.pop(me, None)
        if reply is None:
            _retire(worker)
        return reply
    finally:
        worker.lock.release()


_in_flight: dict[int, tuple[_Worker, int]] = {}  # thread ident -> the worker and id of its job
_flight = threading.Lock()


def cancel_job_of(thread: int) -> None:
    """Stop the job thread `thread` (an ident) is waiting on, if it has one; its outcome is then
    "cancelled". For a server stopping a request whose client went away, from another thread."""
    with _flight:
        worker, job_id = _in_flight.get(thread, (None, 0))
        if worker is not None:
            try:
                write_frame(worker.requests, {"kind": "cancel", "id": job_id})
            except OSError:
                pass


def _reply_to(worker: _Worker, job_id: int) -> dict[str, Any] | None:
    while True:
        reply = read_frame(worker.replies)
        if reply is None or reply.get("id") == job_id:
            return reply


def _cancel(worker: _Worker, job_id: int) -> None:
    try:
        with _flight:  # never inside a cancel another thread is writing (cancel_job_of)
            write_frame(worker.requests, {"kind": "cancel", "id": job_id})
    except OSError:
        return
    while True:  # the worker answers as soon as the job is killed
        try:
            _reply_to(worker, job_id)
            return
        except KeyboardInterrupt:
            continue
        except OSError:
            return


def run_call(module_file: str, name: str, arguments: dict[str, Any], limits: Any) -> ToolResult:
    """Run tool `name` of the plugin `module_file` in a child of the worker, within `limits`."""
    from toolchat.tools.model import ToolResult, ToolStatus

    started = time.monotonic()
    reply = request(
        {
            "kind": "run",
            "module": module_file,
            "name": name,
            "arguments": arguments,
            "cwd": str(limits.cwd),
            "timeout": limits.timeout,
            "limit": limits.max_output_chars,
            "printed_limit": limits.max_printed_bytes,
            "sandbox": limits.sandbox.policy_for(name).to_job() if getattr(limits, "sandbox", None) else None,
        }
    )
    if reply is None:
        reason = (
            "the tool worker ended during the call; the call was stopped"
            if hasattr(os, "fork")
            else "Python tools run in forked processes, which this system does not have (Linux and macOS do)"
        )
        return ToolResult(ToolStatus.ERROR, f"Error: {reason}", time.monotonic() - started)
    return ToolResult(ToolStatus(reply["status"]), reply["output"], time.monotonic() - started)


def describe_modules(module_files: list[str], timeout: float) -> dict[str, dict[str, Any]]:
    """{file: {"tools": [...]} | {"failure": "why"}}: the modules imported in a child of the worker,
    each within `timeout` seconds."""
    reply = request({"kind": "describe", "modules": module_files, "timeout": timeout})
    modules = reply.get("modules", {}) if reply is not None else {}
    return {file: modules.get(file, {"failure": "the tool worker ended while importing it"}) for file in module_files}


# ---- the worker process ----


def _serve(requests: int, replies: int) -> None:
    from toolchat.tools.isolation import processes

    os.setsid()  # the terminal's signals go to toolchat, which cancels through the pipe
    for sig in (signal.SIGINT, signal.SIGQUIT, signal.SIGHUP, signal.SIGTSTP, signal.SIGTTIN, signal.SIGTTOU):
        signal.signal(sig, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, lambda *_: (processes.kill_all(), os._exit(0)))
    processes.keep_only_fds(requests, replies)
    processes.become_subreaper()
    _drop_variables(())
    from toolchat.tools.isolation import describing, jobs, warm  # loaded once here, not in every child

    while True:
        job = _next_job(requests, warm)
        if job is None:
            break  # toolchat is gone
        if job.get("kind") == "cancel":
            continue  # it came after the job had finished
        _drop_variables(job.get("hide") or ())
        try:
            if job["kind"] == "describe":
                outcome, leftover = describing.describe_all(job, requests, replies), None
            else:
                outcome, leftover = warm.perform(job, requests, replies)
        except Exception as exc:  # noqa: BLE001 - a fault of the worker itself: stop the job, keep serving
            warm.drop_all()
            processes.kill_all()
            outcome, leftover = jobs.failed(job, exc), None
        if outcome is None:
            break
        try:
            write_frame(replies, {**outcome, "id": job.get("id")})
        except OSError:
            break
        if leftover is not None:
            processes.kill_tree(leftover)  # before the next job is read
    warm.drop_all()
    processes.kill_all()


def _next_job(requests: int, warm: Any) -> Any:
    """The next frame from toolchat (None when it is gone), dropping idle warm parents meanwhile."""
    import select

    while not select.select([requests], [], [], warm.expire())[0]:
        pass
    return read_frame(requests)
