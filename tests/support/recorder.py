"""A transparent recording proxy on loopback, between toolchat and a real server: every request is
passed on unchanged and its reply streamed back as it arrives, and both are kept, so a test can
see exactly what went over the wire (which a fake server cannot show for a real peer)."""

from __future__ import annotations

import http.client
import json
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "host"}


@dataclass
class Exchange:
    method: str
    path: str
    body: Any  # the request's JSON (None without a body)
    status: int = 0
    reply: bytes = b""  # the reply's body, as the server sent it (an event stream, a JSON body)

    def events(self) -> list[dict[str, Any]]:
        """The JSON events of a streamed reply (`data: {...}` lines; `[DONE]` left out)."""
        lines = self.reply.decode().splitlines()
        return [json.loads(line[6:]) for line in lines if line.startswith("data: {")]


class RecordingProxy:
    """`RecordingProxy(url)` in a `with`: `.url` takes the place of `url` (same path), and
    `.exchanges` lists what passed, in order."""

    def __init__(self, upstream: str) -> None:
        parts = urlsplit(upstream)
        self.exchanges: list[Exchange] = []
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                self._forward(None)

            def do_POST(self) -> None:
                self._forward(self.rfile.read(int(self.headers.get("Content-Length") or 0)))

            def _forward(self, data: bytes | None) -> None:
                exchange = Exchange(self.command, self.path, json.loads(data) if data else None)
                proxy.exchanges.append(exchange)
                connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=600)
                headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
                connection.request(self.command, self.path, data, headers)
                reply = connection.getresponse()
                exchange.status = reply.status
                self.send_response(reply.status)
                for key, value in reply.getheaders():
                    if key.lower() not in HOP_BY_HOP:
                        self.send_header(key, value)
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                while piece := reply.read1(65536):
                    exchange.reply += piece
                    self.wfile.write(f"{len(piece):x}\r\n".encode() + piece + b"\r\n")
                    self.wfile.flush()
                self.wfile.write(b"0\r\n\r\n")
                connection.close()

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        root = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.url = root + parts.path

    def posts(self, path: str = "/v1/chat/completions") -> list[Exchange]:
        return [e for e in self.exchanges if e.method == "POST" and e.path == path]

    def __enter__(self) -> RecordingProxy:
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.server.shutdown()
        self.server.server_close()
