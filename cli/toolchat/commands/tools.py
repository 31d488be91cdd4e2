"""The `toolchat tools ...` command: list, show, schema, run."""

from __future__ import annotations

import difflib
import json
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from toolchat.config.settings import Settings
from toolchat.errors import ExitStatus, UsageError
from toolchat.terminal.render import clean, plain
from toolchat.tools import Registry, Tool


def list_tools(registry: Registry, settings: Settings, out: Console) -> None:
    table = Table(show_edge=False, pad_edge=False, box=None, header_style="bold")
    table.add_column("tool", style="bold cyan", no_wrap=True)
    table.add_column("description")
    table.add_column("source", style="dim")
    for tool in registry.tools.values():
        table.add_row(plain(tool.name), plain(tool.summary), plain(tool.origin))
    if registry.tools:
        out.print(table)
    else:
        out.print("No tools found.")
    for name, replaced in registry.replaced.items():
        which = f" ({replaced.source.name})" if replaced.source is not None else ""
        out.print(plain(f"note: your '{name}' replaces the bundled tool of that name{which}", "yellow"))
    for tool in registry.tools.values():
        for warning in tool.warnings:
            out.print(plain(f"warning: {tool.name}: {warning}", "yellow"))
    problems = registry.problems()
    if problems:
        out.print(Text("\nSkipped (could not be loaded):", style="bold red"))
        for problem in problems:
            out.print(plain(f"  {problem.where}: {problem.reason}", "red"))


def find_tool(registry: Registry, name: str) -> Tool:
    tool = registry.get(name)
    if tool is not None:
        return tool
    close = difflib.get_close_matches(name, registry.names(), n=1)
    hint = f"did you mean '{close[0]}'?" if close else f"tools: {', '.join(registry.names()) or 'none'}"
    raise UsageError(f"no tool named '{clean(name)}'", hint)


def show_tool(tool: Tool, settings: Settings, out: Console) -> None:
    out.print(Text.assemble(("tool ", "dim"), plain(tool.name, "bold cyan")))
    out.print(plain(tool.description or "(no description)"))
    where = (
        f"{tool.origin} ({tool.source})" if tool.source is not None and tool.origin != str(tool.source) else tool.origin
    )
    out.print(Text.assemble(("source: ", "dim"), plain(where)))
    from toolchat.sandbox.policy import of_tool

    out.print(plain(of_tool(settings.sandbox, tool.name, tool.source is not None), "dim"))
    properties: dict[str, Any] = tool.parameters.get("properties", {})
    required = set(tool.parameters.get("required", []))
    if properties:
        table = Table(box=None, header_style="bold", pad_edge=False)
        for column in ("parameter", "type", "required", "description"):
            table.add_column(column)
        for name, prop in properties.items():
            table.add_row(
                plain(name),
                plain(_type_label(prop)),
                "yes" if name in required else "no",
                plain(prop.get("description", "")),
            )
        out.print(table)
    else:
        out.print(Text("no parameters", style="dim"))
    for warning in tool.warnings:
        out.print(plain(f"warning: {warning}", "yellow"))


def _type_label(prop: dict[str, Any]) -> str:
    kind = prop.get("type", "any")
    label = " | ".join(kind) if isinstance(kind, list) else str(kind)
    if "enum" in prop:
        label += " one of " + ", ".join(json.dumps(v) for v in prop["enum"])
    if "anyOf" in prop:
        label = " | ".join(_type_label(p) for p in prop["anyOf"])
    if kind == "array" and "items" in prop:
        label += f" of {_type_label(prop['items'])}"
    return label


def schema_json(registry: Registry, names: list[str]) -> str:
    tools = [find_tool(registry, n) for n in names] if names else list(registry.tools.values())
    return json.dumps([t.definition() for t in tools], indent=2)


def run_once(
    registry: Registry, name: str, raw_args: str | None, settings: Settings, out: Console, err: Console
) -> int:
    from toolchat.tools.sources import RunLimits
    from toolchat.tools.validate import InvalidArguments, parse_arguments, validate_arguments

    tool = find_tool(registry, name)
    try:
        arguments = parse_arguments(raw_args)
        validate_arguments(tool, arguments)
    except InvalidArguments as exc:
        raise UsageError(f"invalid arguments for '{tool.name}': {exc}") from None
    result = registry.run(
        tool,
        arguments,
        RunLimits(settings.project_dir, settings.tool_timeout, settings.max_output_chars, sandbox=settings.sandbox),
    )
    if result.ok:
        out.print(plain(result.output), soft_wrap=True, markup=False, highlight=False)
        return ExitStatus.OK
    err.print(plain(f"tool {result.status.value}: {result.output}", "red"), soft_wrap=True)
    return ExitStatus.BACKEND
