"""The options several commands share, each declared once. `chat`, `ask` and `serve` take the
model and tool flags through `@model_flags(...)`: the decorator adds those options to the
command's signature (in the order given, so `--help` reads as it always has) and hands the
command one `ModelFlags`, whose `overrides` are the config overrides they make."""

from __future__ import annotations

import functools
import inspect
import math
import typing
from collections.abc import Callable
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Annotated, Any

import typer

from toolchat.defaults import MAX_TOKENS
from toolchat.env import Environment


def seconds(value: float | None) -> float | None:
    """A number of seconds a user can mean: finite, above 0, at most a day (1e10 or nan is a typo)."""
    if value is not None and not (math.isfinite(value) and 0 < value <= 86_400):
        raise typer.BadParameter(f"{value:g} is not a number of seconds between 0 and 86400")
    return value


def temperature(value: float | None) -> float | None:
    """A sampling temperature: finite, from 0 to 2 (OpenAI's range, and `serve`'s; nan is a typo)."""
    if value is not None and not (math.isfinite(value) and 0 <= value <= 2):
        raise typer.BadParameter(f"{value:g} is not a temperature from 0 to 2")
    return value


def effort(value: str | None) -> str | None:
    from toolchat.config.keys import REASONING_EFFORTS

    if value is not None and value not in REASONING_EFFORTS:
        raise typer.BadParameter(f"'{value}' is not one of: {', '.join(REASONING_EFFORTS)}")
    return value


def as_path(value: str | None) -> Path | None:
    """Paths arrive as text: typer's own Path handling imports pydantic, which slows start-up."""
    return Path(value) if value is not None else None


ConfigOpt = Annotated[
    str | None, typer.Option("--config", "-c", help="Use this config file instead of discovering one.")
]
ToolsOpt = Annotated[list[str] | None, typer.Option("--tools", "-t", help="A plugin folder or .py file (repeatable).")]
NoBundledOpt = Annotated[bool, typer.Option("--no-bundled-tools", help="Leave out the tools that ship with toolchat.")]
McpOpt = Annotated[
    list[str] | None, typer.Option("--mcp", help="An MCP server: a command line or an http(s) URL (repeatable).")
]
ProfileOpt = Annotated[str | None, typer.Option("--profile", "-p", help="A named profile from the config.")]
BackendOpt = Annotated[str | None, typer.Option("--backend", "-b", help="openai or local.")]
BaseUrlOpt = Annotated[
    str | None, typer.Option("--base-url", help="The OpenAI-compatible endpoint (also OPENAI_BASE_URL).")
]
ModelOpt = Annotated[
    str | None, typer.Option("--model", "-m", help="Model name at the endpoint; for local, a .gguf path or 'bundled'.")
]


