"""Command-line comparisons: start-up, a one-tool round trip, 30-round loop overhead, tool
discovery with many plugins, and REPL memory. Each comparison runs its sides alternately and
reports medians."""

from __future__ import annotations

import os
import resource
import statistics
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.support.fakeserver import FakeServer, openai_calls, sse, text_stream

HERE = Path(__file__).resolve().parent


TOOLCHAT = [sys.executable, "-m", "toolchat"]
WEATHER = [("get_weather", {"city": "Singapore"})]
LLM_FUNCTION = 'def get_weather(city: str) -> str:\n    "Get weather information"\n    return f"sunny in {city}"\n'


def timed(command: list[str], env: dict[str, str], cwd: Path) -> float:
    started = time.perf_counter()
    done = subprocess.run(
        command,
        env=env,
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed: {done.stderr[-500:]}")
    return elapsed


def alternate(sides: dict[str, Callable[[], float]], runs: int) -> dict[str, float]:
    samples: dict[str, list[float]] = {name: [] for name in sides}
    for _ in range(runs):
        for name, run in sides.items():
            samples[name].append(run())
    return {name: statistics.median(values) for name, values in samples.items()}


def llm_command(llm_venv: Path | None) -> list[str] | None:
    if llm_venv is None:
        return None
    return [str(llm_venv / "bin" / "llm")]


def startup(env: dict[str, str], work: Path, runs: int, llm: list[str] | None) -> dict[str, float]:
    sides = {
        "toolchat --help": lambda: timed([*TOOLCHAT, "--help"], env, work),
        "toolchat tools list": lambda: timed([*TOOLCHAT, "tools", "list"], env, work),
    }
    if llm:
        sides["llm --help"] = lambda: timed([*llm, "--help"], env, work)
    return alternate(sides, runs)


def round_trip(env: dict[str, str], work: Path, runs: int, llm: list[str] | None) -> dict[str, float]:
    with FakeServer(models=["fake"]) as server:
        llm_home = work / "llm-home"
        llm_home.mkdir(exist_ok=True)
        (llm_home / "extra-openai-models.yaml").write_text(
            textwrap.dedent(f"""\
            - model_id: fake-local
              model_name: fake
              api_base: "{server.url}"
              supports_tools: true
            """)
        )

        def toolchat() -> float:
            server.add(sse(openai_calls(WEATHER)), sse(text_stream("It is sunny.")))
            return timed(
                ask_rounds(server, work, 1),
                env,
                work,
            )

        def llm_side() -> float:
            server.add(sse(openai_calls(WEATHER)), sse(text_stream("It is sunny.")))
            return timed(
                [*llm, "-m", "fake-local", "--functions", LLM_FUNCTION, "weather?"],
                {**env, "LLM_USER_PATH": str(llm_home)},
                work,
            )

        def bare() -> float:
            server.add(sse(openai_calls(WEATHER)), sse(text_stream("It is sunny.")))
            return timed([sys.executable, str(HERE / "bare_loop.py"), server.url, "weather?"], env, work)

        sides = {"toolchat ask --yes": toolchat, "bare openai-SDK script, one tool round": bare}
        if llm:
            sides["llm --functions"] = llm_side
        return alternate(sides, runs)


def ask_rounds(server: Any, work: Path, rounds: int, *flags: str) -> list[str]:
    """`toolchat ask` running `rounds` weather calls (the plugin tool) against `server`."""
    return [
        *TOOLCHAT,
        "ask",
        "--yes",
        "-q",
        "--max-rounds",
        str(rounds + 1),
        "--base-url",
        server.url,
        "-m",
        "fake",
        "--no-bundled-tools",
        "--tools",
        str(work / "plugins" / "weather.py"),
        *flags,
        "weather?",
    ]


def loop_overhead(env: dict[str, str], work: Path, runs: int, rounds: int) -> dict[str, float]:
    with FakeServer(models=["fake"]) as server:

        def script() -> None:
            server.add(*[sse(openai_calls(WEATHER)) for _ in range(rounds)], sse(text_stream("Done.")))

        def toolchat() -> float:
            script()
            return timed(ask_rounds(server, work, rounds), env, work)

        def bare() -> float:
            script()
            return timed([sys.executable, str(HERE / "bare_loop.py"), server.url, "weather?"], env, work)

        return alternate(
            {f"toolchat ask, {rounds} tool rounds": toolchat, f"bare openai-SDK loop, {rounds} tool rounds": bare}, runs
        )


def sandbox_cost(env: dict[str, str], work: Path, runs: int, rounds: int) -> dict[str, float]:
    """The same tool loop with each call sandboxed (the default) and with `--no-sandbox`."""
    with FakeServer(models=["fake"]) as server:

        def side(*flags: str) -> Callable[[], float]:
            def run() -> float:
                server.add(*[sse(openai_calls(WEATHER)) for _ in range(rounds)], sse(text_stream("Done.")))
                return timed(ask_rounds(server, work, rounds, *flags), env, work)

            return run

        return alternate(
            {f"sandboxed, {rounds} tool rounds": side(), f"--no-sandbox, {rounds} tool rounds": side("--no-sandbox")},
            runs,
        )


def discovery(env: dict[str, str], work: Path, runs: int, sizes: list[int]) -> dict[str, float]:
    results = {}
    for size in sizes:
        folder = work / f"many-{size}"
        folder.mkdir(exist_ok=True)
        for n in range(size):
            (folder / f"plugin_{n:03d}.py").write_text(
                f"import json\n\n\ndef tool_{n:03d}(text: str, count: int = 1) -> str:\n"
                f'    """Tool number {n}.\n\n    Args:\n        text: Some text\n        count: How many\n    """\n'
                f"    return json.dumps([text] * count)\n"
            )
        command = [*TOOLCHAT, "tools", "list", "--no-bundled-tools", "--tools", str(folder)]
        timed(command, env, work)  # the first run fills the schema cache
        results[f"tools list, {size} plugin modules"] = statistics.median(
            timed(command, env, work) for _ in range(runs)
        )
    return results


def memory(turns_list: list[int]) -> dict[str, float]:
    """Peak RSS (MB) of a REPL session after N turns, each with a tool call, in a fresh process."""
    results = {}
    for turns in turns_list:
        code = textwrap.dedent(f"""
            import sys
            sys.path.insert(0, {str(HERE.parent)!r})  # the repository root: tests.support
            from tests.support.fakeserver import FakeServer, openai_calls, sse, text_stream
            from rich.console import Console
            from pathlib import Path
            import tempfile
            from toolchat.backends.openai import OpenAIBackend
            from toolchat.terminal.session import ReplOptions, ReplSession
            from toolchat.config.settings import Settings
            from toolchat.env import Environment
            from toolchat.tools import discover
            work = Path(tempfile.mkdtemp())
            with FakeServer(models=["fake"]) as server:
                settings = Settings(backend="openai", base_url=server.url, model="fake", project_dir=work)
                backend = OpenAIBackend(settings, {{}})
                env = Environment(cwd=work, environ={{"TOOLCHAT_DATA_DIR": str(work / "data")}})
                console = Console(file=open("/dev/null", "w"), width=100)
                chat = ReplSession(env, settings, discover([]), backend, ReplOptions(approve_all=True), console,
                            reload=lambda p, m: (settings, backend))
                for n in range({turns}):
                    server.add(sse(openai_calls([("get_weather", {{"city": f"City {{n}}"}})])),
                               sse(text_stream("It is sunny in City " + str(n) + ". " * 20)))
                    chat.turn(f"weather in city {{n}}?")
                    server.requests.clear(); server.headers.clear()  # the harness's memory, not toolchat's
            # VmHWM, not ru_maxrss: ru_maxrss survives exec and would report the benchmark's own peak
            peak = [l for l in open("/proc/self/status") if l.startswith("VmHWM:")][0].split()[1]
            print(int(peak) / 1024)
        """)
        done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600)
        if done.returncode != 0:
            raise RuntimeError(done.stderr[-800:])
        results[f"peak RSS after {turns} turn(s), MB"] = float(done.stdout.strip().splitlines()[-1])
    return results


