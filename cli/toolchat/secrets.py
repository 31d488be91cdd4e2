"""Secrets never shown: every place that prints, stores or passes on text that could hold an API
key runs it through one Redactor. A server that echoes part of a key, or the key in another
case, is caught too: any 8 or more characters of a secret are hidden."""

from __future__ import annotations

from typing import Any, Iterable, Mapping

WINDOW = 8  # this many characters of a secret in a row count as the secret
HIDDEN = "***"


class Redactor:
    def __init__(self, secrets: Iterable[str | None] = ()) -> None:
        self._grams: set[str] = set()
        self._short: set[str] = set()
        for secret in secrets:
            self.add(secret)

    def add(self, secret: str | None) -> None:
        secret = (secret or "").strip().lower()
        if len(secret) >= WINDOW:
            self._grams.update(secret[i:i + WINDOW] for i in range(len(secret) - WINDOW + 1))
        elif len(secret) >= 4:
            self._short.add(secret)

    def __bool__(self) -> bool:
        return bool(self._grams or self._short)

    def redact(self, text: str) -> str:
        """`text` with every run of 8+ characters found in a secret (any case) replaced by ***."""
        if not text or not self:
            return text
        lower = text.lower()
        hidden = bytearray(len(text))
        for i in range(len(lower) - WINDOW + 1):
            if lower[i:i + WINDOW] in self._grams:
                hidden[i:i + WINDOW] = b"\x01" * WINDOW
        for short in self._short:
            start = lower.find(short)
            while start >= 0:
                hidden[start:start + len(short)] = b"\x01" * len(short)
                start = lower.find(short, start + 1)
        if not any(hidden):
            return text
        out: list[str] = []
        i = 0
        while i < len(text):
            if hidden[i]:
                while i < len(text) and hidden[i]:
                    i += 1
                out.append(HIDDEN)
            else:
                out.append(text[i])
                i += 1
        return "".join(out)


def redactor_for(settings: Any, environ: Mapping[str, str]) -> Redactor:
    """Every secret these settings know (the config's own list, the key in force, OPENAI_API_KEY)."""
    made = getattr(settings, "redactor", None)
    redactor = made() if callable(made) else Redactor()
    redactor.add(getattr(settings, "api_key", None))
    redactor.add(environ.get("OPENAI_API_KEY"))
    return redactor
