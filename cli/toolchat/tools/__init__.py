"""Tools: sources (plugin folders, the bundled folder, MCP servers) merged in a Registry; schemas
from functions; argument validation; calls run in children of the tool worker."""

from toolchat.tools.model import Tool, ToolResult, ToolStatus
from toolchat.tools.registry import Registry, discover
from toolchat.tools.sources import RunLimits, SourceProblem, ToolSource

__all__ = ["Tool", "ToolResult", "ToolStatus", "Registry", "RunLimits", "SourceProblem", "ToolSource", "discover"]
