"""One MCP server's life, on the MCP loop thread: start (bounded by `startup_timeout`), list its tools,
call them, notice `tools/list_changed`, and stop (bounded). The session is entered and left by one
owner task; calls run as their own tasks on the same loop."""

from __future__ import annotations

import asyncio
import shutil
import socket
import time
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import IO, Any

from toolchat.config.mcp_spec import McpServerSpec
from toolchat.files import scratch_folder
from toolchat.mcp import launch, logs
from toolchat.redact import Redactor

STOP_TIMEOUT = 3.0  # the longest a server may take to stop, hung or not
# what a stdio server is given of toolchat's environment; anything else only when named in `env`
MINIMAL_ENV = ("PATH", "HOME", "USER", "LOGNAME", "SHELL", "TERM", "LANG", "TMPDIR")


class State(str, Enum):
    STARTING = "starting"
    READY = "ready"
    FAILED = "failed"
    STOPPED = "stopped"


class ServerGone(Exception):
    """The server's connection closed (it exited or crashed)."""


@dataclass
class Server:
    spec: McpServerSpec
    project_dir: Path
    environ: Mapping[str, str]
    log_path: Path
    redactor: Redactor
    state: State = State.STARTING
    error: str | None = None
    started: float | None = None  # time.time() when it became ready
    tools: list[Any] = field(default_factory=list)  # the SDK's Tool models, as listed
    restarts: int = 0
    died: bool = False  # its connection closed while in use; restarted on the next call
    stale: bool = False  # it said its tools changed; listed again before the next model call
    client: Any = None
    http_status: int | None = None  # the last HTTP status a Streamable HTTP server answered with
    garbled: str | None = None  # what was wrong with a line on its stdout that is not JSON-RPC
    _task: asyncio.Task[None] | None = None
    _up: asyncio.Event | None = None
    _stop: asyncio.Event | None = None
    _tmpdir: str = ""  # a sandboxed stdio server's temporary folder, removed once it has stopped

    @property
    def name(self) -> str:
        return self.spec.name

    # -- start and stop ---------------------------------------------------------------------------
    async def start(self) -> None:
        """Start the server and list its tools; on failure `state` is FAILED with the reason."""
        self.state, self.error, self.died, self.stale, self.tools = State.STARTING, None, False, False, []
        self.http_status = self.garbled = None
        self._up, self._stop = asyncio.Event(), asyncio.Event()
        if self.spec.unset is not None:  # its entry needs a variable that is not set: nothing to start
            self._fail(self.spec.unset)
            return
        self._task = asyncio.get_running_loop().create_task(self._own())
        try:
            await asyncio.wait_for(self._up.wait(), self.spec.startup_timeout)
        except asyncio.TimeoutError:
            said = f" (it wrote what is not MCP to stdout: {self.garbled})" if self.garbled else ""
            self._fail(f"it did not finish starting within {self.spec.startup_timeout:g} s{said}")
            await self._end_task(cancel=True)

    async def stop(self) -> None:
        """Close the session; the SDK closes stdin, then ends the process group. Bounded."""
        if self._stop is not None:
            self._stop.set()
        await self._end_task(cancel=self.state is not State.READY)  # one still starting waits for nothing
        if self.state is State.READY:
            self.state = State.STOPPED

    async def _end_task(self, cancel: bool = False) -> None:
        task = self._task
        if task is None or task.done():
            return
        if cancel:  # stuck in the handshake: the SDK's shutdown still runs, shielded and bounded
            task.cancel()
        try:
            await asyncio.wait_for(asyncio.shield(task), STOP_TIMEOUT)
        except asyncio.TimeoutError:
            task.cancel()
            await asyncio.wait({task}, timeout=0.5)

    async def _own(self) -> None:
        assert self._up is not None and self._stop is not None
        log = logs.open_log(self.log_path, self.spec.describe(), append=self.restarts > 0)
        try:
            async with self._client(log) as client:
                self.client = client
                await self.list_tools()
                listener = self._listen_for_changes(client)
                self.state, self.started = State.READY, time.time()
                self._up.set()
                try:
                    await self._stop.wait()
                finally:  # the listen stream ends before the session it runs on
                    if listener is not None:
                        listener.cancel()
                        await asyncio.wait({listener}, timeout=0.5)
        except asyncio.CancelledError:
            pass  # start-up ran out of time (already recorded) or toolchat is stopping
        except Exception as exc:  # noqa: BLE001 - whatever a server does wrong is one line for the user, never a crash
            if self.state is State.STARTING:
                self._fail(describe_error(exc))
            else:
                self.died, self.error = True, describe_error(exc)
        finally:
            if self.state is State.STARTING:
                self._fail("it was stopped before it finished starting")
            self.client = None
            log.close()
            if self._tmpdir:  # the server (and its process group) has ended: nothing else removes it
                shutil.rmtree(self._tmpdir, ignore_errors=True)
                self._tmpdir = ""
            self._up.set()

    def _fail(self, reason: str) -> None:
        if self.http_status in (401, 403):  # the SDK says only "Server returned an error response"
            reason = f"{reason} (HTTP {self.http_status}: check its headers, such as a token)"
        elif self.http_status is not None and self.http_status >= 400:
            reason = f"{reason} (HTTP {self.http_status})"
        self.state, self.error = State.FAILED, self.redactor.redact(reason)

    def _saw_status(self, status: int) -> None:
        self.http_status = status

    # -- the session ------------------------------------------------------------------------------
    def _client(self, log: IO[str]) -> Any:
        import logging

        from mcp import Client, Implementation

        # the SDK logs a server's protocol faults with tracebacks; they are reported as one line instead
        for name in ("mcp", "httpx2"):
            logging.getLogger(name).addHandler(logging.NullHandler())

        from toolchat import __version__

        return Client(
            self._transport(log),
            mode="auto",
            cache=None,
            message_handler=self._on_message,
            client_info=Implementation(name="toolchat", version=__version__),
        )

    def _transport(self, log: IO[str]) -> Any:
        if self.spec.type == "http":
            return _http_transport(self.spec.url or "", dict(self.spec.headers), self._saw_status)
        from mcp import StdioServerParameters
        from mcp.client import stdio

        # the SDK waits 2 s after closing stdin, then 2 s after SIGTERM: too long for "<= 3 s"
        stdio.PROCESS_TERMINATION_TIMEOUT = stdio.FORCE_KILL_TIMEOUT = 1.0
        env, cwd, sandbox = self.environment(), Path(self.spec.cwd or self.project_dir), launch.sandbox_of(self.spec)
        if sandbox is not None:
            self._tmpdir = scratch_folder("mcp")  # mode 0700: the server's own
        command, args = launch.command_line(
            self.spec.command or "", list(self.spec.args), env, cwd, sandbox, self._tmpdir
        )
        parameters = StdioServerParameters(command=command, args=args, env=env, cwd=cwd)
        return _watched(stdio.stdio_client(parameters, errlog=log), self._exited)

    def _exited(self) -> None:
        """Its stdout ended: the process exited. Noticed now, so the next call restarts it first."""
        if self.state is State.READY and self._stop is not None and not self._stop.is_set():
            self.died, self.error = True, "it exited while idle"
            self._stop.set()  # the session closes and the process is reaped, before any call

    def environment(self) -> dict[str, str]:
        """A minimal environment (no API keys) plus the server's own `env`."""
        kept = {k: v for k, v in self.environ.items() if k in MINIMAL_ENV or k.startswith("LC_")}
        return {**kept, **self.spec.env}

    async def _on_message(self, message: Any) -> None:
        if isinstance(message, Exception):  # a line on its stdout that is not JSON-RPC
            self.garbled = _offending_line(message) or describe_error(message)
        elif getattr(message, "method", None) == "notifications/tools/list_changed":
            self.stale = True

    def _listen_for_changes(self, client: Any) -> asyncio.Task[None] | None:
        """On a 2026-07-28 connection, changes arrive on a `subscriptions/listen` stream."""
        capability = getattr(client.server_capabilities, "tools", None)
        if capability is None or not capability.list_changed:
            return None

        async def listen() -> None:
            try:
                async with client.listen(tools_list_changed=True) as subscription:
                    async for _event in subscription:
                        self.stale = True
            except Exception:  # noqa: BLE001 - an older server (no listen) or a dropped stream
                pass

        return asyncio.get_running_loop().create_task(listen())

    async def list_tools(self) -> None:
        tools: list[Any] = []
        cursor = None
        for _ in range(100):  # a paginator that never ends cannot hang start-up
            page = await self.client.list_tools(cursor=cursor)
            tools.extend(page.tools)
            cursor = page.next_cursor
            if cursor is None:
                break
        self.tools, self.stale = tools, False

    async def refresh(self) -> None:
        if self.stale and self.client is not None:
            await self.list_tools()

    async def call(self, name: str, arguments: dict[str, Any], timeout: float) -> Any:
        """The server's CallToolResult; ServerGone when its connection is closed."""
        from mcp import MCPError
        from mcp_types import CONNECTION_CLOSED

        client = self.client
        if client is None:
            raise ServerGone(self.error or "it is not running")
        try:
            return await client.call_tool(name, arguments, read_timeout_seconds=timeout)
        except MCPError as exc:
            if exc.error.code == CONNECTION_CLOSED:
                self.died = True
                raise ServerGone("its connection closed during the call (it exited or crashed)") from exc
            raise


