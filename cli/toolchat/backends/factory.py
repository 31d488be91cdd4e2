"""Pick and build the backend the settings name; heavy imports happen only here."""

from __future__ import annotations

from typing import Any, Callable

from toolchat.backends.base import Backend
from toolchat.config import Settings
from toolchat.env import Environment
from toolchat.errors import UsageError


def create_backend(settings: Settings, env: Environment, notify: Callable[[str], None] | None = None) -> Backend:
    if settings.backend == "openai":
        from toolchat.backends.openai import OpenAIBackend

        return OpenAIBackend(settings, env.environ)
    if settings.backend == "local":
        from toolchat.backends.local import LocalBackend

        return LocalBackend(settings, env.cache_dir, notify or (lambda message: None), debug=env.debug)
    raise UsageError(f"unknown backend '{settings.backend}'", "use openai or local")


def describe(settings: Settings) -> dict[str, Any]:
    return {"backend": settings.backend, "model": settings.model, "base_url": settings.base_url}
