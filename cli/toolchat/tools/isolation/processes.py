"""Process housekeeping for the tool worker: be the reaper of everything a tool starts, and kill
all of it. On Linux the worker is a child subreaper (prctl PR_SET_CHILD_SUBREAPER), so a tool's
double-forked, setsid'd daemon is re-parented to the worker instead of init and can be found
and killed; elsewhere the tool's process group is killed."""

from __future__ import annotations

import os
import signal
import sys

_PR_SET_CHILD_SUBREAPER = 36


_PR_SET_PDEATHSIG = 1

KEEP: set[int] = set()  # children that are no job's leftovers: the worker's warm parents (warm.py)


_libc_prctl = None  # found once in the worker; its children inherit it


def _prctl(option: int, value: int) -> bool:
    global _libc_prctl
    if not sys.platform.startswith("linux"):
        return False
    try:
        if _libc_prctl is None:
            import ctypes

            _libc_prctl = ctypes.CDLL(None, use_errno=True).prctl
        return _libc_prctl(option, value, 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def become_subreaper() -> bool:
    """Orphans of the worker's descendants become the worker's children (Linux)."""
    return _prctl(_PR_SET_CHILD_SUBREAPER, 1)


def die_with_parent(parent: int) -> None:
    """A job's process is killed if the worker dies (say a tool kills it), on Linux."""
    _prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent:  # it died before the request took effect
        os._exit(1)


def keep_only_fds(*keep: int) -> None:
    """Close every inherited fd but `keep`; 0, 1 and 2 become /dev/null (a worker holding the
    terminal or a pipe toolchat's caller reads would keep that pipe open)."""
    devnull = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(devnull, fd)
    try:
        fds = [int(name) for name in os.listdir("/proc/self/fd")]
    except OSError:
        fds = list(range(3, 256))
    for fd in fds:
        if fd > 2 and fd not in keep:
            try:
                os.close(fd)
            except OSError:
                pass


def children() -> list[int]:
    """The worker's child processes (on Linux, including adopted orphans)."""
    pid = os.getpid()
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as listing:
            return [int(word) for word in listing.read().split()]
    except OSError:
        pass
    found = []
    try:
        names = os.listdir("/proc")
    except OSError:
        return []
    for name in names:
        if name.isdigit():
            try:
                with open(f"/proc/{name}/stat") as stat:
                    fields = stat.read().rsplit(")", 1)[1].split()
            except (OSError, IndexError):
                continue
            if int(fields[1]) == pid:
                found.append(int(name))
    return found


def kill_tree(pid: int) -> int | None:
    """Kill the job `pid`, its process group and every other process it left behind; its wait status
    if it had not been reaped yet."""
    for kill in (os.killpg, os.kill):
        try:
            kill(pid, signal.SIGKILL)
        except OSError:
            pass
    status = None
    try:
        status = os.waitpid(pid, 0)[1]
    except ChildProcessError:
        pass
    kill_all()
    return status


def kill_all() -> None:
    """Kill and reap every child; orphans they leave are adopted by the worker, so repeat until none."""
    for _ in range(10_000):
        found = [child for child in children() if child not in KEEP]
        if not found:
            break
        for child in found:
            try:
                os.kill(child, signal.SIGKILL)
            except OSError:
                pass
        for child in found:
            try:
                os.waitpid(child, 0)
            except ChildProcessError:
                pass
    while True:  # zombies the listing did not show (no /proc)
        try:
            if os.waitpid(-1, os.WNOHANG)[0] == 0:
                break
        except ChildProcessError:
            break


def death(status: int | None) -> str:
    """How a process ended, from its wait status."""
    if status is None:
        return "ended"
    if os.WIFSIGNALED(status):
        return f"crashed (signal {signal.Signals(os.WTERMSIG(status)).name})"
    return f"exited with code {os.WEXITSTATUS(status)}"
