"""MCP servers as one ToolSource: every configured server starts at once on the MCP loop thread; their
tools are offered as `SERVER__TOOL`; each call goes to its server with the per-call timeout; a server
that died is restarted once on the next call of its tools; closing is bounded for all together."""

from __future__ import annotations

import atexit
import concurrent.futures
import threading
import time
from collections.abc import Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from toolchat.config.mcp_spec import McpServerSpec
from toolchat.mcp import logs
from toolchat.mcp.convert import to_result
from toolchat.mcp.loop import LoopThread, wait
from toolchat.mcp.names import offered_name
from toolchat.mcp.server import STOP_TIMEOUT, Server, ServerGone, State, describe_error
from toolchat.redact import Redactor
from toolchat.tools.model import Tool, ToolResult, ToolStatus
from toolchat.tools.sources import RunLimits, SourceProblem

Notify = Callable[[str], None]
MARGIN = 2.0  # beyond a server's own startup_timeout, for the loop to record the failure


@dataclass
class ServerStatus:
    """What `toolchat mcp list`, `/mcp` and the REPL's toolbar show of one server."""

    name: str
    transport: str  # "stdio" | "http"
    target: str  # the command line or URL
    state: str  # starting | ready | failed | stopped
    started: float | None
    tools: int
    error: str | None
    stderr: list[str]


