"""A server error no retry can mend: a 500 (or 501) whose body says the request itself is at fault.

llama-server answers every exception its handlers raise with HTTP 500 (`"type": "server_error"`),
those the request caused too: a call sent back with arguments that are not JSON ("Failed to parse
tool call arguments as JSON"), tools without `--jinja` ("tools param requires --jinja flag"), a
chat template's `raise_exception` ("Conversation roles must alternate"), nlohmann's type errors
("[json.exception.type_error.302] type must be string, but is null"). The same request gets the
same answer, so the SDK's retries (a 5xx is retried `max_retries` times, with backoff) only delay
it: `bind` marks such a response `x-should-retry: false`, the header the SDK obeys, and the
refusal is said at once."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from toolchat.backends.bounded import wrap_transports

_AT_FAULT = re.compile(
    r"failed to (parse|apply)|(could|can)not parse|unable to parse|parse error|json\.exception|\binvalid\b|--jinja|"
    r"unsupported|not supported|does not support|cannot (specify|use|have)|roles must alternate|is required|"
    r"must (be|have|contain|match|alternate|not)\b|type must be|unknown (param|field|role|chat format)|"
    r"expected .{1,60} (but )?(got|found|is)\b",
    re.IGNORECASE,
)
_AT_FAULT_TYPES = ("invalid_request_error", "invalid_request", "bad_request", "BadRequestError")
READ_AT_MOST = 1024 * 1024  # an error body is a line or two; more is not read for this
# 500 and 501 are the server's answer to the request; 502, 503 and 504 say it (or the way to it) is
# not there now, whatever their words ("invalid response from upstream", "loading, must be ready")
REFUSING = (500, 501)


def refuses_the_request(body: Any) -> bool:
    """Whether an error body (decoded JSON, else text or None) says the request itself is at
    fault: typed as an invalid request, or in words servers use for one. Only a JSON body is
    the server's own word: a page that is not JSON comes from a proxy in front of it ("invalid
    response from upstream"), and a retry may find the server again."""
    if not isinstance(body, Mapping):
        return False
    error = body.get("error", body)
    if isinstance(error, Mapping):
        if str(error.get("type") or "") in _AT_FAULT_TYPES:
            return True
        error = error.get("message") or error.get("detail") or ""
    return isinstance(error, str) and _AT_FAULT.search(error) is not None


def refused(exc: BaseException | None) -> bool:
    """Whether the SDK's status error `exc` is a 5xx refusing the request: its response's body read
    again whole (the SDK's `body` keeps only the inside of `{"error": ...}`, and a text body the
    same way, so a proxy's page could not be told from a server's own words there)."""
    response = getattr(exc, "response", None)
    if getattr(response, "status_code", None) not in REFUSING:
        return False
    try:
        content = response.content
    except (AttributeError, RuntimeError):  # a body never read (httpx's ResponseNotRead)
        return False
    return isinstance(content, bytes) and refuses_the_request(_decoded(content[:READ_AT_MOST]))


def bind(httpx: Any, client: Any) -> None:
    """Put the check in front of every transport of `client` (outside the bounds of
    backends/bounded.py, so the body read here is already decoded and capped)."""

    class Refusals(httpx.BaseTransport):
        def __init__(self, inner: Any) -> None:
            self.inner = inner

        def handle_request(self, request: Any) -> Any:
            response = self.inner.handle_request(request)
            kind = response.headers.get("content-type", "").lower()
            if response.status_code not in REFUSING or "event-stream" in kind:
                return response
            try:
                content = _read(response.stream)
            finally:
                response.stream.close()
            headers = httpx.Headers(response.headers)
            if refuses_the_request(_decoded(content)):
                headers["x-should-retry"] = "false"
            headers.pop("content-length", None)
            return httpx.Response(
                response.status_code, headers=headers, content=content, extensions=response.extensions
            )

        def close(self) -> None:
            self.inner.close()

    wrap_transports(client, Refusals)


def _read(stream: Any) -> bytes:
    parts, size = [], 0
    for part in stream:
        parts.append(part)
        size += len(part)
        if size > READ_AT_MOST:
            break
    return b"".join(parts)


def _decoded(content: bytes) -> Any:
    text = content.decode("utf-8", errors="replace")
    try:
        return json.loads(text)
    except (ValueError, RecursionError):
        return text
