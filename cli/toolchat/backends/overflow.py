"""A refusal because the conversation does not fit the model's context window, recognised in
every shape servers send it, with the numbers they give:
- OpenAI (and DeepSeek, OpenRouter): `code: context_length_exceeded`, "This model's maximum
  context length is 8192 tokens. However, your messages resulted in 9000 tokens."
- vLLM: 400, the same words ("... is 6000 tokens. However, you requested 7000 tokens (6500 in the
  messages, 500 in the completion)"), newer ones with `param: input_tokens`.
- llama-server: `type: exceed_context_size_error` with `n_prompt_tokens` and `n_ctx`.
- others in words: "prompt is too long: 9000 tokens > 8192 maximum", "too large for model with
  8192 maximum context length", "exceeds the context window", "context length exceeded"."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

_WORDS = re.compile(
    r"context[ _-]?(length|window|size)[ _-]?(exceeded|is exceeded)|maximum context length|exceeds? the "
    r"(available )?context|prompt is too long|too large for model with \d+ maximum context|"
    r"exceed_context_size|context_length_exceeded|input tokens exceed|reduce the length of the messages",
    re.IGNORECASE,
)
_WINDOW = (
    re.compile(r"maximum context length is (\d[\d,]*)", re.IGNORECASE),
    re.compile(r"(\d[\d,]*) maximum context length", re.IGNORECASE),
    re.compile(r"> ?(\d[\d,]*) maximum", re.IGNORECASE),
    re.compile(r"context (?:window|length|size) (?:is|of) (\d[\d,]*)", re.IGNORECASE),
)
_PROMPT = (
    re.compile(r"your (?:messages|prompt|request) (?:resulted in|has|contains) (\d[\d,]*)", re.IGNORECASE),
    re.compile(r"\((\d[\d,]*) in the messages", re.IGNORECASE),
    re.compile(r"prompt is too long: (\d[\d,]*) tokens", re.IGNORECASE),
    re.compile(r"prompt contains (\d[\d,]*) tokens", re.IGNORECASE),
)


@dataclass(frozen=True)
class Overflow:
    """The server said the conversation does not fit; what it said of the sizes, where it did."""

    window: int | None = None  # the context window, in tokens
    prompt_tokens: int | None = None  # what the refused request counted


def recognise(body: Any, message: str = "") -> Overflow | None:
    """An Overflow when an error `body` (the decoded JSON of the refusal, or None) or its `message`
    says the context window was exceeded; None for any other refusal."""
    error = body.get("error", body) if isinstance(body, Mapping) else {}
    error = error if isinstance(error, Mapping) else {"message": str(error)}
    text = " ".join(str(error.get(key) or "") for key in ("message", "type", "code")) + " " + message
    structured = error.get("code") == "context_length_exceeded" or error.get("type") == "exceed_context_size_error"
    if not structured and not _WORDS.search(text):
        return None
    window = _count(error.get("n_ctx")) or _first(_WINDOW, text)
    prompt = _count(error.get("n_prompt_tokens")) or _first(_PROMPT, text)
    return Overflow(window, prompt)


def _first(patterns: tuple[re.Pattern[str], ...], text: str) -> int | None:
    for pattern in patterns:
        match = pattern.search(text)
        if match:
            return _count(int(match.group(1).replace(",", "")))
    return None


def _count(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and 0 < value < 10**9 else None
