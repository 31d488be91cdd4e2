"""What crosses the wire to an OpenAI-compatible server, made safe both ways: text that cannot be
encoded as UTF-8 (lone surrogates from a server, from `os.listdir`'s surrogate escapes, from
undecodable input) becomes U+FFFD; message content in the shapes servers really send becomes
text; the SDK's objects and raw JSON bodies are read alike, keeping only values of the right type;
and a whole model call is bounded in time, however slowly the server trickles."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from typing import Any

from toolchat.backends.base import ToolCall, Usage, new_call_id
from toolchat.backends.bounded import wrap_transports
from toolchat.errors import BackendError, UsageError
from toolchat.safety import scrub, strict_json

__all__ = ["Deadline", "content_text", "scrub"]


def content_text(content: Any) -> str:
    """A message's `content` as text: a string, or a list of text parts ({"type": "text",
    "text": ...} or plain strings) joined; anything else is a BackendError."""
    if content is None:
        return ""
    if isinstance(content, str):
        return scrub(content)
    if isinstance(content, dict) and "text" in content:
        content = [content]  # one part on its own
    if isinstance(content, list):
        parts = []
        for part in content:
            text = part if isinstance(part, str) else _part_text(part)
            if text is None:
                raise BackendError(
                    f"the server sent a content part that is not text ({_kind(part)})",
                    "toolchat reads text answers only",
                )
            parts.append(text)
        return scrub("".join(parts))
    raise BackendError(
        f"the server sent content that is not text ({_kind(content)})", "is this an OpenAI-compatible server?"
    )


def _part_text(part: Any) -> str | None:
    get = part.get if isinstance(part, dict) else (lambda key: getattr(part, key, None))
    text = get("text")
    return text if get("type") in ("text", "output_text", None) and isinstance(text, str) else None


def _kind(value: Any) -> str:
    if isinstance(value, dict) and isinstance(value.get("type"), str):
        return repr(value["type"][:40])
    return type(value).__name__


class Deadline:
    """One bound in time for the model call under way: `deadline` is a time.monotonic() value, or
    None between calls. `bind` puts it in front of every transport of an httpx client (the direct
    one and those for the proxies the environment names), so a request, and each piece of its
    body, fails with the HTTP library's ReadTimeout once the deadline has passed: the read timeout
    alone never fires while a server sends a keep-alive comment every second."""

    def __init__(self) -> None:
        self.deadline: float | None = None
        self._timeout: type[Exception] = TimeoutError

    def expired(self) -> bool:
        return self.deadline is not None and time.monotonic() >= self.deadline

    def check(self) -> None:
        if self.expired():
            raise self._timeout("response_timeout reached")

    def bind(self, httpx: Any, client: Any) -> None:
        """Wrap `client`'s transports (`httpx` is the module of the SDK's HTTP library)."""
        self._timeout = httpx.ReadTimeout
        deadline = self

        class Checked(httpx.SyncByteStream):
            def __init__(self, inner: Any) -> None:
                self.inner = inner

            def __iter__(self) -> Iterator[bytes]:
                for part in self.inner:
                    deadline.check()
                    yield part

            def close(self) -> None:
                self.inner.close()

        class Bounded(httpx.BaseTransport):
            def __init__(self, inner: Any) -> None:
                self.inner = inner

            def handle_request(self, request: Any) -> Any:
                deadline.check()
                response = self.inner.handle_request(request)
                return httpx.Response(
                    response.status_code,
                    headers=response.headers,
                    stream=Checked(response.stream),
                    extensions=response.extensions,
                )

            def close(self) -> None:
                self.inner.close()

        wrap_transports(client, Bounded)


def untrusted_certificate(exc: BaseException) -> bool:
    """Whether the connection failed because a TLS certificate was not trusted."""
    import ssl

    seen: set[int] = set()
    cause: BaseException | None = exc
    while cause is not None and id(cause) not in seen:
        seen.add(id(cause))
        if isinstance(cause, ssl.SSLCertVerificationError) or "CERTIFICATE_VERIFY_FAILED" in str(cause):
            return True
        cause = cause.__cause__ or cause.__context__
    return False


def api_key(key: str | None, notify: Callable[[str], None]) -> str | None:
    """The key as given, minus the whitespace a `$(cat keyfile)` leaves (the user is told)."""
    if key is None:
        return None
    stripped = key.strip()
    if stripped != key:
        notify("note: the API key had spaces or a line break around it; using it without them")
    if any(c.isspace() for c in stripped) or not stripped.isascii():
        raise UsageError(
            "the API key holds spaces, line breaks or non-ASCII characters",
            "check OPENAI_API_KEY or api_key in the config",
        )
    return stripped or None


def tool_delta(delta: Any) -> dict[str, Any]:
    """A streamed tool-call delta as the accumulator's dict, keeping only values of the right type."""
    function = field(delta, "function")
    name, arguments = field(function, "name"), field(function, "arguments")
    call_id = field(delta, "id")
    return {
        "index": field(delta, "index"),
        "id": call_id if isinstance(call_id, str) else None,
        "function": {
            "name": name if isinstance(name, str) else None,
            "arguments": arguments if isinstance(arguments, (str, dict, list)) else None,
        },
    }


