"""The sandbox of one call, on the tool worker's side: its private temporary folder (made before
the fork, removed after the call) and the step its child takes after fork, before the tool's code
runs. Kept apart from the worker so that any process that forks calls (a warm per-module parent
too) applies it the same way."""

from __future__ import annotations

import shutil
from typing import Any

from toolchat.files import scratch_folder
from toolchat.sandbox.policy import ENFORCER, Policy, confine, explained


class Call:
    def __init__(self, policy: dict[str, Any] | None, project: str) -> None:
        self.policy = Policy.from_job(policy)
        self.project = project
        self.tmpdir = scratch_folder("call")  # mode 0700: the call's own
        ENFORCER.unavailable()  # probed (and libc loaded) once in the forking process, not per child

    def enter(self) -> str | None:
        """In the child: confine it. None to run the tool; else the error the call returns instead
        (the sandbox is required and cannot be enforced)."""
        why = confine(self.policy, self.project, self.tmpdir)
        if why is not None and self.policy.required:
            return (
                f"Error: the sandbox is required (sandbox.required) but cannot be enforced: {why}; the tool was not run"
            )
        return None

    def explained(self, output: str) -> str:
        return explained(output, self.policy)

    def leave(self) -> None:
        """In the worker, once the call is over: its temporary folder goes."""
        shutil.rmtree(self.tmpdir, ignore_errors=True)