@asynccontextmanager
async def _http_transport(url: str, headers: dict[str, str], on_status: Any) -> AsyncIterator[Any]:
    import httpx2
    from mcp.client.streamable_http import streamable_http_client

    async def seen(response: Any) -> None:
        on_status(response.status_code)

    timeout = httpx2.Timeout(10.0, read=300.0)
    async with httpx2.AsyncClient(headers=headers, timeout=timeout, event_hooks={"response": [seen]}) as http:
        async with streamable_http_client(url, http_client=http) as streams:
            yield streams


@asynccontextmanager
async def _watched(transport: Any, on_end: Any) -> AsyncIterator[Any]:
    """The transport's streams, with its read stream relayed so that its end (EOF: the server's
    stdout closed because it exited) calls `on_end` when it happens, not at the next call."""
    import anyio

    async with transport as (read, write):
        sender, receiver = anyio.create_memory_object_stream[Any](0)

        async def relay() -> None:
            async with sender:
                try:
                    async for item in read:
                        await sender.send(item)
                except (anyio.ClosedResourceError, anyio.BrokenResourceError):
                    return  # the session (or the transport) is closing: not the server's doing
            on_end()

        async with anyio.create_task_group() as group:
            group.start_soon(relay)
            try:
                yield receiver, write
            finally:
                group.cancel_scope.cancel()


