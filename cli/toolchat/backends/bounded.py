"""What a model server may make toolchat hold in memory, bounded: the decoded body of one reply,
and one event of a stream. A hostile server streaming 2 GB of gzip'd zeros (2 MB on the wire),
or one 300 MB SSE line without a newline, is stopped at the ceiling with one line instead of
taking the machine's memory.

The body is decoded here, in pieces of at most DECODE_PIECE bytes (zlib's `max_length`), not by
the HTTP library, which inflates a whole network chunk at once; only gzip and deflate are asked
for, and a body in any other encoding is refused."""

from __future__ import annotations

import zlib
from collections.abc import Iterator
from typing import Any

from toolchat.errors import BackendError

MB = 1024 * 1024
BODY_LIMIT = 64 * MB  # one reply, decoded: a whole JSON body or a whole stream
EVENT_LIMIT = 16 * MB  # one SSE event (or line) of a stream
DECODE_PIECE = 1 * MB
ACCEPTED = "gzip, deflate"
_EVENT_ENDS = (b"\n\n", b"\r\n\r\n", b"\r\r")


class TooLarge(BackendError):
    """The server sent more than a ceiling allows."""


def too_large(exc: BaseException | None) -> TooLarge | None:
    """The TooLarge behind `exc` (the SDK wraps what a body read raises), if any."""
    seen = 0
    while exc is not None and seen < 10:
        if isinstance(exc, TooLarge):
            return exc
        exc, seen = exc.__cause__ or exc.__context__, seen + 1
    return None


def bind(httpx: Any, client: Any) -> None:
    """Put the bounds in front of every transport of `client` (as wire.Deadline does), and ask
    for gzip or deflate only."""
    client.headers["Accept-Encoding"] = ACCEPTED
    stream_type = type("BoundedStream", (_Stream, httpx.SyncByteStream), {})

    class Bounded(httpx.BaseTransport):
        def __init__(self, inner: Any) -> None:
            self.inner = inner

        def handle_request(self, request: Any) -> Any:
            response = self.inner.handle_request(request)
            headers = httpx.Headers(response.headers)
            codings = [c.strip().lower() for c in headers.get("content-encoding", "").split(",")]
            codings = [c for c in codings if c and c != "identity"]
            if any(c not in ("gzip", "x-gzip", "deflate") for c in codings):
                response.close()
                raise TooLarge(
                    f"the server sent its reply encoded as {', '.join(codings)[:40]}, which toolchat does not read",
                    f"toolchat asks for {ACCEPTED} only",
                )
            for name in ("content-encoding", "content-length"):  # what follows is the decoded body
                headers.pop(name, None)
            events = "text/event-stream" in headers.get("content-type", "").lower()
            return httpx.Response(
                response.status_code,
                headers=headers,
                stream=stream_type(httpx, response.stream, codings, events),
                extensions=response.extensions,
            )

        def close(self) -> None:
            self.inner.close()

    wrap_transports(client, Bounded)


def wrap_transports(client: Any, wrapper: Any) -> None:
    """Put `wrapper` around every transport of an httpx client: its own and each proxy mount's (httpx
    keeps both; a client built with transport= would ignore the user's proxies)."""
    client._transport = wrapper(client._transport)
    client._mounts = {
        pattern: None if transport is None else wrapper(transport) for pattern, transport in client._mounts.items()
    }


class _Stream:
    """The body decoded and counted: TooLarge past BODY_LIMIT in all, or EVENT_LIMIT in one event."""

    def __init__(self, httpx: Any, inner: Any, codings: list[str], events: bool) -> None:
        self.httpx, self.inner, self.events = httpx, inner, events
        self.inflaters = [_Inflater(c, httpx.DecodingError) for c in reversed(codings)]
        self.total = 0
        self.open_event = 0  # bytes since the last end of an event
        self.tail = b""

    def __iter__(self) -> Iterator[bytes]:
        for raw in self.inner:
            for piece in self._decoded(raw, 0):
                self._count(piece)
                yield piece
        for piece in self._flushed(0):
            self._count(piece)
            yield piece

    def _decoded(self, data: bytes, level: int) -> Iterator[bytes]:
        if level == len(self.inflaters):
            if data:
                yield data
            return
        for out in self.inflaters[level].feed(data):
            yield from self._decoded(out, level + 1)

    def _flushed(self, level: int) -> Iterator[bytes]:
        if level == len(self.inflaters):
            return
        yield from self._decoded(self.inflaters[level].flush(), level + 1)
        yield from self._flushed(level + 1)

    def _count(self, piece: bytes) -> None:
        self.total += len(piece)
        if self.total > BODY_LIMIT:
            raise TooLarge(
                f"the server sent more than {BODY_LIMIT // MB} MB in one reply (decoded)",
                "is this an OpenAI-compatible server? toolchat reads no more of it",
            )
        if not self.events:
            return
        seen = self.tail + piece
        ends = [seen.rfind(end) + len(end) for end in _EVENT_ENDS if seen.rfind(end) >= 0]
        self.open_event = len(seen) - max(ends) if ends else self.open_event + len(piece)
        self.tail = seen[-3:]
        if self.open_event > EVENT_LIMIT:
            raise TooLarge(
                f"the server sent more than {EVENT_LIMIT // MB} MB in one line of its stream",
                "is this an OpenAI-compatible server? toolchat reads no more of it",
            )

    def close(self) -> None:
        self.inner.close()


class _Inflater:
    """gzip or deflate (zlib-wrapped, or raw as some servers send it), DECODE_PIECE at a time."""

    def __init__(self, coding: str, error: type[Exception]) -> None:
        self.gzip = coding in ("gzip", "x-gzip")
        self.error = error
        self.obj = zlib.decompressobj(zlib.MAX_WBITS | 16 if self.gzip else zlib.MAX_WBITS)
        self.started = False

    def feed(self, data: bytes) -> Iterator[bytes]:
        while not self.obj.eof:
            try:
                out = self.obj.decompress(data, DECODE_PIECE)
            except zlib.error as exc:
                if self.gzip or self.started:
                    raise self.error(f"the body is not valid {'gzip' if self.gzip else 'deflate'}: {exc}") from None
                self.obj = zlib.decompressobj(-zlib.MAX_WBITS)  # raw deflate, without the zlib header
                self.started = True
                continue
            self.started = True
            data = self.obj.unconsumed_tail
            if out:
                yield out
            if not data and len(out) < DECODE_PIECE:  # all input taken, no output pending
                return

    def flush(self) -> bytes:
        try:
            return self.obj.flush()
        except zlib.error as exc:
            raise self.error(str(exc)) from None
