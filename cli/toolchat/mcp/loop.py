"""The one event-loop thread that owns every MCP session for its whole life. The SDK's sessions must
be opened and closed on the same task ("cancel scope in a different task" otherwise), so each server
has an owner task here and every other thread only submits coroutines and waits for their results."""

from __future__ import annotations

import asyncio
import sys
import threading
from concurrent.futures import Future
from typing import Any, Awaitable, Callable, Coroutine, TypeVar

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
        """Run `coroutine` on the loop; with OpenTelemetry in use, in the caller's trace context so
        the SDK's client spans nest under the caller's `execute_tool` span."""
        return asyncio.run_coroutine_threadsafe(_in_context(coroutine, _trace_context()), self.loop)

    def stop(self, timeout: float = 1.0) -> None:
        if self.loop.is_closed():
            return
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout)


def _trace_context() -> Any:
    """The caller's OpenTelemetry context, only if toolchat's tracing has already imported it."""
    if "opentelemetry.context" not in sys.modules:
        return None
    return sys.modules["opentelemetry.context"].get_current()


async def _in_context(coroutine: Awaitable[T], context: Any) -> T:
    if context is None:
        return await coroutine
    otel: Any = sys.modules["opentelemetry.context"]
    token = otel.attach(context)
    try:
        return await coroutine
    finally:
        otel.detach(token)


def wait(future: Future[T], timeout: float | None, on_interrupt: Callable[[], None] | None = None) -> T:
    """The result of `future`, waiting at most `timeout` seconds (TimeoutError after). Ctrl-C
    cancels the coroutine (the SDK then cancels its request) before it propagates."""
    try:
        return future.result(timeout)
    except KeyboardInterrupt:
        future.cancel()
        if on_interrupt is not None:
            on_interrupt()
        raise
