"""Tools: discovery, schema from functions, argument validation, running with timeouts."""

from toolchat.tools.model import Tool, ToolResult, ToolStatus
from toolchat.tools.registry import LoadFailure, Registry, discover

__all__ = ["Tool", "ToolResult", "ToolStatus", "Registry", "LoadFailure", "discover"]
