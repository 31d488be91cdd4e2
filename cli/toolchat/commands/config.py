"""The `toolchat config ...` command: show, init, validate, trust, path, schema."""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator
from pathlib import Path

from rich.console import Console
from rich.table import Table
from rich.text import Text

from toolchat.config.file import load_file
from toolchat.config.keys import SECRET_KEYS, references_only
from toolchat.config.settings import PROJECT_NAMES, Settings, find_project_config, user_config_path
from toolchat.config.trust import TrustStore, summary, written
from toolchat.env import Environment
from toolchat.errors import ConfigError, UsageError
from toolchat.terminal.render import plain

SHOWN = [
    "profile",
    "backend",
    "model",
    "base_url",
    "api_key",
    "temperature",
    "max_tokens",
    "n_gpu_layers",
    "n_ctx",
    "n_threads",
    "chat_format",
    "stream",
    "seed",
    "request_timeout",
    "response_timeout",
    "max_retries",
    "reasoning_effort",
    "reasoning_keep",
    "show_reasoning",
    "system",
    "tool_paths",
    "bundled_tools",
    "allow",
    "deny",
    "tool_timeout",
    "tool_parallel",
    "max_output_chars",
    "max_rounds",
    "trace",
    "project_dir",
]
_UNSET = {
    "temperature": "(the server's default)",
    "max_tokens": "(the server's default)",
    "profile": "(none)",
    "api_key": "(not set)",
    "n_threads": "(one per physical core)",
    "chat_format": "(detected from the model)",
    "seed": "(random)",
    "system": "(none)",
    "trace": "(off)",
    "base_url": "(OpenAI's)",
    "reasoning_effort": "(the model's default)",
    "model": "(the first model the server lists)",
}
_LOCAL_ONLY = ("n_gpu_layers", "n_ctx", "n_threads", "chat_format", "seed")
_OPENAI_ONLY = ("base_url", "api_key", "request_timeout", "response_timeout", "max_retries")


def configs_dir() -> Path:
    spec = importlib.util.find_spec("toolchat.configs")
    assert spec is not None and spec.submodule_search_locations
    return Path(list(spec.submodule_search_locations)[0])


def show(settings: Settings, env: Environment, out: Console) -> None:
    """The table; its `from` column (file:line:column) is never cut, and a pipe gets every row whole."""
    rows = [
        (name, value, plain(_near(str(origin), env.cwd, out.is_terminal))) for name, value, origin in _rows(settings)
    ]
    table = Table(box=None, header_style="bold", pad_edge=False)
    table.add_column("setting", no_wrap=True)
    table.add_column("value", overflow="fold")
    table.add_column("from", no_wrap=True, min_width=max(len(row[2].plain) for row in rows))
    for row in rows:
        table.add_row(*row)
    if not out.is_terminal:  # nothing to fit, so cut nothing
        out.width = 10_000
    out.print(table)
    out.print(Text("\nFiles in force:", style="bold"))
    for line in file_lines(settings, env):
        out.print(plain(f"  {line}"))


def _near(origin: str, cwd: Path, terminal: bool) -> str:
    """On a terminal, a file in this folder or below as a relative path (`toolchat.yaml:3:1`), so the
    column fits; its full path is under "Files in force". A pipe gets the full path, for tools."""
    folder = f"{cwd.resolve()}/"
    return origin[len(folder) :] if terminal and origin.startswith(folder) else origin


def _rows(settings: Settings) -> Iterator[tuple[Text, Text, str]]:
    redactor = settings.redactor()
    unused = _LOCAL_ONLY if settings.backend == "openai" else _OPENAI_ONLY if settings.backend == "local" else ()
    for name in SHOWN:
        value = getattr(settings, name)
        reference = references_only(value) if name in SECRET_KEYS and isinstance(value, str) else None
        if reference is not None:  # a file not trusted yet: the ${VAR} as written (defaults hidden), not redacted
            yield Text(name), plain(reference), settings.origins.get(name, "default")
            continue
        if name in SECRET_KEYS:
            value = "*** (set, hidden)" if value else None
        elif isinstance(value, (bool, list)):
            value = written([str(v) for v in value] if isinstance(value, list) else value)
        if value is None:
            value = _UNSET.get(name, "")
        if name in unused:
            value = f"{value} (not used by the {settings.backend} backend)".lstrip()
        yield Text(name), plain(redactor.redact(str(value))), settings.origins.get(name, "default")
    for spec in settings.mcp_servers:
        state = "" if spec.enabled else " (disabled)"
        yield (
            plain(f"mcp_servers.{spec.name}"),  # a name from a file: no escape, no markup
            plain(redactor.redact(f"{spec.type}: {spec.describe()}{state}")),
            spec.origin,
        )


def file_lines(settings: Settings, env: Environment) -> list[str]:
    lines = []
    user = user_config_path(env.config_dir)
    lines.append(f"user:    {user}" + ("" if user.is_file() else " (none)"))
    project = find_project_config(env.cwd)
    used = [s for s in settings.sources if s != user]
    store = TrustStore(env.data_dir)
    for path in used:
        if store.is_trusted(load_file(path, env.environ)):
            state = "trusted"
        elif project is not None and path == project:
            state = f"NOT trusted: run `toolchat config trust {path}`"
        else:
            state = "given with -c"
        lines.append(f"project: {path} ({state})")
    if not used and project is not None:
        lines.append(f"project: {project} (NOT trusted: run `toolchat config trust {project}`)")
    elif not used:
        lines.append(f"project: none ({' or '.join(PROJECT_NAMES)} in this folder or above)")
    return lines


def schema_text() -> str:
    """The JSON Schema of toolchat.yaml, for editors (`toolchat config schema > toolchat.schema.json`)."""
    return (configs_dir() / "toolchat.schema.json").read_text(encoding="utf-8")


def init(cwd: Path, out: Console, env: Environment) -> None:
    """A commented toolchat.yaml; its header names no path of this machine, so it suits a clone."""
    target = cwd / "toolchat.yaml"
    if target.exists():
        raise UsageError(f"{target} already exists; not overwriting it", "edit it, or remove it first")
    body = (configs_dir() / "init.yaml").read_text(encoding="utf-8")
    target.write_text(body, encoding="utf-8")
    TrustStore(env.data_dir).trust(load_file(target, env.environ))  # you wrote it here, so it is yours
    out.print(plain(f"wrote {target} (trusted, since you made it)"))
    out.print(plain("`toolchat config show` prints what is in force"))  # its own line: never wrapped inside


def target_file(path: Path | None, env: Environment) -> Path:
    if path is not None:
        resolved = (env.cwd / path).resolve()
        if not resolved.is_file():
            raise ConfigError(f"config file not found: {resolved}")
        return resolved
    found = find_project_config(env.cwd)
    if found is not None:
        return found
    user = user_config_path(env.config_dir)
    if user.is_file():
        return user
    raise ConfigError("no config file here or above, and no user config", "create one with `toolchat config init`")


def validate(path: Path | None, env: Environment, out: Console) -> None:
    target = target_file(path, env)
    load_file(target, env.environ)
    out.print(plain(f"{target}: valid"))


def trust(path: Path | None, env: Environment, out: Console) -> None:
    target = target_file(path, env)
    config = load_file(target, env.environ)  # never trust a file that does not validate
    out.print(plain(f"Trusting {target}, which sets:"))
    for line in summary(config.as_written().data):
        out.print(plain(f"  {line}"))
    TrustStore(env.data_dir).trust(config)  # exactly the bytes just shown
    out.print(plain("trusted; an edit to this file will need trust again"))
