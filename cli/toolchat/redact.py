"""Secrets never shown: every place that prints, stores or passes on text that could hold an API
key runs it through one Redactor. A server that echoes part of a key, or the key in another
case, is caught too: any 8 or more characters of a secret are hidden."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

WINDOW = 8  # this many characters of a secret in a row count as the secret
HIDDEN = "***"


class Redactor:
    def __init__(self, secrets: Iterable[str | None] = ()) -> None:
        self._grams: set[str] = set()
        self._short: set[str] = set()
        self._secrets: list[str] = []
        for secret in secrets:
            self.add(secret)

    def add(self, secret: str | None) -> None:
        secret = (secret or "").strip().lower()
        if len(secret) >= WINDOW:
            self._grams.update(secret[i : i + WINDOW] for i in range(len(secret) - WINDOW + 1))
        elif len(secret) >= 4:
            self._short.add(secret)
        else:
            return
        self._secrets.append(secret)

    def __bool__(self) -> bool:
        return bool(self._grams or self._short)

    def redact(self, text: str) -> str:
        """`text` with every run of 8+ characters found in a secret (any case) replaced by ***."""
        if not text or not self:
            return text
        return _hide(text, self.mask(text))

    def redact_all(self, value: Any) -> Any:
        """`value` (JSON: dicts, lists, strings) with every string in it, keys too, redacted."""
        if not self:
            return value
        if isinstance(value, str):
            return self.redact(value)
        if isinstance(value, dict):
            return {self.redact_all(k): self.redact_all(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [self.redact_all(v) for v in value]
        return value

    def mask(self, text: str) -> bytearray:
        """1 for each character of `text` that belongs to a secret, else 0."""
        lower = text.lower()
        hidden = bytearray(len(text))
        for i in range(len(lower) - WINDOW + 1):
            if lower[i : i + WINDOW] in self._grams:
                hidden[i : i + WINDOW] = b"\x01" * WINDOW
        for short in self._short:
            start = lower.find(short)
            while start >= 0:
                hidden[start : start + len(short)] = b"\x01" * len(short)
                start = lower.find(short, start + 1)
        return hidden

    def open_end(self, text: str) -> int:
        """How many characters at the end of `text` could be the start of a secret that the next
        piece of a stream completes: the longest such tail that is part of a secret."""
        lower = text.lower()
        for size in range(min(WINDOW - 1, len(lower)), 0, -1):
            if any(lower[-size:] in secret for secret in self._secrets):
                return size
        return 0


class StreamRedactor:
    """A Redactor for text that arrives in pieces (a streamed answer): what could still turn out
    to be part of a secret is held back until the next piece (or `flush`) decides, so a key cut
    across two pieces is hidden as it would be in one. Without secrets, pieces pass at once."""

    def __init__(self, redactor: Redactor) -> None:
        self.redactor = redactor
        self.pending = ""

    def feed(self, piece: str) -> str:
        if not self.redactor:
            return piece
        text = self.pending + piece
        hidden = self.redactor.mask(text)
        cut = len(text) - self.redactor.open_end(text)
        while cut > 0 and hidden[cut - 1]:  # a hidden run touching what is held back may grow
            cut -= 1
        self.pending = text[cut:]
        return _hide(text[:cut], hidden[:cut])

    def flush(self) -> str:
        """What is held back, redacted: at the end of the text."""
        rest, self.pending = self.pending, ""
        return self.redactor.redact(rest)


def _hide(text: str, hidden: bytearray) -> str:
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
