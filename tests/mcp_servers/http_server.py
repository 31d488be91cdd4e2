"""A Streamable HTTP MCP server (the SDK's, under uvicorn on 127.0.0.1) that answers only requests
carrying `Authorization: Bearer $MCP_TEST_TOKEN`, for toolchat's tests.

    python http_server.py PORT
"""

from __future__ import annotations

import os
import sys
from typing import Any

import uvicorn
from mcp.server.mcpserver import MCPServer
from starlette.responses import JSONResponse


def build() -> Any:
    server = MCPServer("docs")

    @server.tool(description="Look a word up in the docs.")
    def lookup(word: str) -> str:
        return f"docs: {word} is documented on page 7"

    app = server.streamable_http_app()
    expected = f"Bearer {os.environ['MCP_TEST_TOKEN']}"

    async def bearer_only(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            headers = dict(scope.get("headers") or [])
            if headers.get(b"authorization", b"").decode() != expected:
                await JSONResponse({"error": "unauthorized"}, status_code=401)(scope, receive, send)
                return
        await app(scope, receive, send)

    return bearer_only


if __name__ == "__main__":
    uvicorn.run(build(), host="127.0.0.1", port=int(sys.argv[1]), log_level="warning", lifespan="on")
