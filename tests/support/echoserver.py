"""A loopback OpenAI-compatible server that streams back each request's own last message, for
load tests of `toolchat serve` (every client can check it got its own answer and nobody else's),
and the concurrent client that checks it."""

from __future__ import annotations

import asyncio
import json
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

PIECES = 20  # chunks per streamed answer
GAP = 0.005  # seconds between chunks: a fast model


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256  # the listen backlog: 50 clients connect at once

    def handle_error(self, request: Any, client_address: Any) -> None:
        if not isinstance(sys.exc_info()[1], ConnectionError):  # a client closing its connection is normal
            super().handle_error(request, client_address)


class EchoUpstream:
    """An OpenAI-compatible server streaming back 'echo: <the last user message>' in pieces, so
    every client can check it got its own answer and nobody else's."""

    def __init__(self) -> None:
        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:  # /v1/models
                data = json.dumps({"object": "list", "data": [{"id": "echo", "object": "model"}]}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                text = "echo: " + body["messages"][-1]["content"]
                size = max(1, len(text) // PIECES)
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                for i in range(0, len(text), size):
                    self._send(
                        {"choices": [{"index": 0, "delta": {"content": text[i : i + size]}, "finish_reason": None}]}
                    )
                    time.sleep(GAP)
                self._send({"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
                self._send({"choices": [], "usage": {"prompt_tokens": 10, "completion_tokens": PIECES}})
                self._write(b"data: [DONE]\n\n")
                self.wfile.write(b"0\r\n\r\n")

            def _send(self, chunk: dict[str, Any]) -> None:
                chunk.update(id="chatcmpl-echo", object="chat.completion.chunk", created=1, model="echo")
                self._write(f"data: {json.dumps(chunk)}\n\n".encode())

            def _write(self, data: bytes) -> None:
                self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
                self.wfile.flush()

        self.server = _Server(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


async def _one(client: Any, n: int) -> tuple[float, bool]:
    prompt = f"request {n} " + "x" * (n % 7)
    started = time.perf_counter()
    stream = await client.chat.completions.create(
        model="toolchat", stream=True, messages=[{"role": "user", "content": prompt}]
    )
    text = [choice.delta.content or "" async for chunk in stream for choice in chunk.choices]
    return time.perf_counter() - started, "".join(text) == "echo: " + prompt


def async_client(url: str, timeout: float = 120) -> Any:
    import openai

    return openai.AsyncOpenAI(base_url=url, api_key="unused", max_retries=0, timeout=timeout)


async def burst(url: str, count: int) -> list[tuple[float, bool]]:
    """`count` streamed requests at once: (seconds, whole and its own answer) for each."""
    async with async_client(url) as client:
        return await asyncio.gather(*(_one(client, n) for n in range(count)))
