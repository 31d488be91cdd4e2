"""The one shape of a tool source. Python plugin folders, the bundled folder and MCP servers are
each a ToolSource; the Registry merges their tools and sends each call back to the source that
offered it, so a new kind of source never touches the engine."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from toolchat import defaults

if TYPE_CHECKING:
    from toolchat.sandbox.policy import Config
    from toolchat.tools.model import Tool, ToolResult


@dataclass(frozen=True)
class RunLimits:
    """Where and how long a call may run, and how much of its output the model reads."""

    cwd: Path
    timeout: float = defaults.TOOL_TIMEOUT
    max_output_chars: int = defaults.MAX_OUTPUT_CHARS
    max_printed_bytes: int = defaults.MAX_PRINTED_BYTES  # a tool printing more is stopped
    sandbox: Config | None = None  # what each call may touch once it runs; None: unconfined


@dataclass
class SourceProblem:
    """Something of a source that could not be offered: a module that failed to import, a server
    that did not start. `where` names it for the user (a file, "mcp NAME")."""

    where: str
    reason: str


class ToolSource(Protocol):
    label: str  # how a call's origin is shown: "bundled", "plugins", "mcp time"
    # A source may also set `replaceable = True` (the bundled folder): a tool of another source
    # with the same name then replaces its tool (noted) instead of being an error naming both.

    def tools(self) -> list[Tool]:
        """The tools offered now (a source may change them between model calls)."""
        ...

    def problems(self) -> list[SourceProblem]: ...

    def run(self, tool: Tool, arguments: dict[str, Any], limits: RunLimits) -> ToolResult:
        """Run one validated call; every outcome is a ToolResult. KeyboardInterrupt stops the
        call (and everything it started) before it propagates."""
        ...

    # A source may also have `stop(thread: int) -> None`: stop the call thread `thread` (an ident) is
    # running, from another thread (calls of one reply run at once, each on a thread of its own);
    # that call's `run` then returns soon, cancelled. Without it, a call stopped so runs to its end.

    def close(self) -> None:
        """Stop whatever the source started; bounded, safe to call twice."""
        ...
