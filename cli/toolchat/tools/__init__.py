"""Tools: sources (plugin folders, the bundled folder, MCP servers) merged in a Registry; schemas
from functions; argument validation; calls run in children of the tool worker.

The names below load on first use, so starting the tool worker (the first thing `main` does)
imports only the worker itself."""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from toolchat.tools.model import Tool, ToolResult, ToolStatus
    from toolchat.tools.registry import Registry, discover
    from toolchat.tools.sources import RunLimits, SourceProblem, ToolSource

_HOMES = {
    "Tool": "model",
    "ToolResult": "model",
    "ToolStatus": "model",
    "Registry": "registry",
    "discover": "registry",
    "RunLimits": "sources",
    "SourceProblem": "sources",
    "ToolSource": "sources",
}
__all__ = ["Registry", "RunLimits", "SourceProblem", "Tool", "ToolResult", "ToolSource", "ToolStatus", "discover"]


def __getattr__(name: str) -> Any:
    if name not in _HOMES:
        raise AttributeError(f"module 'toolchat.tools' has no attribute {name!r}")
    return getattr(import_module(f"toolchat.tools.{_HOMES[name]}"), name)
