"""One config file: parse YAML safely, keep each key's line, expand ${VAR}, validate strictly.
Errors name the file and line (exit 2). The file's values are kept both as written (shown for a
file not trusted yet) and expanded (used once trusted), with a note of what each ${VAR} became."""

from __future__ import annotations

import difflib
import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from toolchat.config.yamlfile import parse
from toolchat.errors import ConfigError

BACKENDS = ("openai", "local")
PROFILE_KEYS: dict[str, tuple[type, ...]] = {
    "backend": (str,), "model": (str,), "base_url": (str,), "api_key": (str,),
    "temperature": (int, float), "max_tokens": (int,), "n_gpu_layers": (int,), "n_ctx": (int,),
    "n_threads": (int,), "chat_format": (str,), "stream": (bool,), "request_timeout": (int, float), "seed": (int,),
    "response_timeout": (int, float), "max_retries": (int,),
}
TOOLS_KEYS: dict[str, tuple[type, ...]] = {
    "paths": (list,), "allow": (list,), "deny": (list,), "timeout": (int, float),
    "max_output_chars": (int,), "bundled": (bool,),
}
TOP_KEYS: dict[str, tuple[type, ...]] = {
    "profile": (str,), "profiles": (dict,), "system": (str,), "tools": (dict,), "max_rounds": (int,),
    "trace": (str,), "mcp_servers": (dict, str), **PROFILE_KEYS,
}
SECRET_KEYS = {"api_key"}
_TYPE_NAMES = {str: "a string", int: "an integer", float: "a number", bool: "true or false", list: "a list",
               dict: "a mapping"}
CHAT_FORMATS = ("generic", "hermes", "qwen3_coder", "mistral", "llama3", "pythonic", "function_gemma", "granite",
                "harmony")
_AT_LEAST_ONE = ("max_rounds", "max_output_chars", "n_ctx", "max_tokens")
_POSITIVE = ("request_timeout", "response_timeout", "timeout", "startup_timeout")
_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


@dataclass
class Expansion:
    where: tuple[str, ...]  # the key path the ${VAR} was written under
    name: str
    value: str


@dataclass
class ConfigFile:
    path: Path  # as found (a symlink stays a symlink: its folder is where paths resolve)
    data: dict[str, Any]  # ${VAR} expanded
    lines: dict[tuple[str, ...], int]  # key path -> 1-based line
    raw: dict[str, Any] = field(default_factory=dict)  # as written, for showing a file not trusted yet
    digest: str = ""  # sha256 of exactly the bytes parsed (and of the JSON file `mcp_servers` names)
    expansions: list[Expansion] = field(default_factory=list, repr=False)
    mcp_file: Any = None  # config_mcp.McpFile, when `mcp_servers` names a JSON file
    expanded: bool = True  # False: values as written, for showing before trust

    @property
    def folder(self) -> Path:
        """Where the file's relative paths resolve, and what trust binds to."""
        return self.path.parent.resolve()

    def at(self, *where: str) -> str:
        return f"{self.path}:{self.lines.get(where, 1)}"

    def as_written(self) -> ConfigFile:
        """The same file with ${VAR} left unexpanded (and the servers of a JSON file it names
        inline): what may be shown before it is trusted."""
        raw = dict(self.raw)
        if self.mcp_file is not None:
            raw["mcp_servers"] = self.mcp_file.servers
        return ConfigFile(self.path, raw, self.lines, raw, self.digest, [], self.mcp_file, expanded=False)


def load_file(path: Path, environ: Mapping[str, str]) -> ConfigFile:
    """Parse and validate one config file; ConfigError names file:line on the first problem."""
    import yaml

    parsed = parse(path)
    if parsed.node is None:
        return ConfigFile(path, {}, {}, {}, parsed.digest)
    lines: dict[tuple[str, ...], int] = {}
    _record_lines(parsed.node, (), lines)
    if not isinstance(parsed.data, dict) or not isinstance(parsed.node, yaml.MappingNode):
        raise ConfigError(f"{path}:{parsed.node.start_mark.line + 1}: the config must be a mapping of keys")
    expansions: list[Expansion] = []
    raw = _keys_as_text(parsed.data)
    data = expand_all(raw, (), f"{path}", environ, lines, expansions)
    _check(data, path, lines)
    file = ConfigFile(path, data, lines, raw, parsed.digest, expansions)
    if isinstance(data.get("mcp_servers"), str):
        from toolchat.config.mcp_servers import read_mcp_file

        file.mcp_file = read_mcp_file(file.folder / Path(data["mcp_servers"]).expanduser(), file.at("mcp_servers"))
        file.digest = hashlib.sha256(f"{parsed.digest} {file.mcp_file.digest}".encode()).hexdigest()
    return file


def _record_lines(node: Any, where: tuple[str, ...], lines: dict[tuple[str, ...], int]) -> None:
    import yaml

    stack = [(node, where)]
    while stack:
        current, at = stack.pop()
        lines.setdefault(at, current.start_mark.line + 1)
        if len(at) > 40:  # only through aliases (depth is bounded when parsing)
            continue
        if isinstance(current, yaml.MappingNode):
            for key_node, value_node in current.value:
                key = (*at, str(key_node.value))
                lines.setdefault(key, key_node.start_mark.line + 1)
                stack.append((value_node, key))
        elif isinstance(current, yaml.SequenceNode):
            stack.extend((item, (*at, str(i))) for i, item in enumerate(current.value))


