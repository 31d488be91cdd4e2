"""What the REPL, `ask` and serve need of MCP: attach the servers of the settings to a Registry,
and the words the banner, the toolbar, `/mcp` and `/mcp restart NAME` show. No terminal I/O here."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from toolchat.mcp.names import SEPARATOR, sanitise
from toolchat.safety import clean


def attach(
    registry: Any, settings: Any, env: Any, notify: Callable[[str], None] | None = None, *, waits: bool = True
) -> Any:
    """Start the settings' MCP servers and offer their tools through `registry`; the source, or None
    when no server is configured (then the SDK is not imported). `waits=False` (the REPL) lists
    only the servers ready so far until `waits` is set."""
    from toolchat.mcp import open_source

    source = open_source(
        getattr(settings, "mcp_servers", None) or [],
        project_dir=settings.project_dir,
        environ=env.environ,
        data_dir=env.data_dir,
        notify=notify,
        secrets=getattr(settings, "secrets", ()),
    )
    if source is None:
        return None
    source.waits = waits
    try:
        registry.add(source)
    except BaseException:  # a name clash (ToolLoadError), Ctrl-C: stop the servers before leaving
        source.close()
        raise
    return source


def source_of(registry: Any) -> Any:
    """The MCP source among the registry's sources, if any."""
    return next((s for s in getattr(registry, "sources", []) if getattr(s, "label", "") == "mcp"), None)


def turns_wait(registry: Any) -> None:
    """From now on (the REPL's prompt is up) a turn waits for servers still starting."""
    source = source_of(registry)
    if source is not None:
        source.waits = True


def sync(registry: Any) -> list[str]:
    """Offer the tools of the servers that became ready since the last look, without waiting for
    any still starting; the lines to show for those that failed (each once). On the thread that
    runs the turns (the REPL's main thread), so the registry is never listed by two at once."""
    source = source_of(registry)
    if source is None or not source.news():
        return []
    waits, source.waits = source.waits, False
    try:
        registry.refresh()
    finally:
        source.waits = waits
    # a tool of a server ready only now may clash with a plugin's: said too (the plugin's is kept)
    return source.new_failures([p for p in registry.problems() if p.where.startswith("mcp ")])


def starting(registry: Any) -> bool:
    """Whether an MCP server is still starting (its tools are not offered yet)."""
    source = source_of(registry)
    return source is not None and any(status.state == "starting" for status in source.statuses())


def starting_server_for(registry: Any, tool: str) -> str | None:
    """The server still starting whose tools `tool` would be one of (`SERVER__...`), if any."""
    source = source_of(registry)
    if source is None:
        return None
    for status in source.statuses():
        if status.state == "starting" and tool.startswith(sanitise(status.name) + SEPARATOR):
            return status.name
    return None


def toolbar(registry: Any) -> str:
    """What the REPL's bottom toolbar adds: ` · mcp: time ready (2) · git starting`."""
    line = summary(source_of(registry))
    return f" · {line}" if line else ""


def summary(source: Any) -> str:
    """One line for the banner and toolbar: `mcp: time ready (2) · git starting · docs failed`."""
    if source is None:
        return ""
    parts = []
    for status in source.statuses():
        count = f" ({status.tools})" if status.state == "ready" else ""
        parts.append(f"{status.name} {status.state}{count}")
    return clean("mcp: " + " · ".join(parts))


def describe(source: Any) -> list[str]:
    """`/mcp`: each server, its state and tools, or its error and the tail of its stderr."""
    if source is None:
        return ["no MCP servers configured (mcp_servers in toolchat.yaml, or --mcp 'command')"]
    lines = []
    for status in source.statuses():
        lines.append(status_line(status))
        if status.error:
            lines.append(clean(f"    error: {status.error}"))
        lines += [f"    stderr: {line}" for line in status.stderr]
    return lines


def restart(source: Any, name: str) -> str:
    """`/mcp restart NAME`: the server's state after starting it again."""
    if source is None:
        return "no MCP servers configured"
    if name not in source.servers:
        import difflib

        close = difflib.get_close_matches(name, list(source.servers), n=1)
        return clean(f"no MCP server named '{name}'" + (f"; did you mean '{close[0]}'?" if close else ""))
    status = source.restart(name)
    return status_line(status) + (clean(f" — {status.error}") if status.error else "")


def status_line(status: Any) -> str:
    """One server on one line: name, transport, state, start time, tools, command or URL."""
    when = time.strftime("%H:%M:%S", time.localtime(status.started)) if status.started else "-"
    tools = f"{status.tools} tool" + ("" if status.tools == 1 else "s")
    return clean(f"{status.name}  {status.transport}  {status.state}  started {when}  {tools}  {status.target}")
