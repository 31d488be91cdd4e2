"""The REPL's rendering of a long streamed answer against `ask` on the same stream: a code block of
N lines, one line per delta, from the same loopback server. `ask` writes each delta to a pipe;
the REPL renders Markdown in a real pseudo-terminal (120x40) read as fast as it is written."""

from __future__ import annotations

import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from tests.support.fakeserver import FakeServer, chunk, sse
from tests.support.terminal import spawn

HERE = Path(__file__).resolve().parent


TOOLCHAT = [sys.executable, "-m", "toolchat"]


def code_block_stream(lines: int, language: str = "python") -> list[dict[str, Any]]:
    """An answer that is one fenced block of `lines` lines of Python, one line per delta."""
    deltas = [f"Here it is:\n\n```{language}\n"]
    deltas += [f"value_{n} = compute({n}, 'some text')  # line {n}\n" for n in range(lines)]
    deltas.append("```\nDONE-MARK\n")
    return [chunk({"role": "assistant", "content": ""}), *[chunk({"content": d}) for d in deltas], chunk(finish="stop")]


def ask_once(server: FakeServer, stream: list[dict[str, Any]], env: dict[str, str], cwd: Path) -> tuple[float, float]:
    """(wall seconds, CPU seconds) of one `ask` process."""
    server.add(sse(stream))
    cpu = _children_cpu()
    started = time.perf_counter()
    done = subprocess.run(
        [*TOOLCHAT, "ask", "--base-url", server.url, "-m", "fake", "--no-tools", "write it"],
        env=env,
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        start_new_session=True,
    )
    elapsed = time.perf_counter() - started
    if done.returncode != 0 or "DONE-MARK" not in done.stdout:
        raise RuntimeError(f"ask failed: {done.stderr[-500:]}")
    return elapsed, _children_cpu() - cpu


def _children_cpu() -> float:
    used = resource.getrusage(resource.RUSAGE_CHILDREN)
    return used.ru_utime + used.ru_stime


def _cpu(pid: int) -> float:
    """CPU seconds a live process has used (user and system), from /proc."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def repl_once(
    server: FakeServer, stream: list[dict[str, Any]], short: list[dict[str, Any]], env: dict[str, str], cwd: Path
) -> tuple[float, float, float, float]:
    """(whole process, the long turn, a one-line turn, the CPU seconds the long turn took more
    than the one-line one): start, a one-line turn to warm up, the long turn, a one-line turn (the
    cost of a turn that is not the stream's), Ctrl-D."""
    import pexpect

    server.add(sse(short), sse(stream), sse(short))
    started = time.perf_counter()
    child = spawn(
        "chat",
        "--base-url",
        server.url,
        "-m",
        "fake",
        "--no-tools",
        env={**env, "TERM": "xterm"},
        cwd=cwd,
        timeout=1800,
        maxread=65536,
        screen=False,  # the turn is timed by reading the pty itself, not through an emulator
    )
    try:
        child.expect("›")
        turns, cpus = [], []
        for _ in range(3):
            cpu, asked = _cpu(child.pid), time.perf_counter()
            child.send("write it\r")
            _read_until(child.child_fd, "DONE-MARK", "›")
            turns.append(time.perf_counter() - asked)
            cpus.append(_cpu(child.pid) - cpu)
        child.sendeof()
        child.expect(pexpect.EOF)  # what is left after the last prompt
    finally:
        child.close(force=True)
    return time.perf_counter() - started, turns[1], turns[2], cpus[1] - cpus[2]


def _read_until(fd: int, *marks: str) -> None:
    """Read the terminal as a lean terminal would (no pattern search over what came before) until
    each mark has appeared, in order."""
    import os
    import select

    tail = b""
    for mark in (m.encode() for m in marks):
        while mark not in tail:
            select.select([fd], [], [], 60)
            tail = tail[-64:] + os.read(fd, 1 << 20)
        tail = tail[tail.index(mark) + len(mark) :]


def compare(lines_list: list[int], runs: int, env: dict[str, str], language: str = "python") -> list[dict[str, Any]]:
    """Medians per size: `ask` whole and on a one-line answer (its cost besides the stream); the REPL
    whole, its long turn and a one-line turn (its cost besides the stream); the CPU seconds each
    side's stream took (`ask_cpu`, `repl_cpu`: steadier than wall time on a shared machine)."""
    results = []
    with FakeServer(models=["fake"]) as server, tempfile.TemporaryDirectory() as folder:
        cwd = Path(folder)
        for lines in lines_list:
            stream, short = code_block_stream(lines, language), code_block_stream(1, language)
            samples: dict[str, list[float]] = {
                key: [] for key in ("ask", "ask_start", "repl", "turn", "turn_short", "ask_cpu", "repl_cpu")
            }
            for _ in range(runs):  # alternate, so both sides see the same machine
                (whole, cpu), (start, start_cpu) = ask_once(server, stream, env, cwd), ask_once(server, short, env, cwd)
                samples["ask"].append(whole)
                samples["ask_start"].append(start)
                samples["ask_cpu"].append(cpu - start_cpu)
                whole, turn, turn_short, turn_cpu = repl_once(server, stream, short, env, cwd)
                samples["repl"].append(whole)
                samples["turn"].append(turn)
                samples["turn_short"].append(turn_short)
                samples["repl_cpu"].append(turn_cpu)
            results.append(
                {"lines": lines, "language": language, **{k: statistics.median(v) for k, v in samples.items()}}
            )
    return results


def section(lines_list: list[int], runs: int, env: dict[str, str]) -> list[str]:
    rows = compare(lines_list, runs, env) + compare(lines_list, runs, env, "text")
    lines = [
        "## 10. REPL rendering of a long streamed answer",
        "",
        f"A fenced block of N lines of Python streamed one line per delta from the loopback server, tagged "
        f"`python` (the REPL highlights it) or `text` (it does not); median of {runs} alternating run(s). `ask` "
        "writes each delta to a pipe; the REPL renders Markdown in a real pseudo-terminal (120x40) read as "
        "fast as it is written. Whole: the process, start to "
        "exit (the REPL: start, three turns, Ctrl-D). Stream: the time the N-line answer adds over a one-line "
        "one (`ask`: two processes; the REPL: two turns of one session, question sent to prompt back). "
        "Stream CPU: the CPU seconds of the same difference (`ask`'s includes the noise of two process "
        "start-ups; the REPL's is read between turns of one process, the steadier figure).",
        "",
        "| block | lines | `ask` whole | REPL whole | `ask` stream | REPL stream "
        "| ratio REPL / `ask` stream (target <= 2x) | `ask` stream CPU | REPL stream CPU |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in rows:
        ask, repl = max(r["ask"] - r["ask_start"], 1e-3), max(r["turn"] - r["turn_short"], 1e-3)
        kind = "Python, highlighted" if r["language"] == "python" else "plain text"
        ratio = f"**{repl / ask:.2f}x**" if ask >= 0.1 else "n/a (below the start-up noise)"
        lines.append(
            f"| {kind} | {r['lines']:,} | {r['ask']:.2f} s | {r['repl']:.2f} s | {ask:.2f} s | {repl:.2f} s | {ratio} "
            f"| {r['ask_cpu']:.2f} s | {r['repl_cpu']:.2f} s |"
        )
    return lines
