"""The REPL's rendering of a long streamed answer against `ask` on the same stream: a code block of
N lines, one line per delta, from the same loopback server. `ask` writes each delta to a pipe;
the REPL renders Markdown in a real pseudo-terminal (120x40) read as fast as it is written."""

from __future__ import annotations

import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))

from fakeserver import FakeServer, chunk, sse  # noqa: E402

TOOLCHAT = [sys.executable, "-m", "toolchat"]


def code_block_stream(lines: int) -> list[dict[str, Any]]:
    """An answer that is one fenced Python block of `lines` lines, one line per delta."""
    deltas = ["Here it is:\n\n```python\n"]
    deltas += [f"value_{n} = compute({n}, 'some text')  # line {n}\n" for n in range(lines)]
    deltas.append("```\nDONE-MARK\n")
    return [chunk({"role": "assistant", "content": ""}), *[chunk({"content": d}) for d in deltas],
            chunk(finish="stop")]


def ask_once(server: FakeServer, stream: list[dict[str, Any]], env: dict[str, str], cwd: Path) -> float:
    server.add(sse(stream))
    started = time.perf_counter()
    done = subprocess.run([*TOOLCHAT, "ask", "--base-url", server.url, "-m", "fake", "--no-tools", "write it"],
                          env=env, cwd=cwd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          text=True, start_new_session=True)
    elapsed = time.perf_counter() - started
    if done.returncode != 0 or "DONE-MARK" not in done.stdout:
        raise RuntimeError(f"ask failed: {done.stderr[-500:]}")
    return elapsed


def repl_once(server: FakeServer, stream: list[dict[str, Any]], env: dict[str, str], cwd: Path) -> tuple[float, float]:
    """(whole process, the turn alone): start, ask, wait for the answer and the prompt, leave."""
    import pexpect

    server.add(sse(stream))
    started = time.perf_counter()
    child = pexpect.spawn(TOOLCHAT[0], [*TOOLCHAT[1:], "chat", "--base-url", server.url, "-m", "fake", "--no-tools"],
                          env={**env, "PROMPT_TOOLKIT_NO_CPR": "1", "TERM": "xterm"}, cwd=str(cwd),
                          encoding="utf-8", timeout=1800, dimensions=(40, 120), maxread=65536)
    try:
        child.expect("›")
        asked = time.perf_counter()
        child.send("write it\r")
        child.expect("DONE-MARK", searchwindowsize=200)
        child.expect("›", searchwindowsize=200)
        turn = time.perf_counter() - asked
        child.sendeof()
        child.expect(pexpect.EOF)
    finally:
        child.close(force=True)
    return time.perf_counter() - started, turn


def compare(lines_list: list[int], runs: int, env: dict[str, str]) -> list[dict[str, Any]]:
    results = []
    with FakeServer(models=["fake"]) as server, tempfile.TemporaryDirectory() as folder:
        cwd = Path(folder)
        for lines in lines_list:
            stream = code_block_stream(lines)
            asks, repls, turns = [], [], []
            for _ in range(runs):  # alternate, so both sides see the same machine
                asks.append(ask_once(server, stream, env, cwd))
                whole, turn = repl_once(server, stream, env, cwd)
                repls.append(whole)
                turns.append(turn)
            results.append({"lines": lines, "ask": statistics.median(asks), "repl": statistics.median(repls),
                            "turn": statistics.median(turns)})
    return results


def section(lines_list: list[int], runs: int, env: dict[str, str]) -> list[str]:
    rows = compare(lines_list, runs, env)
    lines = ["## 7. REPL rendering of a long streamed answer", "",
             f"A fenced code block of N lines streamed one line per delta from the loopback server; median of "
             f"{runs} alternating runs. `ask` writes each delta to a pipe; the REPL renders Markdown in a real "
             "pseudo-terminal (120x40), whole process (start, one turn, Ctrl-D) and the turn alone:", "",
             "| lines | `ask` | REPL | REPL turn | ratio REPL / `ask` (target <= 2x) |",
             "| --- | --- | --- | --- | --- |"]
    lines += [f"| {r['lines']:,} | {r['ask']:.2f} s | {r['repl']:.2f} s | {r['turn']:.2f} s | **{r['repl'] / r['ask']:.2f}x** |"
              for r in rows]
    return lines