def _offending_line(exc: Exception) -> str | None:
    """The line a server wrote that failed to parse (pydantic names it), quoted and short."""
    try:
        line = exc.errors()[0].get("input")  # type: ignore[attr-defined]
    except (AttributeError, IndexError, TypeError):
        return None
    return repr(line[:120]) if isinstance(line, str) else None


def describe_error(exc: BaseException) -> str:
    """One line for an exception that may be wrapped in exception groups by the SDK's task groups."""
    while getattr(exc, "exceptions", None):  # an ExceptionGroup (Python 3.10 has no builtin name)
        exc = exc.exceptions[0]  # type: ignore[attr-defined]
    if isinstance(exc, FileNotFoundError):
        searched = exc.strerror if exc.strerror and exc.strerror.startswith("not found in ") else ""
        return f"command not found: {exc.filename or exc}" + (f" ({searched})" if searched else "")
    if isinstance(exc, PermissionError):
        return f"cannot run it: {exc.strerror or exc}"
    if _caused_by(exc, socket.gaierror):
        return f"cannot resolve {_host(exc) or 'its host name'}"
    message = getattr(exc, "message", None)  # MCPError
    text = message if isinstance(message, str) else (str(exc) or type(exc).__name__)
    if text == "Connection closed":
        return "it exited before answering (connection closed)"
    return " ".join(text.split())[:300]


def _caused_by(exc: BaseException, kind: type[BaseException]) -> bool:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, kind):
            return True
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return False


def _host(exc: BaseException) -> str | None:
    """The host of the request an HTTP client error was raised for, when it says."""
    try:
        return str(exc.request.url.host) or None  # type: ignore[attr-defined]
    except (AttributeError, RuntimeError):  # httpx raises RuntimeError when no request is set
        return None
