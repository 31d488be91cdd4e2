"""MCP servers as a tool source. Importing this package imports nothing of the MCP SDK: that happens
only once a server is configured and started."""

from __future__ import annotations

import importlib.util
import re
import shlex
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from toolchat.config.mcp_spec import McpServerSpec
from toolchat.errors import UsageError
from toolchat.mcp.names import sanitise

if TYPE_CHECKING:
    from toolchat.mcp.source import McpSource

INSTALL = "pip install 'toolchat[mcp]'"
_URL = re.compile(r"^https?://", re.IGNORECASE)


def parse_flags(values: Sequence[str], taken: Sequence[str] = ()) -> list[McpServerSpec]:
    """`--mcp 'command args'` and `--mcp URL` as server specs, named after the command or host
    (`mcp-server-time` -> `time`), kept apart from each other and from the names already `taken`
    (one with a configured server's name replaces that server: see config.resolve)."""
    used = set(taken)
    specs = []
    for value in values:
        spec = parse_flag(value)
        base, n = spec.name, 2
        while spec.name in used:
            spec.name, n = f"{base}{n}", n + 1
        used.add(spec.name)
        specs.append(spec)
    return specs


def parse_flag(value: str) -> McpServerSpec:
    text = value.strip()
    if not text:
        raise UsageError("--mcp needs a command or a URL", "--mcp 'mcp-server-time' or --mcp https://host/mcp")
    if _URL.match(text):
        from urllib.parse import urlsplit

        host = urlsplit(text).hostname or ""
        word = "http" if not host or host[0].isdigit() or host.startswith(("localhost", "[")) else host.split(".")[0]
        return McpServerSpec(name=_short(word), type="http", url=text, origin="command line (--mcp)")
    try:
        words = shlex.split(text)
    except ValueError as exc:
        raise UsageError(f"--mcp {value!r}: {exc}", "quote the command as one argument") from None
    return McpServerSpec(
        name=_short(_naming_word(words)), type="stdio", command=words[0], args=words[1:], origin="command line (--mcp)"
    )


_RUNNERS = {"python", "python3", "node", "npx", "uvx", "uv", "pipx", "deno", "bun", "bunx", "docker", "run"}


def _naming_word(words: list[str]) -> str:
    """The word a server is named after: the command, or what a runner (`python`, `npx`) runs."""
    for word in words:
        name = Path(word).name
        if word.startswith("-") or re.sub(r"[\d.]+$", "", name) in _RUNNERS:
            continue
        return name.split("@")[0] or name
    return Path(words[0]).name


def _short(word: str) -> str:
    """A server name from a command or host: `mcp-server-git` -> `git`, `docs-mcp` -> `docs`."""
    word = re.sub(r"\.(py|js|ts|exe)$", "", word)
    word = re.sub(r"^(mcp[-_]server[-_]|server[-_]|mcp[-_])", "", word, flags=re.IGNORECASE)
    word = re.sub(r"([-_]mcp([-_]server)?|[-_]server)$", "", word, flags=re.IGNORECASE)
    return sanitise(word)[:24] or "mcp"


def require_sdk() -> None:
    """Exit 2 with the install command when servers are configured but the SDK is missing."""
    if importlib.util.find_spec("mcp") is None:
        raise UsageError("MCP servers are configured but the MCP SDK is not installed", f"install it: {INSTALL}")


def open_source(
    specs: Sequence[McpServerSpec],
    *,
    project_dir: Path,
    environ: Mapping[str, str],
    data_dir: Path,
    notify: Callable[[str], None] | None = None,
    secrets: Sequence[str] = (),
) -> McpSource | None:
    """Start every enabled server (concurrently, in the background); None when there are none."""
    if not any(spec.enabled for spec in specs):
        return None
    require_sdk()
    from toolchat.mcp.source import McpSource

    return McpSource(specs, project_dir=project_dir, environ=environ, data_dir=data_dir, notify=notify, secrets=secrets)
