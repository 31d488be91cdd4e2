"""An MCP server written with the official SDK that misbehaves on request, for toolchat's tests.

    python faults.py [exit-at-start | hang-at-start | garbage-at-start | daemon-at-start | serve]

With $FAULTS_GATE set, every mode first waits until that file exists: a server slow to start,
for as long as the test wants (it opens the gate).

Its tools: `echo`, `hang` (sleeps in the call), `big` (a 1 MB answer), `fail` (an isError result),
`image` (a PNG), `grow` (adds the tool `extra` and says the list changed), `refuse` (a JSON-RPC
error), `die` (the process exits mid-call), `leave`
(answers, then exits while idle), `daemon` (forks a setsid daemon that ignores SIGTERM, as
`daemon-at-start` does before serving). It writes its PID (and each daemon's) to $FAULTS_PID_DIR/<pid> so tests can check
nothing outlives toolchat,
and its environment to stderr (which toolchat must keep out of the terminal)."""

import base64
import os
import signal
import sys
import threading
import time
from typing import Any

PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
)


def spawn_daemon() -> int:
    """Double-fork a setsid daemon that ignores SIGTERM and keeps every inherited fd; its PID, written
    to $FAULTS_PID_DIR before this returns."""
    first = os.fork()
    if first == 0:
        os.setsid()
        daemon = os.fork()
        if daemon == 0:
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
            while True:
                time.sleep(3600)
        folder = os.environ.get("FAULTS_PID_DIR")
        if folder:
            with open(os.path.join(folder, str(daemon)), "w") as handle:
                handle.write("daemon")
        os._exit(0)
    os.waitpid(first, 0)
    return first


def build() -> Any:
    # imported here, so the modes that fail at start do so at once
    from mcp.server.mcpserver import Context, MCPServer
    from mcp.server.mcpserver.exceptions import ToolError
    from mcp.server.mcpserver.utilities.types import Image

    server = MCPServer("faults")

    @server.tool(description="Say the text back.")
    def echo(text: str) -> str:
        return text

    @server.tool(description="Sleep for this many seconds, then answer.")
    def hang(seconds: float) -> str:
        time.sleep(seconds)
        return f"slept {seconds}"

    @server.tool(description="Answer with this many characters.")
    def big(size: int = 1_000_000) -> str:
        return "x" * size

    @server.tool(description="Fail the way a tool should: an isError result.")
    def fail() -> str:
        raise ToolError("the disk is full")

    @server.tool(description="Answer with a tiny PNG and a caption.")
    def image() -> list:
        return ["a red pixel", Image(data=PNG * 200, format="png")]

    @server.tool(description="Add the tool `extra` and tell the client its tools changed.")
    async def grow(ctx: Context) -> str:
        if "extra" not in {tool.name for tool in await server.list_tools()}:
            server.add_tool(lambda: "extra ran", name="extra", description="Added while running.")
        await ctx.notify_tools_changed()
        try:
            await ctx.session.send_tool_list_changed()  # the 2025-11-25 notification
        except Exception:  # noqa: BLE001 - a 2026-07-28 connection has no session to send it on
            pass
        return "added extra"

    @server.tool(description="Answer with a JSON-RPC error instead of a result.")
    def refuse() -> str:
        from mcp.shared.exceptions import MCPError

        raise MCPError(code=-32602, message="the widget id is unknown")

    @server.tool(description="Exit in the middle of the call.")
    def die() -> str:
        os._exit(3)

    @server.tool(description="Answer, then exit a moment later, while idle.")
    def leave() -> str:
        threading.Timer(0.2, os._exit, (0,)).start()
        return "leaving"

    @server.tool(description="Start a daemon that outlives this server, then answer.")
    def daemon() -> str:
        spawn_daemon()
        return "started a daemon"

    return server


def main() -> None:
    mode = sys.argv[1] if len(sys.argv) > 1 else "serve"
    folder = os.environ.get("FAULTS_PID_DIR")
    if folder:
        with open(os.path.join(folder, str(os.getpid())), "w") as handle:
            handle.write(mode)
    print(f"faults: starting in mode {mode}; environment: {sorted(os.environ)}", file=sys.stderr, flush=True)
    while os.environ.get("FAULTS_GATE") and not os.path.exists(os.environ["FAULTS_GATE"]):
        time.sleep(0.05)
    if mode == "exit-at-start":
        if os.environ.get("FAULTS_TOKEN"):  # a careless server echoing its secret
            print(f"faults: login with token {os.environ['FAULTS_TOKEN']} refused", file=sys.stderr, flush=True)
        print("faults: cannot open the database", file=sys.stderr, flush=True)
        sys.exit(1)
    if mode == "hang-at-start":
        time.sleep(3600)
    if mode == "garbage-at-start":  # not JSON-RPC: a server that logs to stdout, say
        print("Listening on stdio... ready!", flush=True)
        time.sleep(3600)
    if mode == "daemon-at-start":
        spawn_daemon()
    build().run()


if __name__ == "__main__":
    main()
