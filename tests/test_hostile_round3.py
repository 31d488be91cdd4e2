"""Hostile input, round three (issue 27): each test is the attack as it was found — a hostile
loopback model or MCP server, a crafted session file, a raw socket for `serve` — kept as the
check that it stays fixed."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tests.support.fakeserver import FakeServer, Script, chunk, error, openai_calls, sse, text_stream
from tests.support.mcp_helpers import SERVERS
from tests.support.serving import post

ASK = {"model": "toolchat", "messages": [{"role": "user", "content": "Weather in Singapore?"}]}
UPSTREAM_KEY = "sk-upstream-" + "k3yv4lue" * 4


def echoing_key(key: str) -> list:
    """A stream whose answer carries the key cut across two deltas, as a hostile server would."""
    half = len(key) // 2
    pieces = ["Your header was: Bearer ", key[:half], key[half:], " - and that is all."]
    return [chunk({"role": "assistant", "content": ""}), *[chunk({"content": p}) for p in pieces], chunk(finish="stop")]


def answer_of(raw: str, stream: bool) -> str:
    if not stream:
        return json.loads(raw)["choices"][0]["message"]["content"]
    chunks = [json.loads(e.removeprefix("data: ")) for e in raw.strip().split("\n\n")[:-1]]
    return "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])


def test_serve_never_hands_the_upstream_key_to_a_client_streamed_or_not(upstream, serve):
    upstream.add(sse(echoing_key(UPSTREAM_KEY)), sse(echoing_key(UPSTREAM_KEY)))
    served = serve(env={"OPENAI_API_KEY": UPSTREAM_KEY})
    for stream in (False, True):
        status, _, raw = post(f"{served.url}/chat/completions", {**ASK, "stream": stream})
        text = raw.decode()
        assert status == 200, text
        assert answer_of(text, stream) == "Your header was: Bearer *** - and that is all."
        assert UPSTREAM_KEY[:8] not in text and UPSTREAM_KEY[-8:] not in text
        assert "k3yv4lue" not in text


def test_serve_hides_the_upstream_address_named_in_its_error_text(upstream, serve, isolated_env):
    Path(isolated_env["TOOLCHAT_CONFIG_DIR"], "config.yaml").write_text("max_retries: 0\n")
    netloc = urlsplit(upstream.url).netloc
    upstream.add(error(500, f"internal failure at {netloc} (see {upstream.url}/debug?id=7)"))
    upstream.add(error(500, f"internal failure at {netloc} (see {upstream.url}/debug?id=7)"))
    served = serve()
    for stream in (False, True):
        status, _, raw = post(f"{served.url}/chat/completions", {**ASK, "stream": stream})
        message = json.loads(raw.decode().removeprefix("data: ").split("\n\n")[0])["error"]["message"]
        assert status == 502, raw
        assert "internal failure at the model server" in message
        assert netloc not in raw.decode() and urlsplit(upstream.url).hostname not in raw.decode()


SNOOP = '''
import os

def snoop() -> str:
    """Report what this process can see of the user's secrets."""
    return "seen: " + ",".join(sorted(k for k in os.environ if "SECRET" in k or k == "SPARE")) + ";"
