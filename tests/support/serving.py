"""`toolchat serve` as a real subprocess on a free loopback port, for tests and benchmarks."""

from __future__ import annotations

import http.client
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from email.message import Message
from pathlib import Path
from typing import Any

from tests.support.ports import free_port


def _default_signals() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)  # we may run as a background job that ignores it
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


class Served:
    """`toolchat serve ARGS` started in `cwd`; `url` is its /v1 base once /health answers."""

    def __init__(self, args: list[str], env: dict[str, str], cwd: Path, port: int | None = None) -> None:
        self.port = port or free_port()
        self.log_path = cwd / f"serve-{self.port}.log"
        self._log = open(self.log_path, "w+", encoding="utf-8")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "toolchat", "serve", "--port", str(self.port), *args],
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            preexec_fn=_default_signals,
        )

    @property
    def root(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"{self.root}/v1"

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8")

    def wait_ready(self, timeout: float = 60) -> Served:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"toolchat serve exited with {self.process.returncode}:\n{self.log()}")
            try:
                with urllib.request.urlopen(f"{self.root}/health", timeout=2) as response:
                    if response.status == 200:
                        return self
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                time.sleep(0.05)
        raise RuntimeError(f"toolchat serve did not answer /health within {timeout} s:\n{self.log()}")

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._log.close()
        return self.process.returncode

    def __enter__(self) -> Served:
        return self.wait_ready()

    def __exit__(self, *exc: Any) -> None:
        self.stop()


def post(url: str, body: Any, headers: dict[str, str] | None = None, timeout: float = 30) -> tuple[int, Message, bytes]:
    """One POST with the standard library: status, headers (any case), body (errors included)."""
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    request = urllib.request.Request(
        url, data=data, method="POST", headers={"Content-Type": "application/json", **(headers or {})}
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, response.headers, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers, exc.read()


def sse_events(raw: bytes) -> list[str]:
    text = raw.decode()
    assert text.endswith("\n\n"), text[-200:]
    events = text[:-2].split("\n\n")
    assert all(e.startswith("data: ") and "\n" not in e for e in events), events
    return [e[len("data: ") :] for e in events]


def raw_post(served: Served, body: dict, headers: dict[str, str] | None = None) -> http.client.HTTPResponse:
    connection = http.client.HTTPConnection("127.0.0.1", served.port, timeout=30)
    connection.request(
        "POST", "/v1/chat/completions", json.dumps(body), {"Content-Type": "application/json", **(headers or {})}
    )
    return connection.getresponse()


ASK = {"model": "toolchat", "messages": [{"role": "user", "content": "Weather in Singapore?"}]}


def lines_after(served: Served, count: int) -> list[str]:
    """The server's access-log lines but wait_ready's health checks, once there are `count` of them."""
    deadline = time.monotonic() + 10
    while True:
        found = [line for line in served.log().splitlines() if re.match(r"toolchat serve: [A-Z]+ /(?!health )", line)]
        if len(found) >= count or time.monotonic() > deadline:
            return found
        time.sleep(0.05)


def send_raw(served: Served, body: dict) -> socket.socket:
    """A request written on a bare socket, which the test can close at any moment (a client going away)."""
    sock = socket.create_connection(("127.0.0.1", served.port))
    data = json.dumps(body).encode()
    sock.sendall(
        b"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        b"Content-Length: %d\r\n\r\n%s" % (len(data), data)
    )
    return sock


def gone(pid: int, seconds: float = 5) -> bool:
    """Whether process `pid` ends within `seconds`."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.05)
    return False
