"""Trust in project config files, by path and content: a project's toolchat.yaml can run code
(its tool folders) and send your key to another base_url, so it is used only once trusted, and
an edited file needs trust again. Records live in the user data dir."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Callable

from toolchat.config_file import ConfigFile
from toolchat.errors import ConfigError


class TrustStore:
    def __init__(self, data_dir: Path) -> None:
        self.path = data_dir / "trusted.json"

    def _records(self) -> dict[str, str]:
        try:
            records = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        return records if isinstance(records, dict) else {}

    def is_trusted(self, config: Path) -> bool:
        return self._records().get(str(config.resolve())) == digest(config)

    def trust(self, config: Path) -> None:
        records = self._records()
        records[str(config.resolve())] = digest(config)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        temporary = self.path.with_suffix(".tmp")
        temporary.write_text(json.dumps(records, indent=2), encoding="utf-8")
        os.replace(temporary, self.path)

    def require(self, config: ConfigFile, on_untrusted: Callable[[ConfigFile], bool] | None) -> None:
        """Return if `config` is trusted (or the user trusts it now); else stop with exit 2."""
        if self.is_trusted(config.path):
            return
        if on_untrusted is not None and on_untrusted(config):
            self.trust(config.path)
            return
        changed = str(config.path.resolve()) in self._records()
        state = "has changed since you trusted it" if changed else "is not trusted yet"
        raise ConfigError(
            f"the project config {config.path} {state}: a project config can run code (its tool folders) "
            "and send your API key to its base_url",
            f"review it, then run: toolchat config trust {config.path}")


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()
