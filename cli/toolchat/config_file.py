"""One config file: parse YAML, keep each key's line, expand ${VAR}, validate strictly.
Errors name the file and line (exit 2)."""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from toolchat.errors import ConfigError

BACKENDS = ("openai", "local")
PROFILE_KEYS: dict[str, tuple[type, ...]] = {
    "backend": (str,), "model": (str,), "base_url": (str,), "api_key": (str,),
    "temperature": (int, float), "max_tokens": (int,), "n_gpu_layers": (int,), "n_ctx": (int,),
    "n_threads": (int,), "chat_format": (str,), "stream": (bool,), "request_timeout": (int, float), "seed": (int,),
}
TOOLS_KEYS: dict[str, tuple[type, ...]] = {
    "paths": (list,), "allow": (list,), "deny": (list,), "timeout": (int, float),
    "max_output_chars": (int,), "bundled": (bool,),
}
TOP_KEYS: dict[str, tuple[type, ...]] = {
    "profile": (str,), "profiles": (dict,), "system": (str,), "tools": (dict,), "max_rounds": (int,),
    **PROFILE_KEYS,
}
SECRET_KEYS = {"api_key"}
_TYPE_NAMES = {str: "a string", int: "an integer", float: "a number", bool: "true or false", list: "a list",
               dict: "a mapping"}
CHAT_FORMATS = ("generic", "hermes", "qwen3_coder", "mistral", "llama3", "pythonic", "function_gemma", "granite",
                "harmony")
_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


@dataclass
class ConfigFile:
    path: Path
    data: dict[str, Any]
    lines: dict[tuple[str, ...], int]  # key path -> 1-based line


def load_file(path: Path, environ: Mapping[str, str]) -> ConfigFile:
    """Parse and validate one config file; ConfigError names file:line on the first problem."""
    import yaml

    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the config file ({exc.strerror})") from None
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f":{mark.line + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(f"{path}{line}: broken YAML: {problem}") from None
    if node is None:
        return ConfigFile(path, {}, {})
    lines: dict[tuple[str, ...], int] = {}
    _record_lines(node, (), lines)
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}:{node.start_mark.line + 1}: the config must be a mapping of keys")
    data = _expand_all(raw, (), path, environ, lines)
    _check(data, path, lines)
    return ConfigFile(path, data, lines)


def _record_lines(node: Any, where: tuple[str, ...], lines: dict[tuple[str, ...], int]) -> None:
    import yaml

    lines.setdefault(where, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            key = str(key_node.value)
            lines[(*where, key)] = key_node.start_mark.line + 1
            _record_lines(value_node, (*where, key), lines)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _record_lines(item, (*where, str(i)), lines)


def _expand_all(value: Any, where: tuple[str, ...], path: Path, environ: Mapping[str, str],
                lines: dict[tuple[str, ...], int]) -> Any:
    if isinstance(value, dict):
        return {str(k): _expand_all(v, (*where, str(k)), path, environ, lines) for k, v in value.items()}
    if isinstance(value, list):
        return [_expand_all(v, (*where, str(i)), path, environ, lines) for i, v in enumerate(value)]
    if isinstance(value, str):
        return _expand(value, environ, f"{path}:{lines.get(where, 1)}")
    return value


def _expand(text: str, environ: Mapping[str, str], where: str) -> str:
    def replace(match: re.Match[str]) -> str:
        name, default = match.group(1), match.group(2)
        if name in environ:
            return environ[name]
        if default is not None:
            return default
        raise ConfigError(f"{where}: environment variable {name} is not set",
                          f"set it, or write ${{{name}:-default}}")
    return _VAR.sub(replace, text)


def _check(data: dict[str, Any], path: Path, lines: dict[tuple[str, ...], int]) -> None:
    _check_keys(data, TOP_KEYS, (), path, lines)
    for name, profile in (data.get("profiles") or {}).items():
        if not isinstance(profile, dict):
            _fail(path, lines, ("profiles", name), f"profile '{name}' must be a mapping")
        _check_keys(profile, PROFILE_KEYS, ("profiles", name), path, lines)
    _check_keys(data.get("tools") or {}, TOOLS_KEYS, ("tools",), path, lines)
    for key in ("paths", "allow", "deny"):
        for i, item in enumerate((data.get("tools") or {}).get(key) or []):
            if not isinstance(item, str):
                _fail(path, lines, ("tools", key, str(i)), f"tools.{key} entries must be strings")


def _check_keys(section: dict[str, Any], spec: dict[str, tuple[type, ...]], where: tuple[str, ...],
                path: Path, lines: dict[tuple[str, ...], int]) -> None:
    for key, value in section.items():
        dotted = ".".join((*where, key))
        if key not in spec:
            close = difflib.get_close_matches(key, list(spec), n=1)
            hint = f"; did you mean '{close[0]}'?" if close else f"; known keys: {', '.join(spec)}"
            _fail(path, lines, (*where, key), f"unknown key '{dotted}'{hint}")
        kinds = spec[key]
        if value is None or (isinstance(value, bool) and bool not in kinds) or not isinstance(value, kinds):
            names = " or ".join(_TYPE_NAMES[k] for k in kinds)
            _fail(path, lines, (*where, key), f"'{dotted}' must be {names}, not {value!r}")
        if key == "backend" and value not in BACKENDS:
            _fail(path, lines, (*where, key), f"unknown backend '{value}'; use one of: {', '.join(BACKENDS)}")
        if key == "chat_format" and value not in CHAT_FORMATS:
            _fail(path, lines, (*where, key), f"unknown chat_format '{value}'; use one of: {', '.join(CHAT_FORMATS)}")
        if key in ("max_rounds", "max_output_chars", "n_ctx", "max_tokens") and value < 1:
            _fail(path, lines, (*where, key), f"'{dotted}' must be at least 1, not {value}")


def _fail(path: Path, lines: dict[tuple[str, ...], int], where: tuple[str, ...], message: str) -> None:
    raise ConfigError(f"{path}:{lines.get(where, 1)}: {message}")
