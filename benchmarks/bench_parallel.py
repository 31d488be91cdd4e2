"""The calls of one reply at once (issue 29 item 2): five calls of a plugin tool that sleeps 1 s, in
one reply, run one after another (`tools.parallel: 1`) beside run together (the default 4, and 5),
through the real engine and tool worker; the model is a scripted backend, so the figure is the
tool round's own. Runs alternate, side by side; the medians are reported."""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

SLEEPY = """import time


def sleepy(n: int) -> str:
    \"\"\"Sleep, then answer.\"\"\"
    time.sleep({seconds})
    return f"slept {{n}}"
"""
CALLS = 5


def _turn(plugin: Path, project: Path, parallel: int) -> float:
    from tests.support.fakes import ScriptedBackend, answer, call, calls

    from toolchat.engine import Engine, Policy
    from toolchat.tools import RunLimits, discover

    backend = ScriptedBackend(calls(*[call("sleepy", {"n": n}, id=f"call_{n}") for n in range(CALLS)]), answer("Ok."))
    engine = Engine(
        backend,
        discover([plugin], bundled=False),
        approve=lambda pending: None,
        on_event=lambda event: None,
        policy=Policy(approve_all=True),
        limits=RunLimits(project),
        parallel=parallel,
    )
    started = time.perf_counter()
    result = engine.run_turn("Sleep five times.")
    seconds = time.perf_counter() - started
    assert [record.output for record in result.calls] == [f"slept {n}" for n in range(CALLS)], result.calls
    return seconds


def section(quick: bool) -> list[str]:
    seconds, runs = (0.1, 1) if quick else (1.0, 5)
    widths = (1, 4, 5)
    with tempfile.TemporaryDirectory(prefix="toolchat-bench-parallel-") as folder:
        root = Path(folder)
        plugin = root / "sleepy.py"
        plugin.write_text(SLEEPY.format(seconds=seconds))
        times: dict[int, list[float]] = {width: [] for width in widths}
        for _ in range(runs):  # alternating: the machine's load falls on every width alike
            for width in widths:
                times[width].append(_turn(plugin, root, width))
    median = {width: statistics.median(found) for width, found in times.items()}
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    target = 1.5 * seconds
    return [
        "",
        "## Calls of one reply at once (`benchmarks/bench_parallel.py`, section of `run.py`)",
        "",
        f"{CALLS} calls of a plugin tool that sleeps {seconds:g} s, in one reply, through the engine and the",
        f"tool worker (scripted model); median of {runs} alternating runs; load average {load:.1f} at the end;",
        f"Python {sys.version.split()[0]}. Target: under {target:g} s run together.",
        "",
        "| `tools.parallel` | the tool round | against one after another |",
        "| --- | --- | --- |",
        *(_row(width, median[width], median[1], target) for width in widths),
    ]


def _row(width: int, seconds: float, alone: float, target: float) -> str:
    label = f"{width} (default)" if width == 4 else str(width)
    goal = f" **(target: < {target:g} s)**" if width == CALLS else ""
    return f"| {label} | {seconds:.2f} s | {seconds / alone:.2f}x{goal} |"


if __name__ == "__main__":  # one section alone: python benchmarks/bench_parallel.py [--quick]
    sys.path[:0] = [str(Path(__file__).resolve().parents[1]), str(Path(__file__).resolve().parents[1] / "cli")]
    print("\n".join(section("--quick" in sys.argv)))
