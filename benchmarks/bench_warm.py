"""Warm plugin parents (issue 29 item 1): the per-call cost of a plugin whose import takes 0.3 s
beside a light one, from the second call of a session on (the first pays the import once)."""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path

LIGHT = 'def ping() -> str:\n    """Answer."""\n    return "pong"\n'
HEAVY = "import time\ntime.sleep(0.3)\n" + LIGHT


def _per_call(module: Path, project: Path, calls: int) -> tuple[float, float]:
    from toolchat.tools import RunLimits
    from toolchat.tools.isolation import worker

    times = []
    for _ in range(calls):
        started = time.perf_counter()
        worker.run_call(str(module), "ping", {}, RunLimits(project))
        times.append(time.perf_counter() - started)
    return times[0], statistics.median(times[1:])


def section(quick: bool) -> list[str]:
    calls = 3 if quick else 21
    with tempfile.TemporaryDirectory(prefix="toolchat-bench-warm-") as folder:
        root = Path(folder)
        (root / "light.py").write_text(LIGHT)
        (root / "heavy.py").write_text(HEAVY)
        light = _per_call(root / "light.py", root, calls)
        heavy = _per_call(root / "heavy.py", root, calls)
    difference = (heavy[1] - light[1]) * 1000
    return [
        "",
        "## Warm plugin parents: a light plugin vs one whose import takes 0.3 s",
        "",
        f"Median of calls 2-{calls} of a session (the first call beside it); target: at most 10 ms more.",
        "",
        "| plugin | first call | each later call |",
        "| --- | --- | --- |",
        f"| light | {light[0] * 1000:.1f} ms | {light[1] * 1000:.1f} ms |",
        f"| 0.3 s import | {heavy[0] * 1000:.1f} ms | {heavy[1] * 1000:.1f} ms |",
        f"| difference from the second call on (target <= 10 ms) | | **{difference:+.1f} ms** |",
    ]