class McpSource:
    label = "mcp"

    def __init__(
        self,
        specs: Sequence[McpServerSpec],
        *,
        project_dir: Path,
        environ: Mapping[str, str],
        data_dir: Path,
        notify: Notify | None = None,
        secrets: Sequence[str] = (),
    ) -> None:
        from toolchat.config.file import secrets_of

        self.notify = notify or (lambda message: None)
        self.hub = LoopThread()
        self.servers: dict[str, Server] = {}
        for spec in specs:
            if not spec.enabled:
                continue
            redactor = Redactor([*secrets, *secrets_of([], [spec])])  # tokens in its headers and env
            self.servers[spec.name] = Server(spec, project_dir, environ, logs.log_path(data_dir, spec.name), redactor)
        self.restarted: set[str] = set()  # servers restarted after dying (once each)
        # called on the MCP thread each time a server has started or failed: the REPL then offers its
        # tools (or says it failed) at once, above its prompt, instead of at the next turn
        self.on_change: Callable[[], None] = lambda: None
        self._settled = self._seen = 0  # starts finished (counted on the MCP thread), and taken note of
        self._starts: dict[str, concurrent.futures.Future[None]] = {}
        for name, server in self.servers.items():
            self._start(name, server.start())
        # `ask` and the tools commands wait for every server before listing tools; the REPL shows its
        # prompt at once (False) and waits only when a turn needs the tools
        self.waits = True
        atexit.register(self.close)  # whatever path toolchat leaves by, the servers stop
        self._reported: set[str] = set()
        self._offered: dict[str, tuple[Server, str]] = {}
        self._built: dict[str, tuple[Any, Tool]] = {}  # offered name -> (listed, Tool): validators are kept
        self._clashes: list[SourceProblem] = []
        self._closed = False
        # calls of one reply run at once, each on its own thread: one session carries their requests
        self._running: dict[int, concurrent.futures.Future[Any]] = {}  # thread ident -> its request
        self._restarting = threading.Lock()  # a dead server is restarted by one of its calls, once

    # -- start-up ---------------------------------------------------------------------------------
    def _start(self, name: str, starting: Coroutine[Any, Any, None]) -> None:
        self._starts[name] = future = self.hub.submit(starting)
        future.add_done_callback(self._settle)

    def _settle(self, future: concurrent.futures.Future[None]) -> None:
        self._settled += 1
        self.on_change()

    def news(self) -> bool:
        """Whether a server has become ready or failed since the last time this was asked."""
        settled = self._settled
        if settled == self._seen:
            return False
        self._seen = settled
        return True

    def wait_ready(self) -> None:
        """Wait until every server is ready or has failed (each bounded by its startup_timeout)."""
        for name, future in list(self._starts.items()):
            try:  # Ctrl-C stops the waiting, not the start: a later turn finds the server ready
                future.result(self.servers[name].spec.startup_timeout + STOP_TIMEOUT + MARGIN)
            except (concurrent.futures.TimeoutError, concurrent.futures.CancelledError):
                self.servers[name]._fail("it did not finish starting")
        self._report_failures()

    def _report_failures(self) -> None:
        for line in self.new_failures():
            self.notify(line)

    def new_failures(self, problems: Sequence[SourceProblem] | None = None) -> list[str]:
        """What could not start or be offered (of `problems`, by default this source's), each line once."""
        lines = []
        for problem in self.problems() if problems is None else problems:
            line = f"{problem.where}: {problem.reason}"
            if line not in self._reported:
                self._reported.add(line)
                lines.append(line)
        return lines

    def statuses(self) -> list[ServerStatus]:
        out = []
        for server in self.servers.values():
            failed = server.state is State.FAILED or server.died
            state = "exited" if server.died else server.state.value
            target = server.redactor.redact(server.spec.describe())
            out.append(
                ServerStatus(
                    server.name,
                    server.spec.type,
                    target,
                    state,
                    server.started,
                    len(self._wanted(server)),
                    server.error,
                    self._tail(server) if failed else [],
                )
            )
        return out

    @staticmethod
    def _tail(server: Server) -> list[str]:
        return [server.redactor.redact(line) for line in logs.tail(server.log_path)]

    def problems(self) -> list[SourceProblem]:
        problems = list(self._clashes)
        for server in self.servers.values():
            if server.state is State.FAILED:
                reason = f"could not start `{server.spec.describe()}`: {server.error}"
                tail = self._tail(server)
                if tail:
                    reason += "; its stderr ends: " + " | ".join(tail)
                problems.append(SourceProblem(f"mcp {server.name}", server.redactor.redact(reason)))
            elif server.state is State.READY and server.spec.tools is not None:
                listed = {tool.name for tool in server.tools}
                for name in server.spec.tools:
                    if name not in listed:
                        problems.append(
                            SourceProblem(
                                f"mcp {server.name}",
                                f"offers no tool named '{name}' (its tools: {', '.join(sorted(listed)) or 'none'})",
                            )
                        )
        return problems

    # -- tools ------------------------------------------------------------------------------------
    def tools(self) -> list[Tool]:
        """The tools of every ready server, listed again where the server said they changed."""
        if not self.waits:  # the REPL's prompt is up: what is ready now, and no waiting on any server
            return self._collect()
        self.wait_ready()
        for server in self.servers.values():
            if server.stale and server.state is State.READY:
                try:
                    wait(self.hub.submit(server.refresh()), server.spec.startup_timeout)
                except (concurrent.futures.TimeoutError, Exception) as exc:  # noqa: BLE001 - keep the old list
                    self.notify(f"mcp {server.name}: could not list its tools again: {describe_error(exc)}")
        return self._collect()

    def _wanted(self, server: Server) -> list[Any]:
        names = server.spec.tools
        return [t for t in server.tools if names is None or t.name in names]

    def _collect(self) -> list[Tool]:
        offered: dict[str, tuple[Server, str]] = {}
        tools: list[Tool] = []
        self._clashes = []
        for server in self.servers.values():
            if server.state is not State.READY:
                continue
            for listed in self._wanted(server):
                name = offered_name(server.name, listed.name)
                if name in offered:
                    other = offered[name][0].name
                    self._clashes.append(
                        SourceProblem(
                            f"mcp {server.name}",
                            f"its tool '{listed.name}' is offered as '{name}', as is a tool of mcp {other}; left out",
                        )
                    )
                    continue
                offered[name] = (server, listed.name)
                built = self._built.get(name)
                if built is None or built[0] is not listed:
                    built = self._built[name] = (listed, _tool(name, listed, server.name))
                tools.append(built[1])
        self._offered = offered
        return tools

    # -- calls ------------------------------------------------------------------------------------
    def run(self, tool: Tool, arguments: dict[str, Any], limits: RunLimits) -> ToolResult:
        started = time.monotonic()
        target = self._offered.get(tool.name)
        if target is None:
            return ToolResult(ToolStatus.UNKNOWN, f"Error: no MCP server offers '{tool.name}' now.")
        server, original = target
        with self._restarting:
            if server.died or server.state is not State.READY:
                restarted = self._restart_once(server)
                if restarted is not None:
                    return ToolResult(ToolStatus.ERROR, restarted, time.monotonic() - started)
        timeout = server.spec.timeout or limits.timeout
        future = self.hub.submit(server.call(original, arguments, timeout))
        me = threading.get_ident()
        self._running[me] = future
        try:
            result = wait(future, timeout + MARGIN)
        except concurrent.futures.CancelledError:  # stopped from another thread (`stop`)
            return ToolResult(ToolStatus.CANCELLED, "Cancelled: the request was cancelled.", time.monotonic() - started)
        except concurrent.futures.TimeoutError:
            future.cancel()
            return _timed_out(timeout, started)
        except ServerGone as exc:
            return ToolResult(
                ToolStatus.ERROR, f"Error: the MCP server '{server.name}' stopped: {exc}", time.monotonic() - started
            )
        except Exception as exc:  # noqa: BLE001 - a protocol error is an answer to the model
            return _protocol_error(server.name, exc, timeout, started)
        finally:
            self._running.pop(me, None)
        return to_result(result, limits.max_output_chars, time.monotonic() - started)

    def stop(self, thread: int) -> None:
        """Cancel the request thread `thread` waits on (the SDK tells the server it is cancelled)."""
        future = self._running.get(thread)
        if future is not None:
            future.cancel()

    def _restart_once(self, server: Server) -> str | None:
        """Restart a dead server, once per session; an error for the model if it cannot run."""
        if server.name in self.restarted:
            return (
                f"Error: the MCP server '{server.name}' stopped and was already restarted once; not running it again."
            )
        self.restarted.add(server.name)
        self.notify(f"mcp {server.name} stopped; restarting it")
        self.restart(server.name)
        if server.state is not State.READY:
            return f"Error: the MCP server '{server.name}' stopped and could not be restarted: {server.error}"
        return None

    def restart(self, name: str) -> ServerStatus:
        """Stop and start one server again (`/mcp restart NAME`, or after it died)."""
        server = self.servers[name]

        async def again() -> None:
            await server.stop()
            server.restarts += 1
            await server.start()

        self._reported = {line for line in self._reported if not line.startswith(f"mcp {name}:")}
        self._start(name, again())
        self.wait_ready()
        self._collect()
        return next(s for s in self.statuses() if s.name == name)

    # -- the end ----------------------------------------------------------------------------------
    def close(self) -> None:
        """Stop every server at once; bounded (a hung one is killed within STOP_TIMEOUT)."""
        if self._closed:
            return
        self._closed = True

        async def stop_all() -> None:
            import asyncio

            await asyncio.gather(*(server.stop() for server in self.servers.values()), return_exceptions=True)

        atexit.unregister(self.close)
        try:
            self.hub.submit(stop_all()).result(STOP_TIMEOUT + 1.0)
        except (concurrent.futures.TimeoutError, KeyboardInterrupt):
            pass  # the loop thread is a daemon; the servers' pipes close with this process
        finally:
            self.hub.stop()


def _tool(name: str, listed: Any, server: str) -> Tool:
    parameters = dict(listed.input_schema or {})
    parameters.setdefault("type", "object")
    parameters.setdefault("properties", {})
    return Tool(
        name=name,
        description=(listed.description or listed.title or "").strip(),
        parameters=parameters,
        origin=f"mcp {server}",
        accepts_extra=parameters.get("additionalProperties", True) is not False,
    )


def _timed_out(timeout: float, started: float) -> ToolResult:
    return ToolResult(
        ToolStatus.TIMEOUT,
        f"Error: timed out after {timeout:g} s; the request was cancelled.",
        time.monotonic() - started,
    )


def _protocol_error(server: str, exc: Exception, timeout: float, started: float) -> ToolResult:
    from mcp import MCPError
    from mcp_types import REQUEST_TIMEOUT

    if isinstance(exc, MCPError) and exc.code == REQUEST_TIMEOUT:
        return _timed_out(timeout, started)
    return ToolResult(
        ToolStatus.ERROR,
        f"Error: the MCP server '{server}' answered with an error: {describe_error(exc)}",
        time.monotonic() - started,
    )
