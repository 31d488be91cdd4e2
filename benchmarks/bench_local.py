"""Local backend benchmarks (issue: local GGUF backend; comparison 4 of benchmarks/run.py).

1. Generation speed: toolchat's LocalBackend vs raw `Llama.create_completion` on the same
   rendered prompt, same model, greedy, the KV cache reset before every run; runs alternate.
2. Prompt tokens evaluated per round over a 10-round tool loop: with a stable rendering only the
   new tokens (the tool result and turn markers) should be evaluated each round.
3. The README's questions in a row in one REPL session (`conversation`): seconds to the first
   token and prompt tokens cached per question, this checkout beside an older one, interleaved.
4. A tool round with a reasoning template (`reasoning_reuse`): the bundled weights with a
   Qwen3-style template; the second round reuses the first round's prompt, reasoning and call.
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

    from toolchat.backends.llama_io import loading_without_amx

    with loading_without_amx(llama_cpp):  # as toolchat loads it: where the build has AMX kernels, they crash
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


def session(cache: Path, folder: Path) -> list[dict[str, Any]]:
    """One REPL session of the README's questions in a row, through the engine the REPL builds for
    the bundled model (default temperature and seed, every call approved): per question the
    seconds from sending it to the model's first generated token, and the prompt tokens cached."""
    import toolchat
    from toolchat.backends.local import LocalBackend
    from toolchat.config.settings import Settings
    from toolchat.engine import Engine
    from toolchat.tools import discover

    settings = Settings(backend="local", model="bundled", project_dir=folder)
    backend = LocalBackend(settings, cache)
    engine = Engine.from_settings(
        settings, backend, discover([]), approve=lambda p: None, on_event=lambda e: None, approve_all=True
    )
    firsts: list[float] = []
    generate = backend._generate

    def timed(*args: Any) -> Any:  # the first piece of each model call: its prompt is evaluated
        for number, piece in enumerate(generate(*args)):
            if number == 0:
                firsts.append(time.perf_counter())
            yield piece

    backend._generate = timed
    rows = []
    for question in FIRST_RUN_QUESTIONS:
        firsts.clear()
        started = time.perf_counter()
        result = engine.run_turn(question)
        rows.append(
            {
                "question": question,
                "first_token": firsts[0] - started,
                "prompt": result.rounds[0].prompt_tokens,
                "cached": result.rounds[0].cached_tokens,
                "rounds": [(u.prompt_tokens, u.cached_tokens) for u in result.rounds],
                "calls": [(c.name, c.arguments) for c in result.calls],
                "answer": result.answer,
                "code": str(Path(toolchat.__file__).parent),
            }
        )
    backend.close()
    return rows


def conversation(cache: Path, runs: int, before: Path | None) -> dict[str, list[list[dict[str, Any]]]]:
    """`runs` sessions of this checkout (`after`) and, if given, of the checkout `before`, each in
    its own process, alternating sides."""
    import json
    import os
    import subprocess
    import sys
    import tempfile

    sides = {"after": Path(__file__).resolve().parents[1] / "cli"}
    if before is not None:
        sides = {"before": before.resolve() / "cli", **sides}
    results: dict[str, list[list[dict[str, Any]]]] = {side: [] for side in sides}
    for _ in range(runs):
        for side, code in sides.items():
            with tempfile.TemporaryDirectory() as folder:
                env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "TOOLCHAT_"))}
                done = subprocess.run(
                    [sys.executable, __file__, "session", str(cache), folder],
                    env={**env, "PYTHONPATH": str(code)},
                    capture_output=True,
                    text=True,
                    check=True,
                    cwd=folder,
                )
            rows = json.loads(done.stdout.splitlines()[-1])
            assert all(Path(row["code"]) == code / "toolchat" for row in rows), rows[0]["code"]
            results[side].append(rows)
    return results


