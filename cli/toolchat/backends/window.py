"""How large a remote model's context window is, read from what its server says about itself.

One listing (`/v1/models`, which the backend reads anyway to pick a model) and at most one more
request, chosen by what the listing tells of the server:
- vLLM and SGLang: `max_model_len` on the model's entry; OpenRouter: `context_length`.
- llama-server: `n_ctx` of the running slots from `/props` at the server root (its runtime size,
  not the model's `n_ctx_train`).
- Ollama: `context_length` of the loaded model from `/api/ps`, else `num_ctx` in the parameters
  of `/api/show` (never the model's trained length: Ollama runs it with `num_ctx`, 4,096 by default
  on small GPUs).
- LM Studio: `loaded_context_length`, else `max_context_length`, from `/api/v0/models/MODEL`.
Unknown stays unknown (None): no window is guessed."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import urlsplit, urlunsplit

# fetch(url, json_body_or_None) -> the decoded JSON body, or None on any failure (bounded, quiet)
Fetch = Callable[[str, "dict[str, Any] | None"], Any]

_SANE = range(256, 100_000_001)  # a window outside this is a server's mistake, not a window


def window_of(base_url: str, model: str, listing: Any, fetch: Fetch) -> int | None:
    """The context window of `model` at `base_url`, from the `/v1/models` `listing` and at most
    one more request through `fetch`; None when the server does not say."""
    entry = _entry(listing, model)
    for key in ("max_model_len", "context_length", "max_context_length"):
        found = _tokens(entry.get(key))
        if found is not None:
            return found
    owner = str(entry.get("owned_by") or "").lower()
    root = _root(base_url)
    if owner == "llamacpp" or "n_ctx_train" in (entry.get("meta") or {}):
        return _llama_server(fetch(f"{root}/props", None))
    if owner in ("library", "ollama") or _looks_like_ollama(base_url):
        return _ollama(fetch, root, model)
    if owner == "organization_owner" or "lmstudio" in owner:
        return _lm_studio(fetch(f"{root}/api/v0/models/{model}", None))
    return None


def _entry(listing: Any, model: str) -> Mapping[str, Any]:
    data = listing.get("data") if isinstance(listing, Mapping) else None
    entries = [e for e in data if isinstance(e, Mapping)] if isinstance(data, list) else []
    for entry in entries:
        if entry.get("id") == model:
            return entry
    return entries[0] if len(entries) == 1 else {}


def _root(base_url: str) -> str:
    """The server's root: `http://host:8000/v1` -> `http://host:8000` (native APIs live there)."""
    parts = urlsplit(base_url.rstrip("/"))
    path = parts.path[: -len("/v1")] if parts.path.endswith("/v1") else parts.path
    return urlunsplit((parts.scheme, parts.netloc, path, "", "")).rstrip("/")


def _looks_like_ollama(base_url: str) -> bool:
    return urlsplit(base_url).port == 11434


def _llama_server(props: Any) -> int | None:
    if not isinstance(props, Mapping):
        return None
    settings = props.get("default_generation_settings")
    n_ctx = settings.get("n_ctx") if isinstance(settings, Mapping) else None
    return _tokens(n_ctx if n_ctx is not None else props.get("n_ctx"))


def _ollama(fetch: Fetch, root: str, model: str) -> int | None:
    running = fetch(f"{root}/api/ps", None)
    models = running.get("models") if isinstance(running, Mapping) else None
    for loaded in models if isinstance(models, list) else []:
        if isinstance(loaded, Mapping) and model in (loaded.get("name"), loaded.get("model")):
            found = _tokens(loaded.get("context_length"))
            if found is not None:
                return found
    return None


def _lm_studio(info: Any) -> int | None:
    if not isinstance(info, Mapping):
        return None
    for key in ("loaded_context_length", "max_context_length"):
        found = _tokens(info.get(key))
        if found is not None:
            return found
    return None


def _tokens(value: Any) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int):
        return None
    return value if value in _SANE else None
