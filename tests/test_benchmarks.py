"""The benchmarks run (smoke mode, as CI runs them); no times are asserted here."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("llama_cpp")

REPO = Path(__file__).resolve().parents[1]


def test_benchmarks_run_in_quick_mode(shared_cache, tmp_path, isolated_env):
    out = tmp_path / "results.md"
    done = subprocess.run(
        [
            sys.executable,
            str(REPO / "benchmarks" / "run.py"),
            "--quick",
            "--out",
            str(out),
            "--cache",
            str(shared_cache),
        ],
        capture_output=True,
        text=True,
        timeout=600,
        env={**isolated_env, "TOOLCHAT_BENCH_WORK": str(tmp_path / "work")},
    )
    assert done.returncode == 0, done.stderr
    text = out.read_text()
    assert "Machine:" in text and "| ratio (target >= 0.95x) |" in text
    assert "| 3 |" in text  # three rounds of the tool loop
    assert "| ratio toolchat / bare loop (target <= 1.2x) |" in text  # streamed tool-call arguments
    assert "## 10. REPL rendering" in text and "| 200 |" in text  # the REPL beside ask on one stream
    assert "## Calls of one reply at once" in text and "| 1 | " in text and "| 5 | " in text  # issue 29 item 2
