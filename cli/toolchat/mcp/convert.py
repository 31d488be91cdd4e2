"""A tool call's MCP result as the text a model reads: text parts joined, structured content as JSON
when there is no text, images and audio as a short note (never base64 in the context), resource
links as their URI, embedded text resources inline; `isError` is an error; cut like any tool."""

from __future__ import annotations

import json
from typing import Any

from toolchat.tools.isolation.runner import cut
from toolchat.tools.model import ToolResult, ToolStatus


def size_text(nbytes: int) -> str:
    if nbytes < 1000:
        return f"{nbytes} B"
    if nbytes < 1_000_000:
        return f"{round(nbytes / 1000)} kB"
    return f"{nbytes / 1_000_000:.1f} MB"


def _base64_size(data: str) -> int:
    data = data.strip()
    return max(0, len(data) * 3 // 4 - data[-2:].count("="))


def _binary(mime: str | None, data: str) -> str:
    return f"[{mime or 'application/octet-stream'}, {size_text(_base64_size(data))}]"


def block_text(block: Any) -> str:
    """One content block of a result as text."""
    kind = getattr(block, "type", None)
    if kind == "text":
        return block.text
    if kind in ("image", "audio"):
        return _binary(block.mime_type, block.data)
    if kind == "resource_link":
        return str(block.uri)
    if kind == "resource":
        resource = block.resource
        text = getattr(resource, "text", None)
        if text is not None:
            return text
        return f"{resource.uri} {_binary(resource.mime_type, getattr(resource, 'blob', ''))}"
    return f"[{kind or 'unknown'} content]"


def to_result(result: Any, max_output_chars: int, duration: float = 0.0) -> ToolResult:
    """A `CallToolResult` as a ToolResult."""
    parts = [block_text(block) for block in result.content or []]
    has_text = any(getattr(block, "type", None) == "text" for block in result.content or [])
    if not has_text and result.structured_content is not None:
        parts.insert(0, json.dumps(result.structured_content, ensure_ascii=False))
    output = "\n".join(parts)
    status = ToolStatus.ERROR if result.is_error else ToolStatus.OK
    if status is ToolStatus.ERROR and not output.startswith("Error"):
        output = f"Error: {output}" if output else "Error: the tool failed and said nothing"
    return ToolResult(status, cut(output, max_output_chars), duration)
