"""Asking an OpenAI-compatible server once how large its model's context window is.

The model listing and at most one native request (backends/window.py says which), each with a
short timeout and through the backend's own connection, so the key goes only where the chat
requests go. Any failure is quiet: the window stays unknown, never guessed."""

from __future__ import annotations

import json
from typing import Any

from toolchat.backends.window import window_of

LIMIT = 1_000_000  # bytes read of one answer: a listing or a model's properties


def probe_window(http: Any, api_key: str, base_url: str, model: str, timeout: float) -> int | None:
    """The window of `model` at `base_url`, asked through `http`, the httpx client the backend gave
    the openai SDK (its ceilings, TLS settings and proxies); None when unknown."""
    headers = {"Authorization": f"Bearer {api_key}"}

    def fetch(url: str, body: dict[str, Any] | None) -> Any:
        try:
            if body is None:
                response = http.get(url, headers=headers, timeout=timeout, follow_redirects=False)
            else:
                response = http.post(url, headers=headers, json=body, timeout=timeout, follow_redirects=False)
            if response.status_code != 200 or len(response.content) > LIMIT:
                return None
            return json.loads(response.content)
        except Exception:  # noqa: BLE001 - a probe that fails leaves the window unknown
            return None

    return window_of(base_url, model, fetch(f"{base_url}/models", None), fetch)
