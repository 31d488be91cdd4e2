"""Find config files, merge them with flags into typed Settings, and say where each value came
from; prints nothing (notices go to a callback). Order, later winning: defaults, the user's
config, the project's `toolchat.yaml` (found by walking up, used only once trusted) or `-c PATH`,
then flags."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from toolchat import defaults
from toolchat.config.file import ConfigFile, load_file, secrets_of
from toolchat.config.mcp_spec import McpServerSpec
from toolchat.config.schema import keys_of
from toolchat.errors import ConfigError
from toolchat.redact import Redactor
from toolchat.sandbox.policy import Config as SandboxConfig
from toolchat.sandbox.policy import resolve as resolve_writes

PROJECT_NAMES = ("toolchat.yaml", ".toolchat.yaml")


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
    request_timeout: float = defaults.REQUEST_TIMEOUT
    response_timeout: float = defaults.RESPONSE_TIMEOUT
    max_retries: int = defaults.MAX_RETRIES
    reasoning_effort: str | None = None  # none | low | medium | high: sent as the server reads it
    reasoning_keep: str = "turn"  # whose reasoning goes back: this turn's, every turn's, none
    show_reasoning: bool = True  # the REPL streams reasoning live (and ask writes it to stderr)
    context_window: int | None = None  # tokens; None: what the server or the local model says
    compact_at: int | str = 85  # compact past this % of the window, or "off"
    system: str | None = None
    tool_paths: list[Path] = field(default_factory=list)
    bundled_tools: bool = True
    allow: list[str] = field(default_factory=list)
    deny: list[str] = field(default_factory=list)
    tool_timeout: float = defaults.TOOL_TIMEOUT
    tool_parallel: int = defaults.TOOL_PARALLEL  # approved calls of one reply that run at once
    max_output_chars: int = defaults.MAX_OUTPUT_CHARS
    max_rounds: int = defaults.MAX_ROUNDS
    trace: Path | None = None  # write spans as JSON lines to this file
    trace_content: bool | None = None  # --trace-content: messages, arguments and results in the spans
    mcp_servers: list[McpServerSpec] = field(default_factory=list)
    profile: str | None = None
    project_dir: Path = field(default_factory=Path.cwd)
    sources: list[Path] = field(default_factory=list)
    origins: dict[str, str] = field(default_factory=dict)  # setting -> "file:line:column" | "command line" | ...
    secrets: list[str] = field(default_factory=list, repr=False)  # values to hide wherever text is shown
    sandbox: SandboxConfig = field(default_factory=lambda: SandboxConfig())  # what a tool may touch

    def redactor(self) -> Redactor:
        """Hides the API key and every secret a config expanded, in any output, session or log."""
        return Redactor([self.api_key, *self.secrets])


# the name of each Settings field in a config file, where it differs
_TOOL_KEYS = {
    "paths": "tool_paths",
    "allow": "allow",
    "deny": "deny",
    "timeout": "tool_timeout",
    "parallel": "tool_parallel",
    "max_output_chars": "max_output_chars",
    "bundled": "bundled_tools",
}

Untrusted = Callable[[ConfigFile], bool]  # asked about an untrusted project file: trust it now? False: skip it
Notify = Callable[[str], None]


def user_config_path(config_dir: Path) -> Path:
    return config_dir / "config.yaml"


def find_project_config(cwd: Path, notify: Notify | None = None) -> Path | None:
    """The first toolchat.yaml (or .toolchat.yaml) walking up from `cwd` that is safe to consider:
    one owned by another user, or in a folder others can write to, is passed over with a notice."""
    from toolchat.config.trust import unsafe_reason

    for folder in (cwd, *cwd.parents):
        for name in PROJECT_NAMES:
            candidate = folder / name
            if candidate.is_file():
                reason = unsafe_reason(candidate)
                if reason is None:
                    return candidate
                if notify is not None:
                    notify(f"ignoring {candidate}: {reason}")
    return None


def load_in(env: Any, config_path: Path | None, overrides: Mapping[str, Any], **options: Any) -> Settings:
    """`load` with the folders and variables of `env` (a toolchat.env.Environment)."""
    folders = dict(config_dir=env.config_dir, data_dir=env.data_dir, cwd=env.cwd, environ=env.environ)
    return load(config_path, overrides, **folders, **options)


def load(
    config_path: Path | None,
    overrides: Mapping[str, Any],
    *,
    config_dir: Path,
    data_dir: Path,
    cwd: Path,
    environ: Mapping[str, str],
    on_untrusted: Untrusted | None = None,
    check_trust: bool = True,
    notify: Notify | None = None,
) -> Settings:
    """Every file parsed and validated first; then trust (unless only showing); then the merge.
    Only showing, a project file not trusted yet is merged as written (no ${VAR} expanded)."""
    from toolchat.config.trust import TrustStore

    files = []
    user = user_config_path(config_dir)
    if user.is_file():
        files.append(load_file(user, environ))
    project_dir = cwd
    if config_path is not None:  # naming a file on the command line is consent, like --tools
        config_path = (cwd / config_path).resolve()
        if not config_path.is_file():
            raise ConfigError(f"config file not found: {config_path}")
        files.append(load_file(config_path, environ))
        project_dir = config_path.parent
    else:
        found = find_project_config(cwd, notify)
        if found is not None and found.resolve() != user.resolve():
            project = load_file(found, environ)
            store = TrustStore(data_dir)
            if not check_trust:
                files.append(project if store.is_trusted(project) else project.as_written())
                project_dir = found.parent
            elif store.require(project, on_untrusted):
                files.append(project)
                project_dir = found.parent
            elif notify is not None:
                notify(
                    f"going on without the project config {found} (not trusted; "
                    f"`toolchat config trust {found}` to use it)"
                )
    if check_trust:  # about to be used: a ${VAR} not set is said now
        for file in files:
            file.require_set()
    return resolve(files, overrides, project_dir, environ)


def resolve(files: list[ConfigFile], overrides: Mapping[str, Any], cwd: Path, environ: Mapping[str, str]) -> Settings:
    """Merge config files (later wins) and flags (win over all) into Settings."""
    settings = Settings(project_dir=cwd)
    chosen, chosen_from = overrides.get("profile"), "command line"
    for file in files:
        if not overrides.get("profile") and "profile" in file.data:
            chosen, chosen_from = file.data["profile"], file.at("profile")
    if chosen and not any(chosen in (f.data.get("profiles") or {}) for f in files):
        known = sorted({p for f in files for p in (f.data.get("profiles") or {})})
        where = f"{chosen_from}: " if chosen_from != "command line" else ""
        raise ConfigError(
            f"{where}no profile named '{chosen}'",
            f"profiles: {', '.join(known)}" if known else "no config defines profiles",
        )
    servers: dict[str, McpServerSpec] = {}
    for file in files:
        _apply_file(settings, file, chosen, servers, environ)
    settings.mcp_servers = [_with_cwd(spec, settings.project_dir) for spec in servers.values()]
    settings.profile = chosen
    if chosen:
        settings.origins["profile"] = chosen_from
    for key, value in overrides.items():
        if value is None or key == "profile" or value == []:
            continue
        if key in ("tool_paths", "allow", "deny"):  # flags add to what the config lists
            getattr(settings, key).extend(value)
        elif key == "mcp_servers":  # --mcp adds servers; one with a configured server's name replaces it
            flagged = {spec.name for spec in value}
            settings.mcp_servers = [spec for spec in settings.mcp_servers if spec.name not in flagged]
            settings.mcp_servers += [_with_cwd(spec, settings.project_dir) for spec in value]
        else:
            setattr(settings, key, value)
        settings.origins[key] = "command line"
    _apply_defaults(settings, environ)
    return settings


def _apply_file(
    settings: Settings,
    file: ConfigFile,
    profile: str | None,
    servers: dict[str, McpServerSpec],
    environ: Mapping[str, str],
) -> None:
    from toolchat.config.mcp_servers import specs

    base, data = file.folder, file.data
    sections: list[tuple[tuple[str, ...], dict[str, Any]]] = [((), data)]
    if profile in (data.get("profiles") or {}):
        sections.append((("profiles", profile), data["profiles"][profile]))
    for where, section in sections:
        for key in keys_of("profile"):
            if key in section and key != "tools":
                value = section[key]
                if key == "model" and str(value).endswith(".gguf"):
                    value = str((base / os.path.expanduser(value)).resolve())
                elif key in ("request_timeout", "response_timeout"):
                    value = float(value)
                _set(settings, key, value, file, (*where, key))
    if "trace" in data:
        _set(settings, "trace", (base / os.path.expanduser(data["trace"])).resolve(), file, ("trace",))
    tools = data.get("tools") or {}
    for key, name in _TOOL_KEYS.items():
        if key not in tools:
            continue
        value = tools[key]
        if key == "paths":
            value = settings.tool_paths + [(base / os.path.expanduser(p)).resolve() for p in value]
        elif key in ("allow", "deny"):
            value = getattr(settings, name) + list(value)
        elif key == "timeout":
            value = float(value)
        _set(settings, name, value, file, ("tools", key))
    for where, section in sections[1:]:  # a profile's tools.timeout and tools.parallel win over the file's own
        for key, name, kind in (("timeout", "tool_timeout", float), ("parallel", "tool_parallel", int)):
            if key in (section.get("tools") or {}):
                _set(settings, name, kind(section["tools"][key]), file, (*where, "tools", key))
    _apply_sandbox(settings, file)
    found, expansions = specs(file, environ)
    for spec in found:
        servers.pop(spec.name, None)  # a later file's entry of the same name wins, and comes last
        servers[spec.name] = spec
    if found:
        settings.origins["mcp_servers"] = file.at("mcp_servers")
    settings.secrets += secrets_of([*file.expansions, *expansions], found)
    settings.sources.append(file.path)


def _apply_sandbox(settings: Settings, file: ConfigFile) -> None:
    """The `sandbox` section: a later file's keys win; `write` and `network` add up."""
    section = file.data.get("sandbox") or {}
    box = settings.sandbox
    if "mode" in section:
        box.mode = section["mode"]
    if "required" in section:
        box.required = bool(section["required"])
    box.write += resolve_writes(list(section.get("write") or []), file.folder)
    box.network += [str(p) for p in section.get("network") or []]
    if section:
        settings.origins["sandbox"] = file.at("sandbox")


