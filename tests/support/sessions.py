"""A REPL session in-process (no terminal), for tests of what its commands and turns do to the
conversation and the session file."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console

from toolchat.config.settings import Settings
from toolchat.env import Environment
from toolchat.terminal.session import ReplOptions, ReplSession
from toolchat.tools import discover

REGISTRY = discover([])


def env_for(tmp_path: Path) -> Environment:
    return Environment(
        cwd=tmp_path,
        environ={"TOOLCHAT_DATA_DIR": str(tmp_path / "data"), "TOOLCHAT_CONFIG_DIR": str(tmp_path / "config")},
        tty_path=None,
    )


def make_chat(
    tmp_path: Path, backend, options: ReplOptions | None = None, settings: Settings | None = None
) -> ReplSession:
    env = env_for(tmp_path)
    settings = settings or Settings(backend="openai", model="m", project_dir=tmp_path)
    return ReplSession(
        env,
        settings,
        REGISTRY,
        backend,
        options or ReplOptions(),
        Console(record=True, width=120),
        reload=lambda profile, model: (settings, backend),
    )
