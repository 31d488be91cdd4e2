"""One tool call, inside its own process (a child of the tool worker, see worker.py): the plugin
is imported there, the function called, and the result sent back on a channel only this process
holds. Printed output goes to fds 1 and 2, which the worker reads (bounded) and appends."""

from __future__ import annotations

import json
import os
from pathlib import Path
from types import CodeType, ModuleType
from typing import Any

from toolchat.tools.model import ToolStatus


def run_in_child(
    module_file: str,
    name: str,
    arguments: dict[str, Any],
    cwd: str,
    code: CodeType | None = None,
    module: ModuleType | None = None,
) -> tuple[str, str]:
    """(status, text) of calling tool `name` of `module_file` (of `module`, when a warm parent
    imported it already); never raises."""
    from toolchat.tools.plugins import call, function_of, import_plugin

    try:
        os.chdir(cwd)
        func = function_of(module if module is not None else import_plugin(Path(module_file), code), name)
        return ToolStatus.OK.value, to_text(call(func, arguments))
    except SystemExit as exc:
        return ToolStatus.ERROR.value, f"Error: the tool called sys.exit({exc.code!r})"
    except BaseException as exc:  # noqa: BLE001 - the model reads the failure; no traceback
        return ToolStatus.ERROR.value, f"Error: {type(exc).__name__}: {exc}"


def to_text(value: Any) -> str:
    """A tool's return value as the text the model reads."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, (bytes, bytearray)):
        return bytes(value).decode("utf-8", errors="replace")
    if isinstance(value, (dict, list, tuple)):
        return json.dumps(value, ensure_ascii=False, default=str, indent=None)
    return str(value)


def with_printed(output: str, printed: str) -> str:
    """The result text followed by what the tool printed, if anything."""
    if not printed:
        return output
    return f"{output}\n\n[printed output]\n{printed}" if output else printed


def cut(text: str, limit: int) -> str:
    """`text` cut to `limit` characters, with a note of how much was cut."""
    if limit <= 0 or len(text) <= limit:
        return text
    dropped = len(text) - limit
    return f"{text[:limit]}\n[output cut: {dropped} of {len(text)} characters not shown]"
