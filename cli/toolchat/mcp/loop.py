"""The one event-loop thread that owns every MCP session for its whole life. The SDK's sessions must
be opened and closed on the same task ("cancel scope in a different task" otherwise), so each server
has an owner task here and every other thread only submits coroutines and waits for their results."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine
from concurrent.futures import Future
from typing import Any, TypeVar

T = TypeVar("T")


class LoopThread:
    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        # a daemon: a thread that never ends can never keep toolchat from exiting
        self._thread = threading.Thread(target=self._run, name="toolchat-mcp", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_forever()

    def submit(self, coroutine: Coroutine[Any, Any, T]) -> Future[T]:
        """Run `coroutine` on the loop. It runs in a copy of the caller's context variables (asyncio's
        handles copy them in the calling thread), so with tracing on, the SDK's client spans nest
        under the caller's `execute_tool` span (tests/test_mcp_source.py proves it)."""
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop)

    def stop(self, timeout: float = 1.0) -> None:
        if self.loop.is_closed():
            return
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout)


def wait(future: Future[T], timeout: float | None) -> T:
    """The result of `future`, waiting at most `timeout` seconds (TimeoutError after). Ctrl-C
    cancels the coroutine (the SDK then tells the server the request is cancelled) and propagates."""
    try:
        return future.result(timeout)
    except KeyboardInterrupt:
        future.cancel()
        raise
