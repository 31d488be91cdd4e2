"""What every command is given before it runs: the one Environment `main` made, the settings in
force (config files, overrides, the sandbox's warning) and the tools it offers."""

from __future__ import annotations

from typing import Any

import typer

from toolchat.commands.options import as_path, tool_paths
from toolchat.env import Environment


def env_of(ctx: typer.Context) -> Environment:
    """The one Environment `main` made, handed down through Typer's context."""
    obj = ctx.find_root().obj
    return obj if isinstance(obj, Environment) else Environment()


def load_settings(
    env: Environment, config: str | None, on_untrusted: Any = None, check_trust: bool = True, **overrides: Any
) -> Any:
    """The merged config for `config` (or the files discovered) and `overrides`; `--no-sandbox` wins."""
    from toolchat.config import settings as config_module

    settings = config_module.load_in(
        env,
        as_path(config),
        overrides,
        on_untrusted=on_untrusted,
        check_trust=check_trust,
        notify=lambda message: notice(env, message),
    )
    if env.no_sandbox:
        settings.sandbox.mode, settings.origins["sandbox"] = "off", "--no-sandbox"
    _sandbox_warning(env, settings)
    return settings


def tool_settings(env: Environment, config: str | None, tools: list[str] | None, no_bundled: bool) -> Any:
    """The settings of the commands that only look at tools (`tools ...`, `sandbox`)."""
    return load_settings(
        env,
        config,
        tool_paths=tool_paths(env, tools),
        bundled_tools=False if no_bundled else None,
    )


_warned: set[int] = set()


def _sandbox_warning(env: Environment, settings: Any) -> None:
    """Once a run: the sandbox is asked for and this system cannot enforce it (never silent)."""
    from toolchat.sandbox.policy import warning

    message = warning(settings.sandbox)
    if message is not None and id(env) not in _warned:
        _warned.add(id(env))
        notice(env, message)


def notice(env: Environment, message: str) -> None:
    """One `toolchat: ...` line on stderr, with no escape of the message's reaching the terminal."""
    from toolchat.safety import clean

    env.write(f"toolchat: {clean(message)}\n", err=True)


def load_tools(settings: Any, env: Environment, no_tools: bool = False, notify: Any = None, waits: bool = True) -> Any:
    """The tools a command offers: plugin folders and bundled tools, then MCP servers (the MCP
    package is imported only when a server is configured)."""
    from toolchat.tools import Registry
    from toolchat.tools.isolation import worker
    from toolchat.tools.registry import load

    if no_tools:
        return Registry()
    worker.hide_secrets([settings.api_key, *settings.secrets])  # no key in force reaches a tool
    registry = load(settings.tool_paths, settings.bundled_tools, env.cache_dir, settings.project_dir)
    if settings.mcp_servers:
        from toolchat.mcp.wiring import attach

        attach(registry, settings, env, notify, waits=waits)
    return registry
