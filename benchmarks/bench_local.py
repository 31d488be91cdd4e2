"""Local backend benchmarks (issue: local GGUF backend; comparison 4 of benchmarks/run.py).

1. Generation speed: toolchat's LocalBackend vs raw `Llama.create_completion` on the same
   rendered prompt, same model, greedy, the KV cache reset before every run; runs alternate.
2. Prompt tokens evaluated per round over a 10-round tool loop: with a stable rendering only the
   new tokens (the tool result and turn markers) should be evaluated each round.
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path
from typing import Any


def _backend(gguf: Path, n_ctx: int = 4096) -> Any:
    from toolchat.backends.local import LocalBackend
    from toolchat.config.settings import Settings

    return LocalBackend(Settings(backend="local", model=str(gguf), n_ctx=n_ctx, seed=1), gguf.parent)


def generation_speed(gguf: Path, runs: int, tokens: int) -> dict[str, Any]:
    from toolchat.backends.base import Reply, Request

    ours = _backend(gguf)
    import llama_cpp

    raw = llama_cpp.Llama(str(gguf), n_gpu_layers=-1, n_ctx=4096, seed=1, verbose=False)
    messages = [{"role": "user", "content": "Write a long story about a lighthouse keeper and the sea."}]
    prompt = ours.llm.tokenize(ours.renderer.render(messages).encode(), add_bos=False, special=True)
    ours_rates, raw_rates = [], []
    for _ in range(runs):
        raw.reset()
        started = time.perf_counter()
        out = raw.create_completion(prompt, max_tokens=tokens, temperature=0.0, stop=["<end_of_turn>"])
        raw_rates.append(out["usage"]["completion_tokens"] / (time.perf_counter() - started))
        ours.llm.reset()
        started = time.perf_counter()
        reply = None
        for event in ours.complete(Request(messages, [], None, 0.0, tokens)):
            if isinstance(event, Reply):
                reply = event
        ours_rates.append(reply.usage.completion_tokens / (time.perf_counter() - started))
    ours_median, raw_median = statistics.median(ours_rates), statistics.median(raw_rates)
    return {"ours": ours_median, "raw": raw_median, "ratio": ours_median / raw_median}


def prompt_reuse(gguf: Path, rounds: int) -> list[dict[str, int]]:
    from toolchat.backends.base import Reply, Request
    from toolchat.tools import discover

    backend = _backend(gguf)
    tools = discover([]).definitions()
    messages: list[dict[str, Any]] = [{"role": "user", "content": "Check the weather in Oslo, then Lima, then Rome."}]
    rows, previous = [], 0
    for number in range(1, rounds + 1):
        forced = {"type": "function", "function": {"name": "get_weather"}}
        reply = None
        for event in backend.complete(Request(messages, tools, forced, 0.0, 64)):
            if isinstance(event, Reply):
                reply = event
        usage = reply.usage
        rows.append(
            {
                "round": number,
                "prompt": usage.prompt_tokens,
                "cached": usage.cached_tokens,
                "evaluated": usage.prompt_tokens - usage.cached_tokens,
                # tokens the model has never seen: not in the last prompt nor in what it generated
                "new": usage.prompt_tokens - previous if previous else usage.prompt_tokens,
            }
        )
        previous = usage.prompt_tokens + usage.completion_tokens
        call = reply.tool_calls[0]
        messages += [
            {"role": "assistant", "content": "", "tool_calls": [call.message_part()]},
            {"role": "tool", "tool_call_id": call.id, "content": f"Sunny, {18 + number}C"},
        ]
    return rows


# The README's questions, as a new user asks them of the bundled model ("Local models" states the result).
FIRST_RUN_QUESTIONS = ["What's the weather in Singapore?", "What's the weather in Oslo?", "Hello", "What's 17 * 23?"]


def first_run(cache: Path, runs: int) -> list[dict[str, Any]]:
    """`toolchat ask --yes --json QUESTION` with the bundled model and the default (random) seed,
    `runs` times per question: which tools were called with which arguments, and the answer."""
    import json
    import os
    import subprocess
    import sys
    import tempfile

    rows = []
    with tempfile.TemporaryDirectory() as home:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "TOOLCHAT_"))}
        env.update(
            TOOLCHAT_CACHE_DIR=str(cache), TOOLCHAT_CONFIG_DIR=f"{home}/config", TOOLCHAT_DATA_DIR=f"{home}/data"
        )
        for question in FIRST_RUN_QUESTIONS:
            for _ in range(runs):
                done = subprocess.run(
                    [sys.executable, "-m", "toolchat", "ask", "--yes", "--json", question],
                    capture_output=True,
                    text=True,
                    env=env,
                    cwd=home,
                    stdin=subprocess.DEVNULL,
                )
                result = json.loads(done.stdout)
                rows.append(
                    {
                        "question": question,
                        "answer": result["answer"],
                        "calls": [(c["name"], c["arguments"], c["status"]) for c in result["tool_calls"]],
                    }
                )
    return rows


if __name__ == "__main__":  # python benchmarks/bench_local.py [RUNS]: the first-run measurement
    import sys

    from toolchat.backends.bundled import bundled_model_path
    from toolchat.env import Environment

    for row in first_run(
        bundled_model_path(Environment().cache_dir).parent.parent, int(sys.argv[1]) if sys.argv[1:] else 5
    ):
        print(f"{row['question']!r:38} {row['calls']!s:70} {row['answer'][:90]!r}")