@dataclass
class ModelFlags:
    """The model and tool flags of `chat`, `ask` and `serve`; a command that lacks one gets its default."""

    config: ConfigOpt = None
    profile: ProfileOpt = None
    backend: BackendOpt = None
    model: ModelOpt = None
    base_url: BaseUrlOpt = None
    tools: ToolsOpt = None
    no_tools: Annotated[bool, typer.Option("--no-tools", help="Offer no tools.")] = False
    no_bundled_tools: NoBundledOpt = False
    system: Annotated[str | None, typer.Option("--system", "-s", help="System prompt.")] = None
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Approve every tool call.")] = False
    allow: Annotated[
        list[str] | None, typer.Option("--allow", help="Approve this tool without asking (repeatable).")
    ] = None
    deny: Annotated[list[str] | None, typer.Option("--deny", help="Never offer this tool (repeatable).")] = None
    tool_choice: Annotated[
        str | None,
        typer.Option("--tool-choice", help="auto, required, none or a tool name, for the first model call of a turn."),
    ] = None
    max_rounds: Annotated[
        int | None, typer.Option("--max-rounds", min=1, help="Most model calls in one turn (default 10).")
    ] = None
    tool_timeout: Annotated[
        float | None, typer.Option("--tool-timeout", callback=seconds, help="Stop a tool after this many seconds.")
    ] = None
    no_stream: Annotated[bool, typer.Option("--no-stream", help="Ask for whole replies instead of a stream.")] = False
    temperature: Annotated[float | None, typer.Option("--temperature", callback=temperature)] = None
    max_tokens: Annotated[int | None, typer.Option("--max-tokens", min=1, max=MAX_TOKENS)] = None
    mcp: McpOpt = None
    trace: Annotated[
        str | None, typer.Option("--trace", help="Write OpenTelemetry spans to this file (JSON lines).")
    ] = None
    trace_content: Annotated[
        bool, typer.Option("--trace-content", help="Put messages, tool arguments and results in the spans.")
    ] = False
    reasoning_effort: Annotated[
        str | None,
        typer.Option("--reasoning-effort", callback=effort, help="How hard to reason: none|low|medium|high."),
    ] = None
    hide_reasoning: Annotated[bool, typer.Option("--hide-reasoning", help="Do not show the model's reasoning.")] = False

    def overrides(self, env: Environment) -> dict[str, Any]:
        """These flags as config overrides (paths resolved against the working folder)."""
        return dict(
            profile=self.profile,
            backend=self.backend,
            model=self.model,
            base_url=self.base_url,
            tool_paths=tool_paths(env, self.tools),
            bundled_tools=False if self.no_bundled_tools else None,
            system=self.system,
            allow=self.allow or [],
            deny=self.deny or [],
            max_rounds=self.max_rounds,
            tool_timeout=self.tool_timeout,
            stream=False if self.no_stream else None,
            temperature=self.temperature,
            max_tokens=self.max_tokens,
            mcp_servers=mcp_servers(self.mcp),
            trace=(env.cwd / self.trace).resolve() if self.trace else None,
            trace_content=self.trace_content or None,
            reasoning_effort=self.reasoning_effort,
            show_reasoning=False if self.hide_reasoning else None,
        )


def tool_paths(env: Environment, tools: list[str] | None) -> list[Path]:
    return [(env.cwd / p).resolve() for p in tools or []]


def mcp_servers(values: list[str] | None) -> list[Any]:
    """--mcp flags as server specs (the MCP package is imported only when one is given)."""
    from toolchat.mcp import parse_flags

    return parse_flags(values) if values else []


_FLAGS = {f.name for f in fields(ModelFlags)}


def model_flags(order: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Give a command the `ModelFlags` named in `order` (space-separated), mixed in that order with
    the command's own options named there; the command takes them as `flags: ModelFlags`."""
    names = order.split()
    unknown = [n for n in names if n not in _FLAGS]

    def decorate(command: Callable[..., Any]) -> Callable[..., Any]:
        hints = typing.get_type_hints(command, include_extras=True)
        own = {
            name: parameter.replace(annotation=hints.get(name, parameter.annotation))
            for name, parameter in inspect.signature(command).parameters.items()
            if name != "flags"
        }
        flag_hints = typing.get_type_hints(ModelFlags, include_extras=True)
        defaults = ModelFlags()
        taken = [n for n in names if n in _FLAGS]

        def flag(name: str) -> inspect.Parameter:
            keyword = inspect.Parameter.KEYWORD_ONLY
            return inspect.Parameter(name, keyword, annotation=flag_hints[name], default=getattr(defaults, name))

        missing = [n for n in unknown if n not in own]
        if missing:
            raise TypeError(f"{command.__name__}: no option named {', '.join(missing)}")
        first = [p for n, p in own.items() if n not in names]  # ctx, positional arguments
        keyword = inspect.Parameter.KEYWORD_ONLY
        parameters = first + [flag(n) if n in _FLAGS else own[n].replace(kind=keyword) for n in names]

        @functools.wraps(command)
        def run(*args: Any, **kwargs: Any) -> Any:
            flags = ModelFlags(**{n: kwargs.pop(n) for n in taken if n in kwargs})
            return command(*args, flags=flags, **kwargs)

        run.__signature__ = inspect.Signature(parameters)  # type: ignore[attr-defined]
        run.__annotations__ = {p.name: p.annotation for p in parameters}
        return run

    return decorate