def field(value: Any, key: str) -> Any:
    """`value[key]` of a JSON object, or the attribute of the SDK's object; None if neither."""
    return value.get(key) if isinstance(value, dict) else getattr(value, key, None)


def whole_call(call: Any) -> ToolCall:
    function = field(call, "function")
    arguments = field(function, "arguments")
    if isinstance(arguments, (dict, list)):
        arguments = json.dumps(arguments, ensure_ascii=False)
    call_id, name = field(call, "id"), field(function, "name")
    return ToolCall(
        call_id if isinstance(call_id, str) and call_id else new_call_id(),
        name if isinstance(name, str) else "",
        arguments if isinstance(arguments, str) else "",
    )


def parseable_calls(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The messages with every call's arguments a JSON object in text, as servers that parse them
    need: arguments that are not one (a model's `{"city": Paris}`, answered as invalid arguments
    by the engine; "" for no arguments) go back as "{}". llama-server refuses the whole request
    (HTTP 500, "Failed to parse tool call arguments as JSON"), vLLM fails in `json.loads` and
    chat templates iterate the arguments' items, so a JSON-quoted string would pass the parse and
    break the template; OpenAI takes "{}" too. An object sent as an object (a `serve` client's) is
    written as JSON."""
    out = messages
    for index, message in enumerate(messages):
        calls = message.get("tool_calls") if message.get("role") == "assistant" else None
        if not isinstance(calls, list) or all(_sendable(call) for call in calls):
            continue
        if out is messages:
            out = list(messages)
        out[index] = {**message, "tool_calls": [call if _sendable(call) else _with_object(call) for call in calls]}
    return out


def _sendable(call: Any) -> bool:
    arguments = field(field(call, "function"), "arguments")
    if not isinstance(arguments, str) or not arguments.lstrip().startswith("{"):
        return False
    try:
        return isinstance(strict_json(arguments), dict)  # NaN and 1e999 are no JSON to a server
    except (ValueError, RecursionError):
        return False


def _with_object(call: Any) -> Any:
    function = field(call, "function")
    if not isinstance(call, dict) or not isinstance(function, dict):
        return call  # not a call a server would read either way: sent as it is, refused as it is
    arguments = function.get("arguments")
    text = json.dumps(arguments, ensure_ascii=False) if isinstance(arguments, dict) else "{}"
    return {**call, "function": {**function, "arguments": text}}


def usage_of(usage: Any) -> Usage:
    reasoning = field(field(usage, "completion_tokens_details"), "reasoning_tokens")
    return Usage(
        _count(field(usage, "prompt_tokens")),
        _count(field(usage, "completion_tokens")),
        _count(field(field(usage, "prompt_tokens_details"), "cached_tokens")),
        _count(reasoning),
    )


def _count(value: Any) -> int | None:
    """A count the server sent; None when it sent none (not reported is not zero)."""
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None
