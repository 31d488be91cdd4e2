"""Compaction's own cost beside what it saved: long turns against a small window, each stage's
tokens before and after, and the summary call's time and tokens. Full runs use the bundled model
in-process (its window 2,048 tokens); `--quick` uses the loopback server with a small window
(tests/support/windowed.py), so the smoke run stays fast."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from tests.support.windowed import WindowedServer, plain_engine


def _measure(backend: Any, settings: Any, turns: int, folder: Path) -> dict[str, float]:
    from toolchat.engine import Compacted

    events: list = []
    engine = plain_engine(backend, settings, events, folder)
    started = time.perf_counter()
    for n in range(turns):
        engine.run_turn(f"Note {n}: " + "the sky is blue and the grass is green. " * 30 + " Ok?")
    total = time.perf_counter() - started
    stages = [e for e in events if isinstance(e, Compacted)]
    summaries = [e for e in stages if e.stage == "summary"]
    return {
        "turns": turns,
        "total_s": total,
        "stages": len(stages),
        "saved": sum(e.before - e.after for e in stages),
        "summaries": len(summaries),
        "summary_s": sum(e.seconds for e in summaries),
        "summary_tokens": sum((e.usage.prompt_tokens + e.usage.completion_tokens) if e.usage else 0 for e in summaries),
    }


def section(quick: bool, gguf: Path | None, folder: Path) -> list[str]:
    from toolchat.config.settings import Settings

    if quick or gguf is None:
        from toolchat.backends.openai import OpenAIBackend

        with WindowedServer(3000) as server:
            settings = Settings(base_url=server.url, model="small", stream=False)
            result = _measure(OpenAIBackend(settings, {}), settings, 6, folder)
        where = "loopback server, 3,000-token window (overhead only)"
    else:
        from toolchat.backends.local import LocalBackend

        settings = Settings(backend="local", model=str(gguf), n_ctx=2048, max_tokens=24)
        result = _measure(LocalBackend(settings, folder), settings, 8, folder)
        where = "bundled model in-process, n_ctx 2,048"
    return [
        "## 13. Compaction: its own cost beside what it saved",
        "",
        f"{where}; {result['turns']} turns of about 300 tokens each.",
        "",
        "| turns | whole run (s) | stages | tokens saved | summary calls | summary time (s) | summary tokens |",
        "| --- | --- | --- | --- | --- | --- | --- |",
        f"| {result['turns']} | {result['total_s']:.2f} | {result['stages']} | {result['saved']:,} | "
        f"{result['summaries']} | {result['summary_s']:.2f} | {result['summary_tokens']:,} |",
    ]
