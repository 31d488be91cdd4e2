"""Pick and build the backend the settings name; heavy imports happen only here."""

from __future__ import annotations

from typing import Any, Mapping

from toolchat.backends.base import Backend
from toolchat.config import Settings
from toolchat.errors import UsageError


def create_backend(settings: Settings, environ: Mapping[str, str]) -> Backend:
    if settings.backend == "openai":
        from toolchat.backends.openai import OpenAIBackend

        return OpenAIBackend(settings, environ)
    if settings.backend == "local":
        raise UsageError("the local backend (GGUF in-process) is not built yet",
                         "use --base-url with an OpenAI-compatible server, or set OPENAI_API_KEY")
    raise UsageError(f"unknown backend '{settings.backend}'", "use openai or local")


def describe(settings: Settings) -> dict[str, Any]:
    return {"backend": settings.backend, "model": settings.model, "base_url": settings.base_url}
