"""`mcp_servers` in a config file: validated like every key, turned into McpServerSpec. An entry
takes the keys of an `mcpServers` entry of .mcp.json / Claude Desktop / Cursor (so one can be
pasted), plus timeout, startup_timeout, enabled and tools; or `mcp_servers` names such a JSON
file (its `mcpServers`, or VS Code's `servers`)."""

from __future__ import annotations

import functools
import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from toolchat import defaults
from toolchat.config.keys import Expansion, Missing, Positions, check_keys, check_schema, expand_all, fail, place
from toolchat.config.mcp_spec import McpServerSpec
from toolchat.config.schema import keys_of
from toolchat.config.yamlfile import decode, read_bytes
from toolchat.errors import ConfigError

if TYPE_CHECKING:
    from toolchat.config.file import ConfigFile

_TYPE_ALIASES = {"streamable-http": "http", "streamableHttp": "http", "streamable_http": "http"}
_EXPANDED = ("command", "args", "env", "url", "headers")  # where ${VAR} works in a JSON file


def check_servers(servers: dict[str, Any], where: tuple[str, ...], path: Path | str, lines: Positions) -> None:
    """Each entry's keys and types, with file:line:column and did-you-mean."""
    for name, entry in servers.items():
        at = (*where, name)
        if not name.strip():
            fail(path, lines, at, "an MCP server needs a name")
        if not isinstance(entry, dict):
            fail(path, lines, at, f"MCP server '{name}' must be a mapping (command and args, or url)")
        check_keys(entry, keys_of("server"), at, path, lines, {"type": functools.partial(_unknown_type, name)})
        kind = _TYPE_ALIASES.get(entry.get("type", ""), entry.get("type"))
        has_command, has_url = "command" in entry, "url" in entry
        if has_command == has_url:
            said = "both 'command' and 'url'" if has_command else "neither 'command' nor 'url'"
            fail(path, lines, at, f"MCP server '{name}' has {said}; give a command (stdio) or a url (http)")
        if has_command and not entry["command"].strip():
            fail(path, lines, (*at, "command"), f"MCP server '{name}' has an empty command")
        if has_url and not re.match(r"https?://\S+$", entry["url"], re.IGNORECASE) and "${" not in entry["url"]:
            fail(
                path,
                lines,
                (*at, "url"),
                f"MCP server '{name}': url must start with http:// or https://, not {entry['url']!r}",
            )
        if kind is not None and (kind == "http") != has_url:
            fail(
                path,
                lines,
                (*at, "type"),
                f"MCP server '{name}' is type {kind} but has {'a url' if has_url else 'a command'}",
            )
        check_schema(entry, "server", path, lines, at)


def _unknown_type(name: str, kind: str) -> str:
    hint = "; SSE is not supported, use the server's Streamable HTTP URL" if kind == "sse" else ""
    return f"unknown type '{kind}' for MCP server '{name}'; use stdio or http{hint}"


@dataclass
class McpFile:
    """A JSON file of servers that `mcp_servers: PATH` names, read once with the config (its bytes
    are part of what trust binds to), validated, not yet expanded."""

    path: Path
    servers: dict[str, Any]
    lines: Positions
    digest: str


def read_mcp_file(path: Path, named_at: str) -> McpFile:
    """A .mcp.json / Claude Desktop / Cursor file (`mcpServers`) or VS Code's mcp.json (`servers`)."""
    if not path.is_file():
        raise ConfigError(f"{named_at}: mcp_servers names {path}, which is not a file")
    raw = read_bytes(path)
    text = decode(path, raw)
    try:
        document = json.loads(text)
    except (json.JSONDecodeError, RecursionError) as exc:
        where = (
            f"{exc.lineno}:{exc.colno}: broken JSON: {exc.msg}"
            if isinstance(exc, json.JSONDecodeError)
            else "1:1: nested too deeply"
        )
        raise ConfigError(f"{path}:{where}") from None
    servers = document.get("mcpServers", document.get("servers")) if isinstance(document, dict) else None
    if not isinstance(servers, dict):
        raise ConfigError(f"{path}:1:1: no 'mcpServers' (or VS Code's 'servers') mapping in this file")
    lines = {("mcpServers", name): _position_of(text, name) for name in servers}
    check_servers(servers, ("mcpServers",), path, lines)
    return McpFile(path, servers, lines, hashlib.sha256(raw).hexdigest())


def specs(file: ConfigFile, environ: Mapping[str, str]) -> tuple[list[McpServerSpec], list[Expansion]]:
    """The servers a config file names (inline or through a JSON file), with what ${VAR} became.
    A file shown before it is trusted (`as_written`) has its JSON servers inline, unexpanded."""
    value = file.data.get("mcp_servers")
    if file.mcp_file is not None and file.expanded:
        return _from_json(file.mcp_file, environ)
    if not isinstance(value, dict):
        return [], []
    found = [spec_of(name, entry, file.folder, file.at("mcp_servers", name)) for name, entry in value.items()]
    for spec in found:  # a ${VAR} not set in its entry stops only this server, when it would start
        holes = [hole.error.message for hole in file.missing if hole.where[:2] == ("mcp_servers", spec.name)]
        spec.unset = holes[0] if holes else None
    return found, []


def spec_of(name: str, entry: dict[str, Any], folder: Path, origin: str) -> McpServerSpec:
    kind = _TYPE_ALIASES.get(entry.get("type", ""), entry.get("type")) or ("http" if "url" in entry else "stdio")
    cwd = entry.get("cwd")
    return McpServerSpec(
        name=name,
        type=kind,
        command=entry.get("command"),
        args=[str(a) for a in entry.get("args") or []],
        env={str(k): str(v) for k, v in (entry.get("env") or {}).items()},
        cwd=(folder / Path(cwd).expanduser()).resolve() if cwd else None,
        url=entry.get("url"),
        headers={str(k): str(v) for k, v in (entry.get("headers") or {}).items()},
        timeout=float(entry["timeout"]) if "timeout" in entry else None,
        startup_timeout=float(entry.get("startup_timeout", defaults.MCP_STARTUP_TIMEOUT)),
        enabled=entry.get("enabled", True),
        tools=list(entry["tools"]) if "tools" in entry else None,
        sandbox=bool(entry.get("sandbox", False)),
        network=bool(entry.get("network", False)),
        origin=origin,
    )


def _from_json(table: McpFile, environ: Mapping[str, str]) -> tuple[list[McpServerSpec], list[Expansion]]:
    found: list[McpServerSpec] = []
    expansions: list[Expansion] = []
    for name, entry in table.servers.items():
        at = ("mcpServers", name)
        holes: list[Missing] = []  # a ${VAR} not set stops only this server, when it would start
        expanded = {
            key: expand_all(value, (*at, key), str(table.path), environ, table.lines, expansions, holes)
            if key in _EXPANDED
            else value
            for key, value in entry.items()
        }
        spec = spec_of(name, expanded, table.path.parent.resolve(), f"{table.path}:{place(table.lines, at)}")
        spec.unset = holes[0].error.message if holes else None
        found.append(spec)
    return found, expansions


def _position_of(text: str, name: str) -> tuple[int, int]:
    """Line and column of `"name":` in a JSON text (json keeps no positions), else 1:1."""
    needle = json.dumps(name)
    for number, line in enumerate(text.splitlines(), 1):
        column = line.find(needle)
        if column >= 0 and ":" in line[column + len(needle) :][:3]:
            return number, column + 1
    return 1, 1
