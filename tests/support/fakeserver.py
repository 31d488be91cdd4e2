"""A real OpenAI-compatible HTTP server on 127.0.0.1 for tests, scripted reply by reply, that
streams SSE the way OpenAI, vLLM and Ollama do, and misbehaves the ways real servers and proxies
do: a body that ends early, keep-alive comments forever, an HTML page, a chunk that is not JSON."""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit


@dataclass
class Script:
    """One reply: SSE chunks, a JSON body with a status, or a hang."""

    kind: str  # "sse" | "json" | "hang" | "raw"
    chunks: list[dict[str, Any] | str] = field(default_factory=list)  # a str is sent as it is (SSE text)
    status: int = 200
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    cut_after: int | None = None  # close the connection after this many chunks
    seconds: float = 0.0
    delay: float = 0.0  # between chunks, to stream slowly
    done: bool = True  # end with `data: [DONE]`


def sse(
    chunks: list[dict[str, Any] | str], cut_after: int | None = None, delay: float = 0.0, done: bool = True
) -> Script:
    """A stream; `cut_after=N` breaks the connection after N chunks, `done=False` ends the body
    cleanly without [DONE] (as a proxy timing out at a chunk boundary does)."""
    return Script("sse", chunks=chunks, cut_after=cut_after, delay=delay, done=done)


def keepalive(seconds: float, every: float = 0.2) -> Script:
    """A stream that only sends SSE keep-alive comments, `every` seconds for `seconds`."""
    return Script("sse", chunks=[": keep-alive\n\n"] * int(seconds / every), delay=every)


def raw(body: bytes, content_type: str, status: int = 200) -> Script:
    return Script("raw", body=body, status=status, headers={"Content-Type": content_type})


def reply_json(body: Any, status: int = 200, **headers: str) -> Script:
    return Script("json", body=body, status=status, headers=headers)


def error(status: int, message: str, **headers: str) -> Script:
    return reply_json({"error": {"message": message, "type": "error", "code": status}}, status, **headers)


def hang(seconds: float) -> Script:
    return Script("hang", seconds=seconds)


