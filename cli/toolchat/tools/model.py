"""The Tool dataclass and the result of running one."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any, Callable


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
    """A function the model may call, with the JSON schema of its arguments."""

    name: str
    description: str
    parameters: dict[str, Any]
    func: Callable[..., Any] | None  # None until first run when the schema came from the cache
    source: Path
    bundled: bool = False
    warnings: list[str] = field(default_factory=list)
    accepts_extra: bool = False  # the function takes **kwargs
    enum_params: dict[str, type[Enum]] = field(default_factory=dict)  # converted before the call
    loader: Callable[[], "Tool"] | None = field(default=None, repr=False)  # imports the module on demand
    validator: Any = field(default=None, repr=False, compare=False)  # built on first validation

    def ensure_loaded(self) -> None:
        """Import the tool's module if only its cached schema is known (raises what import raises)."""
        if self.func is None and self.loader is not None:
            loaded = self.loader()
            self.func, self.enum_params = loaded.func, loaded.enum_params

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