def _with_cwd(spec: McpServerSpec, project_dir: Path) -> McpServerSpec:
    if spec.type == "stdio" and spec.cwd is None:
        spec.cwd = project_dir
    return spec


def _set(settings: Settings, name: str, value: Any, file: ConfigFile, where: tuple[str, ...]) -> None:
    setattr(settings, name, value)
    settings.origins[name] = file.at(*where)


def _apply_defaults(settings: Settings, environ: Mapping[str, str]) -> None:
    """With no backend named: a base URL or an OpenAI key means OpenAI, else the bundled model."""
    if environ.get("OPENAI_API_KEY"):
        settings.secrets.append(environ["OPENAI_API_KEY"])
    if not settings.base_url and environ.get("OPENAI_BASE_URL"):
        settings.base_url = environ["OPENAI_BASE_URL"]
        settings.origins["base_url"] = "environment (OPENAI_BASE_URL)"
    if settings.backend is None:
        settings.backend = "openai" if settings.base_url or environ.get("OPENAI_API_KEY") else "local"
        settings.origins["backend"] = "default"
    if settings.backend == "local":
        for name, value in (
            ("model", defaults.LOCAL_MODEL),
            ("temperature", defaults.LOCAL_TEMPERATURE),
            ("max_tokens", defaults.LOCAL_MAX_TOKENS),
        ):
            if getattr(settings, name) is None:
                setattr(settings, name, value)
                settings.origins[name] = "default (local backend)"
    if settings.backend == "openai" and not settings.base_url and not settings.model:
        settings.model = defaults.OPENAI_MODEL
        settings.origins["model"] = "default"
