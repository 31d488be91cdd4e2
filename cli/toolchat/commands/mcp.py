"""`toolchat mcp list` and `toolchat mcp logs NAME`: the configured MCP servers, started to show
their state, and the stderr each one wrote."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from toolchat.config.mcp_spec import McpServerSpec
from toolchat.errors import UsageError
from toolchat.safety import clean


def list_servers(
    specs: Sequence[McpServerSpec], project_dir: Path, env: Any, out: Any, secrets: Sequence[str] = ()
) -> int:
    """Start every server, wait for each (bounded), print one block per server, stop them all."""
    from rich.text import Text

    from toolchat.mcp import open_source
    from toolchat.mcp.wiring import status_line

    if not specs:
        out.print(Text("no MCP servers configured (mcp_servers in toolchat.yaml, or --mcp 'command')"))
        return 0
    source = open_source(specs, project_dir=project_dir, environ=env.environ, data_dir=env.data_dir, secrets=secrets)
    disabled = [spec for spec in specs if not spec.enabled]
    try:
        if source is not None:
            source.wait_ready()
            for status in source.statuses():
                out.print(Text(status_line(status)), soft_wrap=True)
                if status.error:
                    out.print(Text(f"    error: {clean(status.error)}", style="red"), soft_wrap=True)
                for line in status.stderr:
                    out.print(Text(f"    stderr: {line}", style="dim"), soft_wrap=True)
    finally:
        if source is not None:
            source.close()
    for spec in disabled:
        out.print(Text(f"{clean(spec.name)}  {spec.type}  disabled  {clean(spec.describe())}", style="dim"))
    return 0


def show_log(name: str, specs: Sequence[McpServerSpec], data_dir: Path, secrets: Sequence[str] = ()) -> str:
    """The stderr log of one server, made safe for a terminal, secrets hidden."""
    from toolchat.mcp.logs import log_path, read_log
    from toolchat.redact import Redactor

    path = log_path(data_dir, name)
    if not path.is_file():
        known = sorted({spec.name for spec in specs} | {p.stem for p in path.parent.glob("*.log")})
        raise UsageError(
            f"no log for an MCP server named '{name}'",
            f"servers with logs or config: {', '.join(known)}" if known else "no server has run yet",
        )
    return clean(Redactor(secrets).redact(read_log(path)))