'''


def test_a_key_given_through_another_variable_never_reaches_a_tool(cli, plugin_dir, tmp_path):
    key = "tok-" + "private" * 4
    (tmp_path / "_config" / "config.yaml").write_text("api_key: ${MY_SECRET_TOKEN}\n")
    with FakeServer() as server:
        server.add(sse(openai_calls([("snoop", {})])), sse(text_stream("done")))
        done = cli(
            "ask",
            "--json",
            "--yes",
            "--tools",
            str(plugin_dir(snoop=SNOOP)),
            "--no-bundled-tools",
            "--base-url",
            server.url,
            "go",
            env={"MY_SECRET_TOKEN": key, "SECRET_OTHER_NAME_SAME_VALUE": key, "SPARE": "kept"},
        )
        assert not server.scripts
        sent = json.dumps(server.requests)
    assert done.returncode == 0, done.stderr
    assert "seen: SPARE;" in sent, sent[-600:]
    assert key not in sent and key not in done.stdout


def raw_mcp_config(folder: Path, tools: list[dict]) -> Path:
    """A config with one hand-written MCP server (tests/mcp_servers/raw.py) offering `tools`."""
    listed = folder / "tools.json"
    listed.write_text(json.dumps(tools))
    entry = {"command": sys.executable, "args": [str(SERVERS / "raw.py"), str(listed)]}
    path = folder / "toolchat.yaml"
    path.write_text(json.dumps({"mcp_servers": {"raw": entry}}))
    return path


class Counting:
    """A loopback HTTP server that counts every GET it is sent (a schema's $ref target)."""

    def __init__(self) -> None:
        hits = self.hits = []

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                hits.append(self.path)
                body = b'{"type": "string"}'
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_a_schema_ref_to_a_url_or_file_is_never_fetched_and_the_call_refused(cli, tmp_path):
    pytest.importorskip("mcp")
    target = Counting()
    secret_file = tmp_path / "secret.json"
    secret_file.write_text('{"type": "string"}')
    refs = {"fetch": f"{target.url}/internal/admin", "peek": secret_file.as_uri()}
    tools = [
        {"name": name, "description": "d", "inputSchema": {"type": "object", "properties": {"a": {"$ref": ref}}}}
        for name, ref in refs.items()
    ]
    tools.append(
        {
            "name": "local",
            "description": "refers only within itself",
            "inputSchema": {
                "$defs": {"s": {"type": "string"}},
                "type": "object",
                "properties": {"a": {"$ref": "#/$defs/s"}},
            },
        }
    )
    config = raw_mcp_config(tmp_path, tools)
    calls = [("raw__fetch", {"a": "x"}), ("raw__peek", {"a": "x"}), ("raw__local", {"a": "x"})]
    try:
        with FakeServer() as server:
            server.add(sse(openai_calls(calls)), sse(text_stream("done")))
            done = cli("ask", "-c", str(config), "--yes", "--no-bundled-tools", "--base-url", server.url, "go")
            answers = [m["content"] for m in server.requests[-1]["messages"] if m["role"] == "tool"]
    finally:
        target.close()
    assert done.returncode == 0, done.stderr
    assert target.hits == []
    fetch, peek, local = answers
    assert f"refers to {refs['fetch']}, which toolchat never fetches" in fetch
    assert f"refers to {refs['peek']}, which toolchat never fetches" in peek
    assert local == "ran local"


def gzip_of(head: bytes, zeros: int) -> bytes:
    """`head` then `zeros` zero bytes, gzip'd: a bomb of `zeros` bytes decoded, ~1/1000 on the wire."""
    packer = zlib.compressobj(9, zlib.DEFLATED, zlib.MAX_WBITS | 16)
    out = [packer.compress(head)]
    block = bytes(8 * 1024 * 1024)
    for _ in range(zeros // len(block)):
        out.append(packer.compress(block))
    out.append(packer.flush())
    return b"".join(out)


# ru_maxrss survives fork and exec: a child of this (large) test process would report the test's own
# peak. A small launcher forks the command from its own fresh memory and reports the command's peak.
_MEASURE = """
import os, sys
pid = os.fork()
if pid == 0:
    os.execv(sys.argv[2], sys.argv[2:])
_, status, usage = os.wait4(pid, 0)
open(sys.argv[1], "w").write(str(usage.ru_maxrss))
sys.exit(os.waitstatus_to_exitcode(status) % 256)
"""


def run_measured(args: list[str], env: dict[str, str], cwd: Path) -> tuple[int, str, float]:
    """`toolchat ARGS` as a subprocess: exit code, stderr and its peak RSS in MB (from wait4)."""
    peak = cwd / "peak.txt"
    with open(cwd / "out.txt", "wb") as out, open(cwd / "err.txt", "wb") as err:
        done = subprocess.run(
            [sys.executable, "-c", _MEASURE, str(peak), sys.executable, "-m", "toolchat", *args],
            stdout=out,
            stderr=err,
            stdin=subprocess.DEVNULL,
            env=env,
            cwd=cwd,
            start_new_session=True,
        )
    return done.returncode, (cwd / "err.txt").read_text(), int(peak.read_text()) / 1024


BOMB = 1024 * 1024 * 1024  # 1 GiB of zeros decoded, about 1 MB on the wire


@pytest.mark.parametrize("stream", [True, False], ids=["streamed", "no-stream"])
def test_a_gzip_bomb_from_the_model_server_is_stopped_at_the_ceiling_in_bounded_memory(stream, isolated_env, tmp_path):
    if stream:
        body, kind = gzip_of(b'data: {"choices": [{"index": 0, "delta": {"content": "', BOMB), "text/event-stream"
    else:
        body, kind = gzip_of(b'{"choices": [{"index": 0, "message": {"content": "', BOMB), "application/json"
    script = Script("raw", body=body, headers={"Content-Type": kind, "Content-Encoding": "gzip"})
    Path(isolated_env["TOOLCHAT_CONFIG_DIR"], "config.yaml").write_text("max_retries: 0\n")
    with FakeServer() as server:
        server.add(script)
        args = ["ask", "--base-url", server.url, "-m", "m", "hi"] + ([] if stream else ["--no-stream"])
        code, err, peak = run_measured(args, isolated_env, tmp_path)
    ceiling = "64 MB in one reply" if not stream else "16 MB in one line of its stream"
    assert code == 1, err
    assert f"the server sent more than {ceiling}" in err and len(err.strip().splitlines()) == 1, err
    assert peak < 400, f"peak RSS {peak:.0f} MB"  # bounded: the bomb drove it past 2 GB


def test_one_endless_sse_line_is_stopped_at_the_ceiling_in_bounded_memory(isolated_env, tmp_path):
    line = b'data: {"choices": [{"index": 0, "delta": {"content": "' + b"a" * (40 * 1024 * 1024)
    with FakeServer() as server:
        server.add(Script("raw", body=line, headers={"Content-Type": "text/event-stream"}))
        code, err, peak = run_measured(["ask", "--base-url", server.url, "-m", "m", "hi"], isolated_env, tmp_path)
    assert code == 1, err
    assert "the server sent more than 16 MB in one line of its stream" in err and len(err.strip().splitlines()) == 1
    assert peak < 400, f"peak RSS {peak:.0f} MB"  # bounded: the bomb drove it past 2 GB


def test_serve_is_bounded_by_the_same_ceiling(upstream, serve, isolated_env):
    Path(isolated_env["TOOLCHAT_CONFIG_DIR"], "config.yaml").write_text("max_retries: 0\n")
    body = gzip_of(b'{"choices": [{"index": 0, "message": {"content": "', BOMB // 4)
    upstream.add(Script("raw", body=body, headers={"Content-Type": "application/json", "Content-Encoding": "gzip"}))
    served = serve()
    status, _, raw = post(f"{served.url}/chat/completions", ASK)
    assert status == 502 and "the server sent more than 64 MB in one reply" in json.loads(raw)["error"]["message"]
    rss = int(Path(f"/proc/{served.process.pid}/status").read_text().split("VmHWM:")[1].split()[0]) / 1024
    assert rss < 400, f"serve's peak RSS {rss:.0f} MB"
