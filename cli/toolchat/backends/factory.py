"""Pick and build the backend the settings name; heavy imports happen only here. The rest of
toolchat never asks which kind of backend it has."""

from __future__ import annotations

from collections.abc import Callable

from toolchat.backends.base import Backend
from toolchat.config.settings import Settings
from toolchat.env import Environment
from toolchat.errors import UsageError

Notify = Callable[[str], None]


def create_backend(settings: Settings, env: Environment, notify: Notify | None = None) -> Backend:
    """The backend the settings name, ready to use (its model resolved)."""
    notify = notify or (lambda message: None)
    if settings.backend == "openai":
        from toolchat.backends.openai import OpenAIBackend

        return OpenAIBackend(settings, env.environ, notify, debug=env.debug)
    if settings.backend == "local":
        from toolchat.backends.local import LocalBackend

        return LocalBackend(settings, env.cache_dir, notify, debug=env.debug)
    raise _unknown(settings)


def list_models(settings: Settings, env: Environment, notify: Notify | None = None) -> list[str]:
    """Lines for `toolchat models`: what the endpoint serves, or the local model files (without
    loading one)."""
    notify = notify or (lambda message: None)
    if settings.backend == "openai":
        from toolchat.backends.openai import OpenAIBackend

        backend = OpenAIBackend(settings, env.environ, notify, resolve_model=False)
        try:
            return backend.list_models()
        finally:
            backend.close()
    if settings.backend == "local":
        from toolchat.backends.local import local_models

        return local_models(env.cache_dir, env.cwd)
    raise _unknown(settings)


def _unknown(settings: Settings) -> UsageError:
    return UsageError(f"unknown backend '{settings.backend}'", "use openai or local")