def conversation_table(results: dict[str, list[list[dict[str, Any]]]]) -> list[str]:
    """Per question from the second on: median seconds to the first token and the share of the
    first round's prompt that was cached (median, lowest), each side beside the other."""
    lines = [
        "| question | side | first token (s, median) | cached of prompt (median) | lowest | answered |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for index, question in enumerate(FIRST_RUN_QUESTIONS[1:], start=1):
        for side, sessions in results.items():
            rows = [rows[index] for rows in sessions]
            shares = [row["cached"] / row["prompt"] for row in rows]
            seconds = statistics.median(row["first_token"] for row in rows)
            answers = "; ".join(sorted({repr(row["answer"][:40]) for row in rows}))
            lines.append(
                f"| {index + 1}. {question} | {side} | {seconds:.2f} | {statistics.median(shares):.0%} "
                f"| {min(shares):.0%} | {answers} |"
            )
    return lines


def reasoning_reuse(gguf: Path, folder: Path) -> dict[str, Any]:
    """The bundled weights with tests/templates/qwen3-think.jinja (reasoning in <think>, rendered
    back as `reasoning_content`, a generation prompt that opens <think>), through the engine, greedy:
    the first round writes reasoning and a call; the second round's prompt repeats both."""
    from tests.support.bundled import REASONED, with_chat_template

    from toolchat.backends.local import LocalBackend
    from toolchat.config.settings import Settings
    from toolchat.engine import Engine
    from toolchat.tools import discover

    template = (Path(__file__).resolve().parents[1] / "tests" / "templates" / "qwen3-think.jinja").read_text()
    made = with_chat_template(gguf, folder / "gemma-as-qwen3-think.gguf", template)
    settings = Settings(
        backend="local", model=str(made), n_ctx=4096, temperature=0.0, max_tokens=96, max_rounds=2, project_dir=folder
    )
    backend = LocalBackend(settings, folder)
    everything = discover([])
    registry = everything.without(
        t["function"]["name"] for t in everything.definitions() if t["function"]["name"] != "get_weather"
    )
    engine = Engine.from_settings(
        settings, backend, registry, approve=lambda p: None, on_event=lambda e: None, approve_all=True
    )
    for message in REASONED:
        engine.conversation.append(message)
    result = engine.run_turn("What's the weather in Oslo?")
    first, second = result.rounds[:2]
    called = next(m for m in engine.messages if m["role"] == "assistant" and m.get("tool_calls") and "Oslo" in str(m))
    backend.close()
    return {
        "format": backend.format,
        "first_prompt": first.prompt_tokens,
        "first_generated": first.completion_tokens,
        "second_prompt": second.prompt_tokens,
        "second_cached": second.cached_tokens,
        "reasoning": (called.get("reasoning") or {}).get("text", ""),
        "rendered_again": bool(called.get("reasoning")) and called["reasoning"]["text"] in backend._prompt,
        "call": [(c.name, c.arguments) for c in result.calls][:1],
    }


if __name__ == "__main__":
    # python benchmarks/bench_local.py [RUNS]: the first-run measurement
    # python benchmarks/bench_local.py conversation [RUNS] [BEFORE_CHECKOUT]: the REPL session, beside BEFORE
    # python benchmarks/bench_local.py reasoning: a tool round with a reasoning template
    import json
    import sys
    import tempfile

    from toolchat.backends.bundled import bundled_model_path
    from toolchat.env import Environment

    args = sys.argv[1:]
    if args[:1] == ["session"]:  # one session, for `conversation`: its rows as one JSON line
        print(json.dumps(session(Path(args[1]), Path(args[2]))))
        sys.exit()
    cache = bundled_model_path(Environment().cache_dir).parent.parent
    if args[:1] == ["reasoning"]:
        with tempfile.TemporaryDirectory() as folder:
            print(json.dumps(reasoning_reuse(bundled_model_path(cache), Path(folder))))
        sys.exit()
    if args[:1] == ["conversation"]:
        found = conversation(cache, int(args[1]) if args[1:] else 5, Path(args[2]) if args[2:] else None)
        print(json.dumps(found))
        print("\n".join(conversation_table(found)))
        sys.exit()
    for row in first_run(cache, int(args[0]) if args else 5):
        print(f"{row['question']!r:38} {row['calls']!s:70} {row['answer'][:90]!r}")
