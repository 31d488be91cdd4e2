"""Trust in project config files. A project's toolchat.yaml can run code (its tool folders and MCP
servers) and send your key to another base_url, so it is used only once trusted. Trust binds to
the folder its relative paths resolve against (the folder the file was found in, symlinks
resolved: a symlink elsewhere needs its own trust) and to the exact bytes that were parsed (an
edit needs trust again). Records live in the user data dir, 0600 in a 0700 folder."""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any

from toolchat.config.file import ConfigFile
from toolchat.config.keys import SECRET_KEYS, references_only
from toolchat.errors import ConfigError
from toolchat.files import atomic_write, private_folder, read_private


class TrustStore:
    def __init__(self, data_dir: Path) -> None:
        self.path = data_dir / "trusted.json"

    def _records(self) -> dict[str, str]:
        try:
            if self.path.parent.stat().st_mode & 0o077:  # an older toolchat left it readable by all
                private_folder(self.path.parent)  # (a shared folder keeps its mode)
            records = json.loads(read_private(self.path))  # made 0600; a FIFO there is refused
        except (OSError, ValueError):
            return {}
        return records if isinstance(records, dict) else {}

    def is_trusted(self, config: ConfigFile) -> bool:
        return self._records().get(key(config.path)) == config.digest

    def trust(self, config: ConfigFile) -> None:
        records = self._records()
        records[key(config.path)] = config.digest
        try:
            atomic_write(self.path, json.dumps(records, indent=2))
        except OSError as exc:  # a folder in its place, a shared folder, a full disk
            raise ConfigError(f"cannot write the trust records {self.path}: {exc.strerror or exc}") from None

    def require(self, config: ConfigFile, on_untrusted: Callable[[ConfigFile], bool] | None) -> bool:
        """True if `config` is trusted (or the user trusts it now); False if the user declines;
        with no one to ask, stop with exit 2 and the command to trust it."""
        if self.is_trusted(config):
            return True
        if on_untrusted is not None:
            if on_untrusted(config.as_written()):
                self.trust(config)
                return True
            return False
        changed = key(config.path) in self._records()
        state = "has changed since you trusted it" if changed else "is not trusted yet"
        raise ConfigError(
            f"the project config {config.path} {state}: a project config can run code (its tool folders "
            "and MCP servers) and send your API key to its base_url",
            f"review it, then run: toolchat config trust {config.path}",
        )


def key(path: Path) -> str:
    """The folder relative paths resolve against (symlinks in it resolved), and the file's name."""
    return str(path.parent.resolve() / path.name)


def unsafe_reason(path: Path) -> str | None:
    """Why a found config file must not be considered (like git's safe.directory), or None:
    owned by another user, or it or its folder writable by others."""
    if not hasattr(os, "getuid"):
        return None
    me = os.getuid()
    try:
        link, target, folder = os.lstat(path), os.stat(path), os.stat(path.parent)
    except OSError as exc:
        return f"cannot inspect it ({exc.strerror})"
    for info in (link, target):
        if info.st_uid != me:
            return f"it is owned by another user (uid {info.st_uid})"
    if target.st_mode & stat.S_IWOTH:
        return "other users can write to it"
    if folder.st_mode & stat.S_IWOTH:
        return f"it lies in a folder other users can write to ({path.parent})"
    return None


def summary(data: dict[str, Any], prefix: str = "") -> list[str]:
    """What a config sets, as written (no ${VAR} expanded), one line per value, secrets hidden;
    each MCP server as the command line or URL it would start or reach: shown before trusting it."""
    lines = []
    for key, value in data.items():
        if key == "mcp_servers" and not prefix:
            lines += _server_lines(value)
        elif key == "sandbox" and not prefix and isinstance(value, dict):
            lines += _sandbox_lines(value)
        elif isinstance(value, dict):
            lines += summary(value, f"{prefix}{key}.")
        else:
            lines.append(f"{prefix}{key}: {_secret(value) if key in SECRET_KEYS else written(value)}")
    return lines


def _secret(value: Any) -> str:
    """A secret key's value: a ${VAR} reference as written, a literal never."""
    return (references_only(value) if isinstance(value, str) else None) or "***"


def written(value: Any) -> str:
    """A value the way YAML writes it (`true`, not `True`; `[a, b]`; `null`)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, list):  # YAML's own flow style: `[a, b]`, quoting what needs it (`['*']`)
        import yaml

        return yaml.safe_dump(value, default_flow_style=True, allow_unicode=True, width=2**31).strip()
    return str(value)


_WIDENS = {
    "mode": "tools run with fewer limits",
    "write": "tools may write there",
    "network": "these tools may open TCP connections",
}


def _sandbox_lines(section: dict[str, Any]) -> list[str]:
    """The sandbox section, each key that widens what a tool may touch said so."""
    lines = []
    for key, value in section.items():
        widens = key in _WIDENS and value not in ("workspace", [], None)
        lines.append(f"sandbox.{key}: {written(value)}" + (f" (widens the sandbox: {_WIDENS[key]})" if widens else ""))
    return lines


def _server_lines(value: Any) -> list[str]:
    if isinstance(value, str):
        return [f"mcp_servers: the servers in {value}"]
    from toolchat.config.mcp_servers import spec_of
    from toolchat.config.schema import keys_of

    lines = []
    for name, entry in value.items():
        spec = spec_of(name, {k: v for k, v in entry.items() if k in keys_of("server")}, Path("."), "")
        hidden = [f"{key} {', '.join(entry[key])}" for key in ("env", "headers") if entry.get(key)]
        extra = f" (sets {'; '.join(hidden)})" if hidden else ""
        lines.append(
            f"mcp_servers.{name}: runs {spec.describe()}{extra}"
            if spec.type == "stdio"
            else f"mcp_servers.{name}: connects to {spec.describe()}{extra}"
        )
    return lines
