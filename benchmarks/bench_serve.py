"""`toolchat serve` under load: N concurrent streamed requests through the server to a loopback
upstream, against the same requests sent to the upstream directly (the overhead per request);
and concurrent requests on the local backend (queued, one at a time, all answered)."""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))

from serving import Served  # noqa: E402

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
                    self._send({"choices": [{"index": 0, "delta": {"content": text[i:i + size]}, "finish_reason": None}]})
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
    stream = await client.chat.completions.create(model="toolchat", stream=True,
                                                  messages=[{"role": "user", "content": prompt}])
    text = [choice.delta.content or "" async for chunk in stream for choice in chunk.choices]
    return time.perf_counter() - started, "".join(text) == "echo: " + prompt


def _client(url: str, timeout: float = 120) -> Any:
    import openai

    return openai.AsyncOpenAI(base_url=url, api_key="unused", max_retries=0, timeout=timeout)


async def _burst(url: str, count: int) -> list[tuple[float, bool]]:
    async with _client(url) as client:
        return await asyncio.gather(*(_one(client, n) for n in range(count)))


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def overhead(env: dict[str, str], work: Path, plan: list[tuple[int, int]]) -> dict[int, dict[str, Any]]:
    """For each (concurrent, bursts) of `plan`: the latency of each streamed request, through
    `toolchat serve` and straight to the upstream, bursts alternating; `correct` counts answers
    through the server that were whole and the client's own."""
    upstream = EchoUpstream()
    found: dict[int, dict[str, Any]] = {}
    try:
        with Served(["--base-url", upstream.url, "--no-tools"], env, work) as served:
            for url in (served.url, upstream.url):  # warm-up: connections, the upstream's model name
                asyncio.run(_burst(url, 5))
            for concurrent, bursts in plan:
                samples: dict[str, list[float]] = {"served": [], "direct": []}
                correct = 0
                for _ in range(bursts):
                    for side, url in (("served", served.url), ("direct", upstream.url)):
                        results = asyncio.run(_burst(url, concurrent))
                        samples[side] += [seconds for seconds, _ in results]
                        correct += sum(ok for _, ok in results) if side == "served" else 0
                stats = {side: (statistics.median(v), percentile(v, 0.99)) for side, v in samples.items()}
                found[concurrent] = {"stats": stats, "correct": correct, "total": concurrent * bursts}
    finally:
        upstream.close()
    return found


def local_queue(env: dict[str, str], work: Path, concurrent: int) -> dict[str, Any]:
    """`concurrent` requests at once on the bundled model: each waits its turn; all answered."""
    import openai

    args = ["--backend", "local", "--model", "bundled", "--no-tools", "--max-queue", str(concurrent)]
    with Served(args, env, work) as served:
        async def one(client: Any, n: int) -> tuple[float, int, str]:
            started = time.perf_counter()
            try:
                response = await client.chat.completions.create(
                    model="toolchat", max_tokens=16, temperature=0,
                    messages=[{"role": "user", "content": f"Count to {n + 2}."}])
            except openai.APIStatusError as exc:
                return time.perf_counter() - started, exc.status_code, ""
            return time.perf_counter() - started, 200, response.choices[0].message.content or ""

        async def burst() -> list[tuple[float, int, str]]:
            async with _client(served.url, timeout=600) as client:
                return await asyncio.gather(*(one(client, n) for n in range(concurrent)))

        started = time.perf_counter()
        results = asyncio.run(burst())
        wall = time.perf_counter() - started
    seconds = sorted(r[0] for r in results)
    return {"answered": sum(r[1] == 200 and bool(r[2].strip()) for r in results), "total": concurrent,
            "first": seconds[0], "last": seconds[-1], "wall": wall}


def section(env: dict[str, str], work: Path, quick: bool) -> list[str]:
    concurrent, local = (10, 2) if quick else (50, 10)
    plan = [(1, 5 if quick else 30), (concurrent, 1 if quick else 4)]
    found = overhead(env, work, plan)
    lines = [
        "## 8. Serving (`toolchat serve`)", "",
        "Streamed requests through the server and straight to the upstream, in alternating bursts; the "
        f"upstream is a loopback server streaming {PIECES} chunks {GAP * 1000:g} ms apart (a fast model). "
        "Latency of each whole streamed request:", "",
        "| at once | requests | upstream directly p50 / p99 | through `toolchat serve` p50 / p99 | overhead p50 / p99 |",
        "| --- | --- | --- | --- | --- |",
    ]
    for at_once, row in found.items():
        (s50, s99), (d50, d99) = row["stats"]["served"], row["stats"]["direct"]
        lines.append(f"| {at_once} | {row['total']} | {d50 * 1000:.0f} / {d99 * 1000:.0f} ms | "
                     f"{s50 * 1000:.0f} / {s99 * 1000:.0f} ms | **{(s50 - d50) * 1000:+.0f} / {(s99 - d99) * 1000:+.0f} ms** |")
    checked = found[concurrent]
    lines += [
        "",
        f"Answers of the {concurrent}-at-once bursts complete and each the client's own (none mixed): "
        f"**{checked['correct']} of {checked['total']}**.",
        "",
        f"The server, the upstream and the clients share this machine's {os.cpu_count()} cores (load average "
        f"{os.getloadavg()[0]:.1f} at the end). One request at a time shows the fixed cost per request (a thread, "
        "an engine, the SDK parsing the upstream's stream, the chunks written again); many at once, that CPU "
        "time queues on the cores (threads taking turns on the GIL), which is what the overhead at 50 measures. "
        "The next step, if it matters: the async SDK on the event loop instead of a thread per request.",
    ]
    queue = local_queue(env, work, local)
    lines += [
        "",
        f"Local backend (bundled model, `--max-queue {local}`): {local} concurrent requests of up to 16 tokens, "
        f"served one at a time: **{queue['answered']} of {queue['total']} answered**; the first in "
        f"{queue['first']:.1f} s, the last (after waiting its turn) in {queue['last']:.1f} s.",
    ]
    return lines
