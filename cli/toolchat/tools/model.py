"""The Tool dataclass and the result of running one."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any


class ToolStatus(str, Enum):
    OK = "ok"
    ERROR = "error"
    DENIED = "denied"
    INVALID = "invalid"
    TIMEOUT = "timeout"
    UNKNOWN = "unknown"
    CANCELLED = "cancelled"


@dataclass
class Tool:
    """A tool the model may call, with the JSON schema of its arguments. Only its description
    lives in toolchat's process: the code runs wherever its source runs it (a Python plugin's in a
    child of the tool worker, an MCP tool in its server)."""

    name: str
    description: str
    parameters: dict[str, Any]
    origin: str = ""  # where it comes from, for display: "bundled", "plugins/weather.py", "mcp time"
    source: Path | None = None  # the plugin file, for sources that have one
    warnings: list[str] = field(default_factory=list)
    accepts_extra: bool = False  # the function takes **kwargs (additional properties allowed)
    validator: Any = field(default=None, repr=False, compare=False)  # built on first validation

    def definition(self) -> dict[str, Any]:
        """The OpenAI-format definition sent to the model."""
        return {
            "type": "function",
            "function": {
                "name": self.name,
                "description": self.description,
                "parameters": self.parameters,
            },
        }

    @property
    def summary(self) -> str:
        """The first line of the description."""
        return self.description.strip().splitlines()[0] if self.description.strip() else ""


@dataclass
class ToolResult:
    status: ToolStatus
    output: str
    duration: float = 0.0

    @property
    def ok(self) -> bool:
        return self.status is ToolStatus.OK
