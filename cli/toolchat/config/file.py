"""One config file: parse YAML safely, keep where each key is written, expand ${VAR}, validate
strictly. Errors name the file, line and column (exit 2). The file's values are kept both as written (shown for a
file not trusted yet) and expanded (used once trusted), with a note of what each ${VAR} became. A ${VAR} not set is said
only when the file is used, never to show, validate or trust it."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from toolchat.config.keys import (
    Expansion,
    Missing,
    Positions,
    check_keys,
    check_schema,
    expand_all,
    fail,
    place,
    references_only,
)
from toolchat.config.schema import keys_of
from toolchat.config.yamlfile import parse
from toolchat.errors import ConfigError


@dataclass
class ConfigFile:
    path: Path  # as found (a symlink stays a symlink: its folder is where paths resolve)
    data: dict[str, Any]  # ${VAR} expanded
    lines: Positions  # key path -> 1-based line and column
    raw: dict[str, Any] = field(default_factory=dict)  # as written, for showing a file not trusted yet
    digest: str = ""  # sha256 of exactly the bytes parsed (and of the JSON file `mcp_servers` names)
    expansions: list[Expansion] = field(default_factory=list, repr=False)
    mcp_file: Any = None  # config_mcp.McpFile, when `mcp_servers` names a JSON file
    expanded: bool = True  # False: values as written, for showing before trust
    missing: list[Missing] = field(default_factory=list, repr=False)  # ${VAR}s not set, left as written

    def require_set(self) -> None:
        """Stop at the first ${VAR} not set (file:line:column): the file's values are about to be used.
        One in an inline MCP server's entry is said when that server would start, not here."""
        servers = self.data.get("mcp_servers")
        for hole in self.missing:
            if not (isinstance(servers, dict) and hole.where[:1] == ("mcp_servers",) and len(hole.where) > 2):
                raise hole.error

    @property
    def folder(self) -> Path:
        """Where the file's relative paths resolve, and what trust binds to."""
        return self.path.parent.resolve()

    def at(self, *where: str) -> str:
        return f"{self.path}:{place(self.lines, where)}"

    def as_written(self) -> ConfigFile:
        """The same file with ${VAR} left unexpanded (and the servers of a JSON file it names
        inline): what may be shown before it is trusted."""
        raw = dict(self.raw)
        if self.mcp_file is not None:
            raw["mcp_servers"] = self.mcp_file.servers
        return ConfigFile(self.path, raw, self.lines, raw, self.digest, [], self.mcp_file, expanded=False)


def load_file(path: Path, environ: Mapping[str, str]) -> ConfigFile:
    """Parse and validate one config file; ConfigError names file:line:column on the first problem."""
    import yaml

    parsed = parse(path)
    if parsed.node is None:
        return ConfigFile(path, {}, {}, {}, parsed.digest)
    lines: Positions = {}
    _record_lines(parsed.node, (), lines)
    if not isinstance(parsed.data, dict) or not isinstance(parsed.node, yaml.MappingNode):
        raise ConfigError(f"{path}:{_mark(parsed.node.start_mark)}: the config must be a mapping of keys")
    expansions: list[Expansion] = []
    missing: list[Missing] = []  # said when the values are used, not to show or trust the file
    raw = _keys_as_text(parsed.data)
    data = expand_all(raw, (), f"{path}", environ, lines, expansions, missing)
    _check(data, path, lines)
    file = ConfigFile(path, data, lines, raw, parsed.digest, expansions, missing=missing)
    if isinstance(data.get("mcp_servers"), str):
        for hole in missing:
            if hole.where[:1] == ("mcp_servers",):  # the JSON file it names cannot be found without it
                raise hole.error
        from toolchat.config.mcp_servers import read_mcp_file

        file.mcp_file = read_mcp_file(file.folder / Path(data["mcp_servers"]).expanduser(), file.at("mcp_servers"))
        file.digest = hashlib.sha256(f"{parsed.digest} {file.mcp_file.digest}".encode()).hexdigest()
    return file


def _record_lines(node: Any, where: tuple[str, ...], lines: Positions) -> None:
    import yaml

    stack = [(node, where)]
    while stack:
        current, at = stack.pop()
        lines.setdefault(at, _position(current.start_mark))
        if len(at) > 40:  # only through aliases (depth is bounded when parsing)
            continue
        if isinstance(current, yaml.MappingNode):
            for key_node, value_node in current.value:
                key = (*at, str(key_node.value))
                lines.setdefault(key, _position(key_node.start_mark))
                stack.append((value_node, key))
        elif isinstance(current, yaml.SequenceNode):
            stack.extend((item, (*at, str(i))) for i, item in enumerate(current.value))


def _position(mark: Any) -> tuple[int, int]:
    return mark.line + 1, mark.column + 1


def _mark(mark: Any) -> str:
    return f"{mark.line + 1}:{mark.column + 1}"


def _keys_as_text(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _keys_as_text(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_keys_as_text(v) for v in value]
    return value


def _check(data: dict[str, Any], path: Path, lines: Positions) -> None:
    from toolchat.config.mcp_servers import check_servers

    check_keys(data, keys_of("top"), (), path, lines)
    for name, profile in (data.get("profiles") or {}).items():
        if not isinstance(profile, dict):
            fail(path, lines, ("profiles", name), f"profile '{name}' must be a mapping")
        check_keys(profile, keys_of("profile"), ("profiles", name), path, lines)
    if isinstance(data.get("mcp_servers"), dict):
        check_servers(data["mcp_servers"], ("mcp_servers",), path, lines)
    check_schema(data, "top", path, lines)


_SECRET_NAME = re.compile(r"KEY|TOKEN|SECRET|PASSW|CREDENTIAL|COOKIE|(^|[_-])AUTH(ORIZATION)?($|[_-])", re.IGNORECASE)
_SECRET_PLACES = ("api_key", "headers")  # anything expanded into these is a secret


def secrets_of(expansions: list[Expansion], servers: list[Any] = ()) -> list[str]:
    """The values to hide: what a ${VAR} with a secret-looking name became, anything expanded into
    api_key or a header (or an env entry with a secret-looking name), and literal header or env
    values under secret-looking names (`Authorization: Bearer ...`)."""
    found = []
    for expansion in expansions:
        if (
            _SECRET_NAME.search(expansion.name)
            or any(part in _SECRET_PLACES for part in expansion.where)
            or ("env" in expansion.where and _SECRET_NAME.search(expansion.where[-1]))
        ):
            found.append(expansion.value)
    for server in servers:
        for name, value in [*server.headers.items(), *server.env.items()]:
            if _SECRET_NAME.search(name):
                found.append(
                    value.split(" ", 1)[1] if value.lower().startswith(("bearer ", "basic ", "token ")) else value
                )
    return [
        value for value in found if value.strip() and references_only(value) is None
    ]  # a ${VAR} not set is no secret
