"""Running tools: every call is forked from the tool worker, never from toolchat; results as text,
cut output, errors as text, real timeouts, crash isolation, and nothing a tool starts survives."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from toolchat.tools import RunLimits, discover
from toolchat.tools.isolation import worker
from toolchat.tools.isolation.runner import cut
from toolchat.tools.model import ToolStatus


def run(
    tmp_path: Path,
    source: str,
    name: str,
    *,
    timeout: float = 10,
    limit: int = 20_000,
    printed: int = 4_000_000,
    **arguments,
):
    """Write `source` as a plugin file, discover it, and run its tool `name` as the engine does."""
    folder = tmp_path / "plugins"
    folder.mkdir(exist_ok=True)
    module = folder / f"{name}.py"
    module.write_text(textwrap.dedent(source))
    registry = discover([module], bundled=False)
    assert registry.problems() == []
    return registry.run(registry.get(name), arguments, RunLimits(tmp_path, timeout, limit, printed))


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie is dead
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return True


def wait_gone(pid: int, seconds: float = 3) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not alive(pid):
            return True
        time.sleep(0.02)
    return False


def test_dicts_and_lists_become_json_and_none_empty(tmp_path):
    source = "def value(kind: str):\n    return {'dict': {'a': [1, 'é']}, 'none': None, 'float': 2.5, 'bytes': b'\\xff\\xfeok'}[kind]\n"
    assert run(tmp_path, source, "value", kind="dict").output == '{"a": [1, "é"]}'
    assert run(tmp_path, source, "value", kind="none").output == ""
    assert run(tmp_path, source, "value", kind="float").output == "2.5"
    assert run(tmp_path, source, "value", kind="bytes").output == "\ufffd\ufffdok"


def test_output_is_cut_with_a_note(tmp_path):
    result = run(tmp_path, "def big():\n    return 'x' * 5_000_000\n", "big", limit=1000)
    assert result.ok
    assert result.output.startswith("x" * 1000 + "\n")
    assert "[output cut: 4999000 of 5000000 characters not shown]" in result.output
    assert cut("short", 10) == "short"


def test_an_exception_becomes_error_text_without_traceback(tmp_path):
    result = run(tmp_path, "def boom(x: int):\n    raise ValueError(f'bad {x}')\n", "boom", x=3)
    assert result.status is ToolStatus.ERROR
    assert result.output == "Error: ValueError: bad 3"


def test_a_hung_tool_is_stopped_for_real(tmp_path):
    marker = tmp_path / "still-running"
    started = time.monotonic()
    result = run(
        tmp_path,
        f"""
        import subprocess, time

        def hang():
            subprocess.Popen(["sh", "-c", "sleep 1.5; touch {marker}"])  # a child of the tool, too
            while True:
                time.sleep(0.1)
        """,
        "hang",
        timeout=1,
    )
    assert result.status is ToolStatus.TIMEOUT
    assert "did not finish within 1 s" in result.output
    assert time.monotonic() - started < 5
    time.sleep(2)
    assert not marker.exists(), "the tool's own child process outlived the timeout"


def test_a_double_forked_setsid_daemon_is_killed_too(tmp_path):
    """Leaving the tool's session (double fork + setsid) does not escape: the worker is the
    subreaper of everything a tool starts and kills all of it when the call ends."""
    pid_file = tmp_path / "daemon.pid"
    result = run(
        tmp_path,
        f"""
        import os, time

        def daemonize() -> str:
            if os.fork() == 0:
                os.setsid()
                if os.fork() == 0:
                    with open({str(pid_file)!r}, "w") as f:
                        f.write(str(os.getpid()))
                    time.sleep(60)
                os._exit(0)
            while not os.path.exists({str(pid_file)!r}):
                time.sleep(0.01)
            time.sleep(0.05)
            return "started"
        """,
        "daemonize",
    )
    assert result.output == "started"
    daemon = int(pid_file.read_text())
    assert wait_gone(daemon), "the daemon a tool started is still running after the call"


def test_a_tool_that_forks_a_child_and_returns_gets_its_real_result(tmp_path):
    started = time.monotonic()
    result = run(
        tmp_path,
        """
        import os, time

        def background() -> str:
            if os.fork() == 0:
                time.sleep(30)
                os._exit(0)
            return "returned at once"
        """,
        "background",
        timeout=5,
    )
    assert result.ok and result.output == "returned at once"
    assert time.monotonic() - started < 4


def test_output_without_end_is_stopped_at_the_bound(tmp_path):
    started = time.monotonic()
    result = run(
        tmp_path,
        """
        import sys

        def flood():
            while True:
                sys.stdout.write("y" * 10000 + "\\n")
        """,
        "flood",
        timeout=30,
        printed=200_000,
    )
    assert result.status is ToolStatus.ERROR
    assert "output was too large (more than 200,000 bytes); it was stopped" in result.output
    assert time.monotonic() - started < 10


def test_tools_run_in_the_project_folder_and_not_in_toolchats_process(tmp_path):
    result = run(tmp_path, "import os\n\ndef where() -> str:\n    return f'{os.getcwd()} {os.getppid()}'\n", "where")
    cwd, parent = result.output.split()
    assert cwd == str(tmp_path)
    # its parent is the module's warm parent (tools/isolation/warm.py), a child of the worker
    assert _parent_of(int(parent)) == worker.worker_pid() != os.getpid()


def _parent_of(pid: int) -> int:
    with open(f"/proc/{pid}/stat") as stat:
        return int(stat.read().rsplit(")", 1)[1].split()[1])


def test_async_tools_work(tmp_path):
    source = "import asyncio\n\nasync def later(n: int) -> int:\n    await asyncio.sleep(0.01)\n    return n * 2\n"
    assert run(tmp_path, source, "later", n=21).output == "42"


def test_sys_exit_os_exit_and_crashes_do_not_take_toolchat_down(tmp_path):
    source = """
        import ctypes, os, sys

        def leave(how: str):
            print("about to leave")
            if how == "sys.exit":
                sys.exit(3)
            if how == "os._exit":
                sys.stdout.flush()
                os._exit(7)
            ctypes.string_at(0)
        """
    assert run(tmp_path, source, "leave", how="sys.exit").output.startswith("Error: the tool called sys.exit(3)")
    result = run(tmp_path, source, "leave", how="os._exit")
    assert result.status is ToolStatus.ERROR and "exited with code 7 without returning a result" in result.output
    assert "about to leave" in result.output
    result = run(tmp_path, source, "leave", how="segfault")
    assert result.status is ToolStatus.ERROR and "crashed (signal SIGSEGV)" in result.output


def test_printed_output_is_captured_not_leaked(tmp_path, capfd):
    result = run(
        tmp_path,
        """
        import os

        def chatty() -> str:
            print("hello from the tool")
            os.write(2, b"raw stderr\\n")
            os.system("echo from a shell")
            return "done"
        """,
        "chatty",
    )
    assert result.output == "done\n\n[printed output]\nhello from the tool\nraw stderr\nfrom a shell"
    out, err = capfd.readouterr()
    assert "hello from the tool" not in out + err and "from a shell" not in out + err


def test_enum_and_positional_only_arguments_arrive_as_the_function_expects(tmp_path):
    source = """
        import enum

        class Unit(enum.Enum):
            C = "celsius"
            F = "fahrenheit"

        def temp(w: int, h: int = 2, /, unit: Unit = Unit.C) -> str:
            return f"{w * h} {type(unit).__name__}.{unit.name}"
        """
    assert run(tmp_path, source, "temp", w=3, h=5, unit="fahrenheit").output == "15 Unit.F"
    assert run(tmp_path, source, "temp", w=3).output == "6 Unit.C"


def test_input_gets_eof_instead_of_hanging(tmp_path):
    result = run(tmp_path, "def ask_user():\n    return input('? ')\n", "ask_user", timeout=5)
    assert result.status is ToolStatus.ERROR and "EOFError" in result.output


CANCEL_SCRIPT = """
import os, signal, sys, threading, time
from pathlib import Path
from toolchat.tools import RunLimits, discover

