"""What a tool may touch once it runs: the policy of one call, how it is sent to the worker's
child, how it reads in a panel, and the one step that enforces it in the child after fork.

Enforcers stand behind one protocol (`Enforcer`); Landlock is the one this project has."""

from __future__ import annotations

import fnmatch
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

MODES = ("workspace", "read-only", "off")
# Devices a tool may write to (/dev/tty is left out: a tool never talks to the user's terminal).
DEVICES = ("/dev/null", "/dev/zero", "/dev/full", "/dev/random", "/dev/urandom")
WRITE_NOTE = "the sandbox allows writes only in the project folder"
READ_ONLY_NOTE = "the sandbox allows no writes outside the call's temporary folder"
NETWORK_NOTE = "the sandbox refuses TCP connections for this tool (sandbox.network allows them)"


class Enforcer(Protocol):
    name: str

    def unavailable(self) -> str | None:
        """Why this system cannot enforce a sandbox, or None when it can."""
        ...

    def facts(self) -> list[str]:
        """What this system enforces, one line each."""
        ...

    def confine(self, writable: list[str], *, tcp: bool) -> None:
        """Confine this process and all it starts, for good."""
        ...


class Landlock:
    name = "Landlock"

    def __init__(self) -> None:
        self._abi: int | None = None
        self._why: str | None = None

    def _probe(self) -> None:
        from toolchat.sandbox import landlock

        if self._abi is None and self._why is None:
            try:
                self._abi = landlock.abi()
            except landlock.Unavailable as exc:
                self._why = exc.strerror or str(exc)

    def unavailable(self) -> str | None:
        self._probe()
        return self._why

    def facts(self) -> list[str]:
        self._probe()
        if self._abi is None:
            return [f"Landlock: not available ({self._why}); tools run unconfined"]
        tcp = "refused unless allowed" if self._abi >= 4 else "not enforced (needs Landlock ABI 4)"
        return [
            f"Landlock ABI {self._abi}",
            "filesystem: reads everywhere; writes only where the policy allows",
            f"TCP bind and connect: {tcp}",
            "UDP (DNS included) and Unix sockets: not covered by Landlock",
        ]

    def confine(self, writable: list[str], *, tcp: bool) -> None:
        from toolchat.sandbox import landlock

        self._probe()
        landlock.restrict(writable, tcp=tcp, version=self._abi)


ENFORCER: Enforcer = Landlock()


@dataclass(frozen=True)
class Policy:
    """The sandbox of one call. `write` holds extra writable folders (absolute)."""

    mode: str = "workspace"
    write: tuple[str, ...] = ()
    network: bool = False
    required: bool = False

    @property
    def confined(self) -> bool:
        return self.mode != "off"

    def describe(self) -> str:
        """How a panel states it: "writes: project; network: no"."""
        if not self.confined:
            return "sandbox: off"
        writes = "project" if self.mode == "workspace" else "none"
        if self.write:
            writes += " + " + ", ".join(self.write)
        return f"writes: {writes}; network: {'yes' if self.network else 'no'}"

    def to_job(self) -> dict[str, Any]:
        return {"mode": self.mode, "write": list(self.write), "network": self.network, "required": self.required}

    @classmethod
    def from_job(cls, data: dict[str, Any] | None) -> Policy:
        if not data:
            return cls(mode="off")
        return cls(data["mode"], tuple(data["write"]), bool(data["network"]), bool(data["required"]))


@dataclass
class Config:
    """The `sandbox` config section, resolved: what each tool's policy is built from."""

    mode: str = "workspace"
    write: list[str] = field(default_factory=list)  # absolute
    network: list[str] = field(default_factory=list)  # tool name patterns
    required: bool = False

    def policy_for(self, tool: str) -> Policy:
        allowed = any(fnmatch.fnmatchcase(tool, pattern) for pattern in self.network)
        return Policy(self.mode, tuple(self.write), allowed, self.required)


def writable(policy: Policy, project: str, tmpdir: str) -> list[str]:
    """The folders (and devices) a call under `policy` may write to."""
    folders = [tmpdir, *DEVICES, *policy.write]
    if policy.mode == "workspace":
        folders.insert(0, project)
    return folders


def confine(policy: Policy, project: str, tmpdir: str, enforcer: Enforcer | None = None) -> str | None:
    """The sandbox step of a call's child, after fork and before the tool's code: TMPDIR pointed at
    the call's own folder, then the policy enforced. None when it holds (or is off); else why it
    does not, which stops the call only when the policy is required."""
    import tempfile

    os.environ["TMPDIR"] = tempfile.tempdir = tmpdir  # (the worker's tempfile has its choice cached)
    if not policy.confined:
        return None
    enforcer = enforcer or ENFORCER
    why = enforcer.unavailable()
    if why is None:
        try:
            enforcer.confine(writable(policy, project, tmpdir), tcp=policy.network)
            return None
        except OSError as exc:
            why = f"{enforcer.name} failed ({exc.strerror or exc})"
    return why


def explained(output: str, policy: Policy) -> str:
    """A tool's error with what the sandbox refused, so the model can adapt."""
    if not policy.confined or not output.startswith("Error: PermissionError"):
        return output
    if "Errno 13" in output and ": '" not in output and not policy.network:
        return f"{output} ({NETWORK_NOTE})"
    return f"{output} ({WRITE_NOTE if policy.mode == 'workspace' else READ_ONLY_NOTE})"


def resolve(paths: list[str], base: Path) -> list[str]:
    """`write:` entries, relative to the config file's folder, made absolute."""
    return [str((base / Path(os.path.expanduser(p))).resolve()) for p in paths]


def summary(config: Config, origin: str | None = None, enforcer: Enforcer | None = None) -> str:
    """One line for a banner: what holds for tools this run."""
    enforcer = enforcer or ENFORCER
    if config.mode == "off":
        why = " for this run (--no-sandbox)" if origin == "--no-sandbox" else " (sandbox.mode)"
        return f"sandbox: off{why}: tools may write anywhere and connect"
    why = enforcer.unavailable()
    if why is not None:
        if config.required:
            return f"sandbox: {why}; tools will not run (sandbox.required)"
        return f"sandbox: {why}; tools run unconfined"
    return f"sandbox: {enforcer.name} · {Config(config.mode, config.write).policy_for('').describe()}" + (
        f" (network: {', '.join(config.network)})" if config.network else ""
    )


def warning(config: Config, enforcer: Enforcer | None = None) -> str | None:
    """What a run must be told once: the sandbox is asked for and this system cannot enforce it."""
    if config.mode == "off" or (enforcer or ENFORCER).unavailable() is None:
        return None
    return summary(config, enforcer=enforcer)


def of_tool(config: Config | None, name: str, python: bool) -> str:
    """A tool's sandbox as the approval panel and `tools show` state it. Only Python tools run in
    the worker's sandbox; an MCP server has its own (`sandbox: true` in its entry)."""
    if not python:
        return "sandbox: its server's (mcp_servers: sandbox: true confines a stdio server)"
    if config is None or config.mode == "off":
        return "sandbox: off"
    why = ENFORCER.unavailable()
    if why is not None:
        return "sandbox: none (" + ("required: will not run" if config.required else why) + ")"
    return config.policy_for(name).describe()
