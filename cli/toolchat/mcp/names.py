"""The names MCP tools are offered to the model under: `SERVER__TOOL`, made to fit what every model
API accepts (`^[a-zA-Z0-9_-]{1,64}$`). The server is always called with the tool's own name."""

from __future__ import annotations

import hashlib
import re

LIMIT = 64
SEPARATOR = "__"
_OUTSIDE = re.compile(r"[^a-zA-Z0-9_-]")


def sanitise(text: str) -> str:
    """`text` with every character a model API refuses replaced by `_` (never empty)."""
    return _OUTSIDE.sub("_", text) or "_"


def offered_name(server: str, tool: str) -> str:
    """`SERVER__TOOL`, sanitised; a name that had to change or is too long ends in a short hash of
    the original, so two tools whose names differ only in refused characters stay apart."""
    original = f"{server}{SEPARATOR}{tool}"
    name = f"{sanitise(server)}{SEPARATOR}{sanitise(tool)}"
    if name == original and len(name) <= LIMIT:
        return name
    digest = hashlib.sha1(original.encode("utf-8", "surrogatepass")).hexdigest()[:8]
    return f"{name[: LIMIT - len(digest) - 1]}_{digest}"