def _keys_as_text(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _keys_as_text(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_keys_as_text(v) for v in value]
    return value


def expand_all(value: Any, where: tuple[str, ...], path: str, environ: Mapping[str, str],
               lines: dict[tuple[str, ...], int], expansions: list[Expansion]) -> Any:
    """`value` with every ${VAR} (or ${VAR:-default}) in its strings expanded, each noted."""
    if isinstance(value, dict):
        return {k: expand_all(v, (*where, k), path, environ, lines, expansions) for k, v in value.items()}
    if isinstance(value, list):
        return [expand_all(v, (*where, str(i)), path, environ, lines, expansions) for i, v in enumerate(value)]
    if isinstance(value, str):
        return _expand(value, environ, f"{path}:{lines.get(where, 1)}", where, expansions)
    return value


def _expand(text: str, environ: Mapping[str, str], at: str, where: tuple[str, ...],
            expansions: list[Expansion]) -> str:
    def replace(match: re.Match[str]) -> str:
        name, default = match.group(1), match.group(2)
        if name in environ:
            expansions.append(Expansion(where, name, environ[name]))
            return environ[name]
        if default is not None:
            return default
        raise ConfigError(f"{at}: environment variable {name} is not set",
                          f"set it, or write ${{{name}:-default}}")
    return _VAR.sub(replace, text)


def _check(data: dict[str, Any], path: Path, lines: dict[tuple[str, ...], int]) -> None:
    from toolchat.config.mcp_servers import check_servers

    check_keys(data, TOP_KEYS, (), path, lines)
    for name, profile in (data.get("profiles") or {}).items():
        if not isinstance(profile, dict):
            fail(path, lines, ("profiles", name), f"profile '{name}' must be a mapping")
        check_keys(profile, PROFILE_KEYS, ("profiles", name), path, lines)
    check_keys(data.get("tools") or {}, TOOLS_KEYS, ("tools",), path, lines)
    for key in ("paths", "allow", "deny"):
        for i, item in enumerate((data.get("tools") or {}).get(key) or []):
            if not isinstance(item, str):
                fail(path, lines, ("tools", key, str(i)), f"tools.{key} entries must be strings")
    if isinstance(data.get("mcp_servers"), dict):
        check_servers(data["mcp_servers"], ("mcp_servers",), path, lines)


def check_keys(section: dict[str, Any], spec: dict[str, tuple[type, ...]], where: tuple[str, ...],
               path: Path, lines: dict[tuple[str, ...], int]) -> None:
    for key, value in section.items():
        dotted = ".".join((*where, key))
        if key not in spec:
            close = difflib.get_close_matches(key, list(spec), n=1)
            hint = f"; did you mean '{close[0]}'?" if close else f"; known keys: {', '.join(spec)}"
            fail(path, lines, (*where, key), f"unknown key '{dotted}'{hint}")
        kinds = spec[key]
        if value is None or (isinstance(value, bool) and bool not in kinds) or not isinstance(value, kinds):
            names = " or ".join(_TYPE_NAMES[k] for k in kinds if not (k is int and float in kinds))
            fail(path, lines, (*where, key), f"'{dotted}' must be {names}, not {value!r}")
        if key == "backend" and value not in BACKENDS:
            fail(path, lines, (*where, key), f"unknown backend '{value}'; use one of: {', '.join(BACKENDS)}")
        if key == "chat_format" and value not in CHAT_FORMATS:
            fail(path, lines, (*where, key), f"unknown chat_format '{value}'; use one of: {', '.join(CHAT_FORMATS)}")
        if key in _AT_LEAST_ONE and value < 1:
            fail(path, lines, (*where, key), f"'{dotted}' must be at least 1, not {value}")
        if key in _POSITIVE and not 0 < value < 1e7:
            fail(path, lines, (*where, key), f"'{dotted}' must be a number of seconds above 0, not {value}")
        if key == "max_retries" and not 0 <= value <= 100:
            fail(path, lines, (*where, key), f"'{dotted}' must be from 0 to 100, not {value}")


def fail(path: Path | str, lines: dict[tuple[str, ...], int], where: tuple[str, ...], message: str) -> None:
    """Stop at the line of `where`, or of the nearest key above it that has one."""
    while where and where not in lines:
        where = where[:-1]
    raise ConfigError(f"{path}:{lines.get(where, 1)}: {message}")


_SECRET_NAME = re.compile(r"KEY|TOKEN|SECRET|PASSW|CREDENTIAL|COOKIE|(^|[_-])AUTH(ORIZATION)?($|[_-])", re.IGNORECASE)
_SECRET_PLACES = ("api_key", "headers")  # anything expanded into these is a secret


def secrets_of(expansions: list[Expansion], servers: list[Any] = ()) -> list[str]:
    """The values to hide: what a ${VAR} with a secret-looking name became, anything expanded into
    api_key or a header (or an env entry with a secret-looking name), and literal header or env
    values under secret-looking names (`Authorization: Bearer ...`)."""
    found = []
    for expansion in expansions:
        if (_SECRET_NAME.search(expansion.name) or any(part in _SECRET_PLACES for part in expansion.where)
                or ("env" in expansion.where and _SECRET_NAME.search(expansion.where[-1]))):
            found.append(expansion.value)
    for server in servers:
        for name, value in [*server.headers.items(), *server.env.items()]:
            if _SECRET_NAME.search(name):
                found.append(value.split(" ", 1)[1] if value.lower().startswith(("bearer ", "basic ", "token "))
                             else value)
    return [value for value in found if value.strip()]
