"""Discovery inside the tool worker: one child imports a batch of plugin modules in turn (its
output thrown away) and sends each one's tools, or why it failed, as a frame. A module that hangs
past the time limit, exits or crashes the child is listed broken, and a new child goes on with the
modules after it. Importing the modules of one folder in one process costs what it cost when
toolchat imported them itself; none of them runs in toolchat's process."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from toolchat.tools.isolation import processes
from toolchat.tools.isolation.frames import write_frame
from toolchat.tools.isolation.jobs import JobState, Verdict, spawn, stop, watch
from toolchat.tools.plugins import describe, import_failure, import_plugin


def describe_all(job: dict[str, Any], requests: int, replies: int) -> dict[str, Any] | None:
    """{"modules": {file: {"tools": [...]} | {"failure": why}}}, or None when toolchat is gone."""
    timeout = float(job["timeout"])
    outcomes: dict[str, dict[str, Any]] = {}
    pending = list(job["modules"])
    while pending:
        current: list[str | None] = [None]

        def verdict(frame: Any, current: list[str | None] = current) -> Verdict | None:
            if "begin" in frame:
                current[0] = frame["begin"]
                return Verdict.RESTART  # each module has the whole time limit
            if "module" in frame:
                outcomes[frame["module"]] = {key: frame[key] for key in ("tools", "failure") if key in frame}
                current[0] = None
            return Verdict.DONE if frame.get("end") else None

        batch = list(pending)
        child = spawn(lambda result_w, batch=batch: _import_each(batch, result_w), requests, replies, capture=False)
        try:
            state, value, _ = watch(child, requests, job, timeout, verdict)
        finally:
            child.close()
        status = stop(child.pid, state, value)
        if state is JobState.ORPHANED:
            return None
        if state is JobState.CANCELLED:
            break
        culprit = current[0] or next((m for m in batch if m not in outcomes), None)
        # (a child that dies after its last module is no failure)
        if state is not JobState.DONE and culprit is not None:
            outcomes[culprit] = {"failure": _failure(state, status, timeout)}
        pending = [m for m in batch if m not in outcomes]
    for module in job["modules"]:
        outcomes.setdefault(module, {"failure": "importing it was interrupted"})
    return {"modules": outcomes}


def _import_each(modules: list[str], result_w: int) -> None:
    for module in modules:
        write_frame(result_w, {"begin": module})
        write_frame(result_w, {"module": module, **_describe_one(module)})
    write_frame(result_w, {"end": True})


def _describe_one(module_file: str) -> dict[str, Any]:
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


def _failure(state: JobState, status: int | None, timeout: float) -> str:
    if state is JobState.DIED:
        return f"the process {processes.death(status)} while importing it"
    if state is JobState.TIMEOUT:
        return f"importing it took longer than {timeout:g} s (does it hang at import?)"
    return "importing it was interrupted"
