"""`toolchat sandbox`: what this machine enforces, and the sandbox each tool runs in."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.console import Console
from rich.table import Table

from toolchat.sandbox.policy import ENFORCER, of_tool, summary
from toolchat.terminal.render import plain

if TYPE_CHECKING:
    from toolchat.config.settings import Settings
    from toolchat.tools import Registry


def report(registry: Registry, settings: Settings, out: Console) -> None:
    out.print(plain("this machine", "bold"))
    for fact in ENFORCER.facts():
        out.print(plain(f"  {fact}"))
    out.print(plain("policy", "bold"))
    out.print(plain(f"  {summary(settings.sandbox, settings.origins.get('sandbox'))}"))
    if "sandbox" in settings.origins:
        out.print(plain(f"  from: {settings.origins['sandbox']}", "dim"))
    table = Table(box=None, header_style="bold", pad_edge=False)
    table.add_column("tool")
    table.add_column("sandbox")
    for tool in registry.tools.values():
        table.add_row(plain(tool.name), plain(of_tool(settings.sandbox, tool.name, tool.source is not None)))
    out.print(table)
