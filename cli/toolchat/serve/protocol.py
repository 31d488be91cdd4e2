"""The HTTP/1.1 protocol `toolchat serve` speaks: uvicorn's (h11) with a deadline on each request's
headers. uvicorn alone times out only a keep-alive connection that stays silent; a client that
sends its request line and headers a byte at a time (or connects and sends nothing) would hold its
connection for ever, and a few hundred such clients every connection the server can take. Here a
request's headers must be whole within `header_timeout` seconds of the connection opening (or of
the previous response on it), else the connection is closed."""

from __future__ import annotations

import asyncio
from typing import Any

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol


def with_header_deadline(seconds: float) -> type[asyncio.Protocol]:
    """uvicorn's protocol class, its request headers bounded by `seconds`."""

    class HeaderDeadline(H11Protocol):
        _header_timer: asyncio.TimerHandle | None = None

        def connection_made(self, transport: Any) -> None:
            super().connection_made(transport)
            self._arm()

        def on_response_complete(self) -> None:
            super().on_response_complete()
            self._arm()  # the next request on this connection has as long for its headers

        def connection_lost(self, exc: Exception | None) -> None:
            if self._header_timer is not None:
                self._header_timer.cancel()
            super().connection_lost(exc)

        def _arm(self) -> None:
            if self._header_timer is not None:
                self._header_timer.cancel()
            if not self.transport.is_closing():
                self._header_timer = self.loop.call_later(seconds, self._late)

        def _late(self) -> None:
            self._header_timer = None
            if self.conn.their_state is h11.IDLE and not self.transport.is_closing():  # no whole request yet
                self.transport.close()

    return HeaderDeadline