folder = Path(sys.argv[1])
registry = discover([folder / "slow.py"], bundled=False)
threading.Timer(1.0, lambda: os.kill(os.getpid(), signal.SIGINT)).start()
try:
    registry.run(registry.get("slow"), {}, RunLimits(folder, 30))
except KeyboardInterrupt:
    print("interrupted", flush=True)
"""


def _slow_plugin(tmp_path: Path) -> Path:
    pid_file = tmp_path / "tool.pid"
    (tmp_path / "slow.py").write_text(
        textwrap.dedent(f"""
        import os, subprocess, time

        def slow():
            child = subprocess.Popen(["sleep", "60"])
            with open({str(pid_file)!r}, "w") as f:
                f.write(f"{{os.getpid()}} {{child.pid}}")
            time.sleep(60)
        """)
    )
    return pid_file


def test_ctrl_c_stops_the_running_call_and_everything_it_started(tmp_path, isolated_env):
    pid_file = _slow_plugin(tmp_path)
    done = subprocess.run(
        [sys.executable, "-c", CANCEL_SCRIPT, str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=20,
        env=isolated_env,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    assert done.stdout.strip() == "interrupted", done.stderr
    for pid in map(int, pid_file.read_text().split()):
        assert wait_gone(pid), "a process of the interrupted call is still running"


@pytest.mark.parametrize("signal_number", [signal.SIGKILL, signal.SIGHUP, signal.SIGQUIT])
def test_when_toolchat_dies_the_worker_kills_its_tools_and_exits(tmp_path, isolated_env, signal_number):
    pid_file = _slow_plugin(tmp_path)
    script = CANCEL_SCRIPT.replace("threading.Timer(1.0", "threading.Timer(100")
    process = subprocess.Popen(
        [sys.executable, "-c", script, str(tmp_path)],
        env=isolated_env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        preexec_fn=lambda: [signal.signal(s, signal.SIG_DFL) for s in (signal.SIGHUP, signal.SIGQUIT)],
    )
    try:
        deadline = time.monotonic() + 15
        while not (pid_file.exists() and len(pid_file.read_text().split()) == 2) and time.monotonic() < deadline:
            time.sleep(0.02)
        pids = list(map(int, pid_file.read_text().split()))
        process.send_signal(signal_number)
        process.wait(5)
    finally:
        process.kill()
    for pid in pids:
        assert wait_gone(pid), "a tool outlived toolchat"


def test_a_tool_that_kills_the_worker_gets_an_error_and_the_next_call_works(tmp_path):
    pid_file = tmp_path / "regicide.pid"
    source = f"""
        import os, signal, time

        def regicide() -> str:
            open({str(pid_file)!r}, "w").write(str(os.getpid()))
            os.kill(os.getppid(), signal.SIGKILL)
            time.sleep(60)
        """
    started = time.monotonic()
    result = run(tmp_path, source, "regicide", timeout=30)
    # the parent it kills is its module's warm parent: the call is answered as a death of its process
    assert result.status is ToolStatus.ERROR and "ended without returning a result" in result.output
    assert time.monotonic() - started < 10
    assert wait_gone(int(pid_file.read_text())), "the tool outlived the worker it killed"
    assert run(tmp_path, "def fine() -> str:\n    return 'fine'\n", "fine").output == "fine"


def test_a_timeout_too_large_for_the_clock_still_runs_the_call(tmp_path):
    assert run(tmp_path, "def quick() -> str:\n    return 'quick'\n", "quick", timeout=1e10).output == "quick"


def test_overlapping_calls_run_side_by_side(tmp_path):
    """`toolchat serve` answers several requests at once: their calls do not queue behind each other."""
    import threading

    (tmp_path / "nap.py").write_text("import time\n\ndef nap() -> str:\n    time.sleep(2)\n    return 'rested'\n")
    registry = discover([tmp_path / "nap.py"], bundled=False)
    results = []
    threads = [
        threading.Thread(
            target=lambda: results.append(registry.run(registry.get("nap"), {}, RunLimits(tmp_path, 30)).output)
        )
        for _ in range(3)
    ]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == ["rested"] * 3
    assert time.monotonic() - started < 5  # one after another would take 6 s


def test_lone_surrogates_in_a_result_become_replacement_characters(tmp_path):
    result = run(
        tmp_path,
        "import os\n\ndef odd() -> str:\n    print('\\udce9 printed')\n    return 'caf\\udce9 \\ud800'\n",
        "odd",
    )
    assert result.output == "caf\ufffd \ufffd\n\n[printed output]\n? printed"
    result.output.encode("utf-8")
