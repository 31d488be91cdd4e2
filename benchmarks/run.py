"""Benchmarks, one command: `python benchmarks/run.py` writes benchmarks/RESULTS.md;
`--quick` is the smoke mode CI runs (few iterations, results to a temporary file, no targets
asserted)."""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))


def machine() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    import llama_cpp

    gpu = "GPU offload available" if llama_cpp.llama_supports_gpu_offload() else "CPU-only llama.cpp build"
    return (f"{platform.node()}: {os.cpu_count()} cores, {cpu}, Python {platform.python_version()}, "
            f"llama-cpp-python {llama_cpp.__version__} ({gpu})")


def bundled_gguf(cache: Path) -> Path:
    from toolchat.backends.bundled import bundled_model_path

    return bundled_model_path(cache)


def local_section(gguf: Path, quick: bool) -> list[str]:
    import bench_local

    runs, tokens, rounds = (1, 16, 3) if quick else (5, 128, 10)
    speed = bench_local.generation_speed(gguf, runs, tokens)
    rows = bench_local.prompt_reuse(gguf, rounds)
    lines = [
        "## 4. Local backend (bundled Gemma 3 270M Q4_K_M)",
        "",
        f"Generation, median of {runs} alternating runs of up to {tokens} tokens, greedy, KV cache reset each run:",
        "",
        "| | tokens/s |",
        "| --- | --- |",
        f"| raw `Llama.create_completion` | {speed['raw']:.1f} |",
        f"| toolchat `LocalBackend` | {speed['ours']:.1f} |",
        f"| ratio (target >= 0.95x) | **{speed['ratio']:.2f}x** |",
        "",
        f"Prompt tokens evaluated per round over a {rounds}-round tool loop (forced `get_weather` each round):",
        "",
        "| round | prompt | reused (cached) | evaluated | new (not in the last prompt or generation) |",
        "| --- | --- | --- | --- | --- |",
    ]
    lines += [f"| {r['round']} | {r['prompt']} | {r['cached']} | {r['evaluated']} | {r['new']} |" for r in rows]
    later = rows[1:]
    if later:
        extra = max(r["evaluated"] - r["new"] for r in later)
        lines += ["", f"From round 2 on, evaluated minus new is at most {extra} token(s) (a negative value means "
                      "part of the re-rendered reply differs from what was generated and is evaluated again; "
                      "positive, llama.cpp replays the last reused token): only the new tokens are evaluated."]
    return lines


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="smoke mode: few iterations, no RESULTS.md")
    parser.add_argument("--out", type=Path, default=HERE / "RESULTS.md")
    parser.add_argument("--cache", type=Path, default=Path(os.environ.get("TOOLCHAT_CACHE_DIR", HERE / ".cache")))
    args = parser.parse_args()
    started = time.time()
    lines = ["# Benchmark results", "", f"Machine: {machine()}", "",
             f"Date: {time.strftime('%Y-%m-%d %H:%M %Z')}; command: `python benchmarks/run.py"
             f"{' --quick' if args.quick else ''}`", ""]
    lines += local_section(bundled_gguf(args.cache), args.quick)
    lines += ["", f"Total run time: {time.time() - started:.0f} s", ""]
    args.out.write_text("\n".join(lines))
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
