"""`toolchat serve` under load: N concurrent streamed requests through the server to a loopback
upstream, against the same requests sent to the upstream directly (the overhead per request);
and concurrent requests on the local backend (queued, one at a time, all answered)."""

from __future__ import annotations

import asyncio
import os
import statistics
import time
from pathlib import Path
from typing import Any

from tests.support.echoserver import GAP, PIECES, EchoUpstream, async_client, burst
from tests.support.serving import Served

HERE = Path(__file__).resolve().parent


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def cpu_seconds(pid: int) -> float | None:
    """The user and system CPU time process `pid` has used so far (Linux's /proc), or None."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def overhead(env: dict[str, str], work: Path, plan: list[tuple[int, int]]) -> dict[int, dict[str, Any]]:
    """For each (concurrent, bursts) of `plan`: the latency of each streamed request, through
    `toolchat serve` and straight to the upstream, bursts alternating; `correct` counts answers
    through the server that were whole and the client's own, `cpu` the server's CPU time per request."""
    upstream = EchoUpstream()
    found: dict[int, dict[str, Any]] = {}
    try:
        with Served(["--base-url", upstream.url, "--no-tools"], env, work) as served:
            for url in (served.url, upstream.url):  # warm-up: connections, the upstream's model name
                asyncio.run(burst(url, 5))
            for concurrent, bursts in plan:
                samples: dict[str, list[float]] = {"served": [], "direct": []}
                correct, cpu = 0, 0.0
                for _ in range(bursts):
                    for side, url in (("served", served.url), ("direct", upstream.url)):
                        before = cpu_seconds(served.process.pid)
                        results = asyncio.run(burst(url, concurrent))
                        samples[side] += [seconds for seconds, _ in results]
                        if side == "served":
                            correct += sum(ok for _, ok in results)
                            cpu += (cpu_seconds(served.process.pid) or 0.0) - (before or 0.0)
                stats = {side: (statistics.median(v), percentile(v, 0.99)) for side, v in samples.items()}
                total = concurrent * bursts
                found[concurrent] = {"stats": stats, "correct": correct, "total": total, "cpu": cpu / total}
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
                    model="toolchat",
                    max_tokens=16,
                    temperature=0,
                    messages=[{"role": "user", "content": f"Count to {n + 2}."}],
                )
            except openai.APIStatusError as exc:
                return time.perf_counter() - started, exc.status_code, ""
            return time.perf_counter() - started, 200, response.choices[0].message.content or ""

        async def burst() -> list[tuple[float, int, str]]:
            async with async_client(served.url, timeout=600) as client:
                return await asyncio.gather(*(one(client, n) for n in range(concurrent)))

        started = time.perf_counter()
        results = asyncio.run(burst())
        wall = time.perf_counter() - started
    seconds = sorted(r[0] for r in results)
    return {
        "answered": sum(r[1] == 200 and bool(r[2].strip()) for r in results),
        "total": concurrent,
        "first": seconds[0],
        "last": seconds[-1],
        "wall": wall,
    }


def section(env: dict[str, str], work: Path, quick: bool) -> list[str]:
    concurrent, local = (10, 2) if quick else (50, 10)
    plan = [(1, 5 if quick else 30), (concurrent, 1 if quick else 4)]
    found = overhead(env, work, plan)
    lines = [
        "## 8. Serving (`toolchat serve`)",
        "",
        "Streamed requests through the server and straight to the upstream, in alternating bursts; the "
        f"upstream is a loopback server streaming {PIECES} chunks {GAP * 1000:g} ms apart (a fast model). "
        "Latency of each whole streamed request:",
        "",
        "| at once | requests | upstream directly p50 / p99 | through `toolchat serve` p50 / p99 "
        "| overhead p50 / p99 | server CPU per request |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for at_once, row in found.items():
        (s50, s99), (d50, d99) = row["stats"]["served"], row["stats"]["direct"]
        lines.append(
            f"| {at_once} | {row['total']} | {d50 * 1000:.0f} / {d99 * 1000:.0f} ms | "
            f"{s50 * 1000:.0f} / {s99 * 1000:.0f} ms | **{(s50 - d50) * 1000:+.0f} / {(s99 - d99) * 1000:+.0f} ms** "
            f"| {row['cpu'] * 1000:.1f} ms |"
        )
    checked = found[concurrent]
    lines += [
        "",
        f"Answers of the {concurrent}-at-once bursts complete and each the client's own (none mixed): "
        f"**{checked['correct']} of {checked['total']}**.",
        "",
        f"The server, the upstream and the clients share this machine's {os.cpu_count()} cores (load average "
        f"{os.getloadavg()[0]:.1f} at the end). One request at a time shows the fixed cost per request (a thread, "
        "an engine, the SDK's request and its parsing of the upstream's stream, the chunks written again); many "
        "at once, that CPU time queues on the cores, which is what the overhead at 50 measures: the server's CPU "
        "per request (its own accounting, from /proc) is the figure the load does not blur.",
    ]
    queue = local_queue(env, work, local)
    lines += [
        "",
        f"Local backend (bundled model, `--max-queue {local}`): {local} concurrent requests of up to 16 tokens, "
        f"served one at a time: **{queue['answered']} of {queue['total']} answered**; the first in "
        f"{queue['first']:.1f} s, the last (after waiting its turn) in {queue['last']:.1f} s.",
    ]
    return lines