def chunk(
    delta: dict[str, Any] | None = None,
    finish: str | None = None,
    usage: dict[str, Any] | None = None,
    choices: bool = True,
) -> dict[str, Any]:
    body: dict[str, Any] = {"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1, "model": "m"}
    body["choices"] = [{"index": 0, "delta": delta or {}, "finish_reason": finish}] if choices else []
    if usage is not None:
        body["usage"] = usage
    return body


def text_stream(text: str, pieces: int = 3, usage: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    size = max(1, len(text) // pieces)
    parts = [text[i : i + size] for i in range(0, len(text), size)]
    chunks = [chunk({"role": "assistant", "content": ""})]
    chunks += [chunk({"content": p}) for p in parts]
    chunks.append(chunk(finish="stop"))
    if usage:
        chunks.append(chunk(usage=usage, choices=False))
    return chunks


def raw_call(name: str, arguments: str) -> list[dict[str, Any]]:
    """A model's one whole call whose arguments are sent as written, valid JSON or not."""
    call = {"index": 0, "id": "call_0", "type": "function", "function": {"name": name, "arguments": arguments}}
    return [chunk({"role": "assistant", "content": None}), chunk({"tool_calls": [call]}), chunk(finish="tool_calls")]


def openai_calls(calls: list[tuple[str, dict[str, Any]]], split: int = 4) -> list[dict[str, Any]]:
    """The standard: id/type/name first, then argument fragments, finish_reason tool_calls."""
    chunks = [chunk({"role": "assistant", "content": None})]
    for index, (name, args) in enumerate(calls):
        chunks.append(
            chunk(
                {
                    "tool_calls": [
                        {
                            "index": index,
                            "id": f"call_{index}abc",
                            "type": "function",
                            "function": {"name": name, "arguments": ""},
                        }
                    ]
                }
            )
        )
        text = json.dumps(args)
        for i in range(0, len(text), split):
            chunks.append(chunk({"tool_calls": [{"index": index, "function": {"arguments": text[i : i + split]}}]}))
    chunks.append(chunk(finish="tool_calls"))
    return chunks


def vllm_calls(calls: list[tuple[str, dict[str, Any]]], resend_final: bool = True) -> list[dict[str, Any]]:
    """vLLM: no ids, the name repeated in every chunk, content "" beside calls, and a final chunk
    re-sending type and name."""
    chunks = [chunk({"role": "assistant", "content": ""})]
    for index, (name, args) in enumerate(calls):
        text = json.dumps(args)
        for i in range(0, len(text), 5):
            chunks.append(
                chunk(
                    {
                        "content": "",
                        "tool_calls": [
                            {
                                "index": index,
                                "type": "function",
                                "function": {"name": name, "arguments": text[i : i + 5]},
                            }
                        ],
                    }
                )
            )
        if resend_final:
            chunks.append(chunk({"tool_calls": [{"index": index, "type": "function", "function": {"name": name}}]}))
    chunks.append(chunk(finish="tool_calls"))
    return chunks


def ollama_calls(calls: list[tuple[str, dict[str, Any]]]) -> list[dict[str, Any]]:
    """Ollama: each call whole in one chunk, all at index 0, new ids, finish_reason "stop"."""
    chunks = []
    for n, (name, args) in enumerate(calls):
        chunks.append(
            chunk(
                {
                    "role": "assistant",
                    "content": "",
                    "tool_calls": [
                        {
                            "id": f"call_{n}xyz",
                            "index": 0,
                            "type": "function",
                            "function": {"name": name, "arguments": json.dumps(args)},
                        }
                    ],
                }
            )
        )
    chunks.append(chunk({"role": "assistant", "content": ""}, finish="stop"))
    return chunks


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        import sys

        if not isinstance(sys.exc_info()[1], ConnectionError):  # a client hanging up is normal
            super().handle_error(request, client_address)


class FakeServer:
    def __init__(self, models: list[str] | None = None) -> None:
        self.scripts: list[Script] = []
        self.requests: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        self.models = models or ["fake-model"]
        self._lock = threading.Lock()
        self._server = _QuietServer(("127.0.0.1", 0), self._handler())
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/v1"

    def add(self, *scripts: Script) -> FakeServer:
        self.scripts.extend(scripts)
        return self

    def __enter__(self) -> FakeServer:
        self._thread.start()
        return self

    def __exit__(self, exc_type: Any, *exc: Any) -> None:
        self._server.shutdown()
        self._server.server_close()
        if exc_type is None and self.scripts:  # a scripted reply never asked for: the test proved less
            raise AssertionError(
                f"{len(self.scripts)} scripted repl(ies) never requested: "
                + ", ".join(script.kind for script in self.scripts)
            )

    def _next(self) -> Script:
        with self._lock:
            if not self.scripts:
                return error(500, "the test server has no reply scripted")
            return self.scripts.pop(0)

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            @property
            def route(self) -> str:
                """The path, also of an absolute URI (a request sent to this server as a proxy)."""
                return urlsplit(self.path).path.rstrip("/")

            def do_GET(self) -> None:
                if self.route == "/v1/models":
                    self._json(200, {"object": "list", "data": [{"id": m, "object": "model"} for m in server.models]})
                else:
                    self._json(404, {"error": {"message": "not found"}})

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", 0))
                body = json.loads(self.rfile.read(length) or b"{}")
                if self.route != "/v1/chat/completions":
                    self._json(404, {"error": {"message": f"unknown path {self.path}"}})
                    return
                server.requests.append(body)
                server.headers.append({k.lower(): v for k, v in self.headers.items()})
                script = server._next()
                if script.kind == "hang":
                    time.sleep(script.seconds)
                    self.close_connection = True
                    return
                if script.kind == "json":
                    self._json(script.status, script.body, script.headers)
                    return
                if script.kind == "raw":
                    self._raw(script.status, script.body, script.headers)
                    return
                self._stream(script)

            def _json(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
                self._raw(status, json.dumps(body).encode(), {"Content-Type": "application/json", **(headers or {})})

            def _raw(self, status: int, data: bytes, headers: dict[str, str]) -> None:
                self.send_response(status)
                self.send_header("Content-Length", str(len(data)))
                for key, value in (headers or {}).items():
                    self.send_header(key.replace("_", "-"), value)
                self.end_headers()
                self.wfile.write(data)

            def _stream(self, script: Script) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                for n, item in enumerate(script.chunks):
                    if script.cut_after is not None and n >= script.cut_after:
                        self.wfile.flush()
                        self.close_connection = True
                        self.connection.shutdown(2)  # break off without the chunked terminator
                        return
                    try:
                        self._send(item if isinstance(item, str) else f"data: {json.dumps(item)}\n\n")
                    except OSError:  # the client went away (Ctrl-C, a timeout)
                        return
                    time.sleep(script.delay)
                if script.done:
                    self._send("data: [DONE]\n\n")
                self.wfile.write(b"0\r\n\r\n")
                self.wfile.flush()

            def _send(self, text: str) -> None:
                data = text.encode()
                self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
                self.wfile.flush()

        return Handler