def prepare(work: Path) -> None:
    plugins = work / "plugins"
    plugins.mkdir(parents=True, exist_ok=True)
    (plugins / "weather.py").write_text(
        'def get_weather(city: str) -> str:\n    """Get weather information.\n\n    Args:\n        city: The city\n'
        '    """\n    return f"sunny in {city}"\n'
    )


def ensure_llm(folder: Path) -> Path:
    """The environment this runs in if it has simonw/llm (the dev extra installs it), else a venv with
    llm from PyPI, made once in `folder`."""
    here = Path(sys.executable).parent
    if (here / "llm").exists():
        return here.parent
    if not (folder / "bin" / "llm").exists():
        subprocess.run([sys.executable, "-m", "venv", str(folder)], check=True)
        subprocess.run([str(folder / "bin" / "pip"), "install", "-q", "llm"], check=True)
    return folder


def isolated_env(work: Path) -> dict[str, Any]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "TOOLCHAT_"))}
    for kind in ("CONFIG", "DATA", "CACHE"):
        (work / kind.lower()).mkdir(exist_ok=True)
        env[f"TOOLCHAT_{kind}_DIR"] = str(work / kind.lower())
    return env


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024


def mcp_ask(env: dict[str, str], work: Path, runs: int) -> dict[str, float]:
    """`ask` with mcp-server-time and mcp-server-git against the SDK-and-openai floor (bare_mcp.py):
    both start the two servers, list their tools, and run the model's one call."""
    bin_dir = Path(sys.executable).parent
    repo = work / "repo"
    if not (repo / ".git").exists():
        subprocess.run(["git", "init", "-q", str(repo)], check=True)
    servers = [
        f"{bin_dir / 'mcp-server-time'} --local-timezone UTC",
        f"{bin_dir / 'mcp-server-git'} --repository {repo}",
    ]
    call = [("time__get_current_time", {"timezone": "Asia/Tokyo"})]
    bare_call = [("get_current_time", {"timezone": "Asia/Tokyo"})]
    with FakeServer(models=["fake"]) as server:

        def toolchat() -> float:
            server.add(sse(openai_calls(call)), sse(text_stream("It is evening in Tokyo.")))
            flags = [part for command in servers for part in ("--mcp", command)]
            return timed(
                [
                    *TOOLCHAT,
                    "ask",
                    "--yes",
                    "-q",
                    "--base-url",
                    server.url,
                    "-m",
                    "fake",
                    "--no-bundled-tools",
                    *flags,
                    "What time is it in Tokyo?",
                ],
                env,
                work,
            )

        def bare() -> float:
            server.add(sse(openai_calls(bare_call)), sse(text_stream("It is evening in Tokyo.")))
            return timed(
                [sys.executable, str(HERE / "bare_mcp.py"), server.url, "What time is it in Tokyo?", *servers],
                env,
                work,
            )

        return alternate(
            {"toolchat ask --mcp time --mcp git": toolchat, "bare SDK + openai script, same two servers": bare}, runs
        )
