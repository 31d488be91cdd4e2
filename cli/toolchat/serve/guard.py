"""The door of `toolchat serve`, before any route: the API key when one is set; without one (on
loopback only), requests must be addressed to this machine and come from no other site's web
page, so a page in the user's browser can neither make the server run tools (a cross-site POST)
nor read from it (DNS rebinding). POST bodies must say they are JSON, which no cross-site form or
`fetch` can send without the browser asking first (and it is never allowed)."""

from __future__ import annotations

import hmac
import ipaddress
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from toolchat.serve.api import ApiError

OPEN_PATHS = ("/health",)  # for load balancers' health checks


def refusal(scope: dict[str, Any], api_key: str | None) -> ApiError | None:
    """Why this request may not go on, or None."""
    headers = {name.decode("latin-1").lower(): value.decode("latin-1") for name, value in scope["headers"]}
    if api_key and scope["path"] not in OPEN_PATHS:
        given = headers.get("authorization", "")
        if not hmac.compare_digest(given.encode("utf-8"), f"Bearer {api_key}".encode()):
            return ApiError(
                401,
                "a valid API key is required: send 'Authorization: Bearer KEY'",
                kind="invalid_request_error",
                code="invalid_api_key",
            )
    if not api_key:
        if not _local(headers.get("host")):
            return ApiError(
                403,
                "this server answers only requests addressed to this machine (Host: 127.0.0.1 "
                "or localhost); to serve others, listen on their address with --api-key-env",
                code="forbidden_host",
            )
        origin = headers.get("origin")  # sent by browsers; "null" from sandboxed pages and files
        if origin is not None and (origin == "null" or not _local(_netloc(origin))):
            return ApiError(403, "requests from other sites' web pages are refused", code="forbidden_origin")
    if (
        scope["method"] == "POST"
        and headers.get("content-type", "").split(";")[0].strip().lower() != "application/json"
    ):
        return ApiError(
            415, "send the body as JSON, with 'Content-Type: application/json'", code="unsupported_media_type"
        )
    return None


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _netloc(url: str) -> str | None:
    try:
        return urlsplit(url).netloc
    except ValueError:  # "http://[": no address at all, so not this machine's
        return None


def _local(netloc: str | None) -> bool:
    if not netloc:
        return False
    try:
        host = urlsplit("//" + netloc).hostname
    except ValueError:
        return False
    return host is not None and is_loopback(host) and _port_ok(netloc)


def _port_ok(netloc: str) -> bool:
    try:
        urlsplit("//" + netloc).port  # noqa: B018 - "host:99999" raises here
    except ValueError:
        return False
    return True


class Guard:
    """ASGI middleware: a refused request is answered here, in OpenAI's error shape."""

    def __init__(self, app: Any, api_key: str | None, answer: Callable[[ApiError], Any]) -> None:
        self.app, self.api_key, self.answer = app, api_key, answer

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            error = refusal(scope, self.api_key)
            if error is not None:
                await self.answer(error)(scope, receive, send)
                return
        await self.app(scope, receive, send)
