"""The config's keys: the tables of what each section may hold, the check of one section against
its table, ${VAR} expansion, and the one way a config error names its file and line. The file
reader and the MCP server entries both stand on this."""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from toolchat.errors import ConfigError

BACKENDS = ("openai", "local")
PROFILE_KEYS: dict[str, tuple[type, ...]] = {
    "backend": (str,),
    "model": (str,),
    "base_url": (str,),
    "api_key": (str,),
    "temperature": (int, float),
    "max_tokens": (int,),
    "n_gpu_layers": (int,),
    "n_ctx": (int,),
    "n_threads": (int,),
    "chat_format": (str,),
    "stream": (bool,),
    "request_timeout": (int, float),
    "seed": (int,),
    "response_timeout": (int, float),
    "max_retries": (int,),
}
TOOLS_KEYS: dict[str, tuple[type, ...]] = {
    "paths": (list,),
    "allow": (list,),
    "deny": (list,),
    "timeout": (int, float),
    "max_output_chars": (int,),
    "bundled": (bool,),
}
SANDBOX_KEYS: dict[str, tuple[type, ...]] = {
    "mode": (str,),
    "write": (list,),
    "network": (list,),
    "required": (bool,),
}
TOP_KEYS: dict[str, tuple[type, ...]] = {
    "sandbox": (dict,),
    "profile": (str,),
    "profiles": (dict,),
    "system": (str,),
    "tools": (dict,),
    "max_rounds": (int,),
    "trace": (str,),
    "mcp_servers": (dict, str),
    **PROFILE_KEYS,
}
SECRET_KEYS = {"api_key"}
_TYPE_NAMES = {
    str: "a string",
    int: "an integer",
    float: "a number",
    bool: "true or false",
    list: "a list",
    dict: "a mapping",
}
CHAT_FORMATS = (
    "generic",
    "hermes",
    "qwen3_coder",
    "mistral",
    "llama3",
    "pythonic",
    "function_gemma",
    "granite",
    "harmony",
)
_AT_LEAST_ONE = ("max_rounds", "max_output_chars", "n_ctx", "max_tokens")
_POSITIVE = ("request_timeout", "response_timeout", "timeout", "startup_timeout")
_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


@dataclass
class Expansion:
    where: tuple[str, ...]  # the key path the ${VAR} was written under
    name: str
    value: str


def expand_all(
    value: Any,
    where: tuple[str, ...],
    path: str,
    environ: Mapping[str, str],
    lines: dict[tuple[str, ...], int],
    expansions: list[Expansion],
) -> Any:
    """`value` with every ${VAR} (or ${VAR:-default}) in its strings expanded, each noted."""
    if isinstance(value, dict):
        return {k: expand_all(v, (*where, k), path, environ, lines, expansions) for k, v in value.items()}
    if isinstance(value, list):
        return [expand_all(v, (*where, str(i)), path, environ, lines, expansions) for i, v in enumerate(value)]
    if isinstance(value, str):
        return _expand(value, environ, f"{path}:{lines.get(where, 1)}", where, expansions)
    return value


def _expand(text: str, environ: Mapping[str, str], at: str, where: tuple[str, ...], expansions: list[Expansion]) -> str:
    def replace(match: re.Match[str]) -> str:
        name, default = match.group(1), match.group(2)
        if name in environ:
            expansions.append(Expansion(where, name, environ[name]))
            return environ[name]
        if default is not None:
            return default
        raise ConfigError(f"{at}: environment variable {name} is not set", f"set it, or write ${{{name}:-default}}")

    return _VAR.sub(replace, text)


def check_keys(
    section: dict[str, Any],
    spec: dict[str, tuple[type, ...]],
    where: tuple[str, ...],
    path: Path,
    lines: dict[tuple[str, ...], int],
) -> None:
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
