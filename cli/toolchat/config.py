"""Find, parse, validate and merge config files into typed Settings; prints nothing.

Errors name the file and line. Only the user's own config and a file given with `-c` are read
for now; walking up to a project's `toolchat.yaml` waits for trust (a project file can run code).
"""

from __future__ import annotations

import difflib
import os
import re
from dataclasses import dataclass, field
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
_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


@dataclass
class Settings:
    """Everything a command needs, merged from defaults, config files and flags."""

    backend: str | None = None
    model: str | None = None
    base_url: str | None = None
    api_key: str | None = field(default=None, repr=False)
    temperature: float | None = None
    max_tokens: int | None = None
    n_gpu_layers: int = -1
    n_ctx: int = 8192
    n_threads: int | None = None
    chat_format: str | None = None
    stream: bool = True
    seed: int | None = None  # local backend: fixed sampling seed for repeatable output
    request_timeout: float = 120.0
    system: str | None = None
    tool_paths: list[Path] = field(default_factory=list)
    bundled_tools: bool = True
    allow: list[str] = field(default_factory=list)
    deny: list[str] = field(default_factory=list)
    tool_timeout: float = 60.0
    max_output_chars: int = 20_000
    max_rounds: int = 10
    profile: str | None = None
    project_dir: Path = field(default_factory=Path.cwd)
    sources: list[Path] = field(default_factory=list)


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
            names = " or ".join(k.__name__.replace("str", "string").replace("dict", "mapping") for k in kinds)
            _fail(path, lines, (*where, key), f"'{dotted}' must be a {names}, not {value!r}")
        if key == "backend" and value not in BACKENDS:
            _fail(path, lines, (*where, key), f"unknown backend '{value}'; use one of: {', '.join(BACKENDS)}")


def _fail(path: Path, lines: dict[tuple[str, ...], int], where: tuple[str, ...], message: str) -> None:
    raise ConfigError(f"{path}:{lines.get(where, 1)}: {message}")


def user_config_path(config_dir: Path) -> Path:
    return config_dir / "config.yaml"


def resolve(files: list[ConfigFile], overrides: Mapping[str, Any], cwd: Path,
            environ: Mapping[str, str]) -> Settings:
    """Merge config files (later wins) and flags (win over all) into Settings."""
    settings = Settings(project_dir=cwd)
    chosen_profile = overrides.get("profile")
    for file in files:
        chosen_profile = chosen_profile or file.data.get("profile")
    for file in files:
        _apply_file(settings, file, chosen_profile)
    if chosen_profile and not any(chosen_profile in (f.data.get("profiles") or {}) for f in files):
        known = sorted({p for f in files for p in (f.data.get("profiles") or {})})
        raise ConfigError(f"no profile named '{chosen_profile}'",
                          f"profiles: {', '.join(known)}" if known else "no config defines profiles")
    settings.profile = chosen_profile
    for key, value in overrides.items():
        if value is None or key == "profile":
            continue
        if key in ("tool_paths", "allow", "deny"):  # flags add to what the config lists
            getattr(settings, key).extend(value)
        else:
            setattr(settings, key, value)
    _apply_defaults(settings, environ)
    return settings


def _apply_file(settings: Settings, file: ConfigFile, profile: str | None) -> None:
    base = file.path.parent
    data = file.data
    sections = [data] + ([data["profiles"][profile]] if profile in (data.get("profiles") or {}) else [])
    for section in sections:
        for key in PROFILE_KEYS:
            if key in section:
                value = section[key]
                if key == "model" and str(value).endswith(".gguf"):
                    value = str((base / os.path.expanduser(value)).resolve())
                setattr(settings, key, value)
    if "system" in data:
        settings.system = data["system"]
    if "max_rounds" in data:
        settings.max_rounds = data["max_rounds"]
    tools = data.get("tools") or {}
    settings.tool_paths += [(base / os.path.expanduser(p)).resolve() for p in tools.get("paths", [])]
    settings.allow += tools.get("allow", [])
    settings.deny += tools.get("deny", [])
    if "timeout" in tools:
        settings.tool_timeout = float(tools["timeout"])
    if "max_output_chars" in tools:
        settings.max_output_chars = tools["max_output_chars"]
    if "bundled" in tools:
        settings.bundled_tools = tools["bundled"]
    settings.sources.append(file.path)


def _apply_defaults(settings: Settings, environ: Mapping[str, str]) -> None:
    """With no backend named: a base URL or an OpenAI key means OpenAI, else the bundled model."""
    settings.base_url = settings.base_url or environ.get("OPENAI_BASE_URL") or None
    if settings.backend is None:
        if settings.base_url or environ.get("OPENAI_API_KEY"):
            settings.backend = "openai"
        else:
            settings.backend = "local"
    if settings.backend == "local" and not settings.model:
        settings.model = "bundled"
    if settings.backend == "openai" and not settings.base_url and not settings.model:
        settings.model = "gpt-4o-mini"


def load(config_path: Path | None, overrides: Mapping[str, Any], *, config_dir: Path, cwd: Path,
         environ: Mapping[str, str]) -> Settings:
    """The user's config, then `-c PATH` if given, then the flags in `overrides`."""
    files = []
    user = user_config_path(config_dir)
    if user.is_file():
        files.append(load_file(user, environ))
    project_dir = cwd
    if config_path is not None:
        config_path = (cwd / config_path).resolve()
        if not config_path.is_file():
            raise ConfigError(f"config file not found: {config_path}")
        files.append(load_file(config_path, environ))
        project_dir = config_path.parent
    return resolve(files, overrides, project_dir, environ)
