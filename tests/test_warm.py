"""Warm plugin parents: a plugin's import is paid once per session, not per call; an edited file is
imported afresh; each call is still its own sandboxed process, killed with what it started."""

from __future__ import annotations

import os
import textwrap
import time
from pathlib import Path

import pytest

from toolchat.sandbox.policy import ENFORCER, Config
from toolchat.tools import RunLimits
from toolchat.tools.isolation import worker
from toolchat.tools.model import ToolStatus

HEAVY = """
import os, time
time.sleep(0.3)  # as importing pandas or an SDK does
with open(os.path.join(os.getcwd(), "imports.log"), "a") as log:
    log.write("imported\\n")
counter = []

def lookup(n: int) -> str:
    \"\"\"Look a number up.\"\"\"
    counter.append(n)  # a call's change to module state dies with its process
    return f"{n}: seen {len(counter)}"
"""


def _module(tmp_path: Path, source: str, name: str = "heavy.py") -> Path:
    folder = tmp_path / "plugins"
    folder.mkdir(exist_ok=True)
    path = folder / name
    path.write_text(textwrap.dedent(source))
    return path


def _call(module: Path, name: str, arguments: dict, project: Path, sandbox: Config | None = None):
    return worker.run_call(str(module), name, arguments, RunLimits(project, timeout=10, sandbox=sandbox))


def _imports(project: Path) -> int:
    return (project / "imports.log").read_text().count("imported")


def test_the_second_call_does_not_pay_the_import_and_sees_no_state_of_the_first(tmp_path):
    module = _module(tmp_path, HEAVY)
    first = _call(module, "lookup", {"n": 1}, tmp_path)
    second = _call(module, "lookup", {"n": 2}, tmp_path)
    third = _call(module, "lookup", {"n": 3}, tmp_path)
    assert (first.status, first.output) == (ToolStatus.OK, "1: seen 1")
    assert (second.output, third.output) == ("2: seen 1", "3: seen 1")
    assert _imports(tmp_path) == 1


def test_an_edited_plugin_is_imported_afresh(tmp_path):
    module = _module(tmp_path, HEAVY)
    assert _call(module, "lookup", {"n": 1}, tmp_path).output == "1: seen 1"
    module.write_text(textwrap.dedent(HEAVY).replace('f"{n}: seen', 'f"{n} (edited): seen'))
    os.utime(module, ns=(time.time_ns(), time.time_ns() + 10**9))  # a stamp that surely differs
    assert _call(module, "lookup", {"n": 2}, tmp_path).output == "2 (edited): seen 1"
    assert _imports(tmp_path) == 2


@pytest.mark.skipif(ENFORCER.unavailable() is not None, reason="this kernel has no Landlock")
def test_a_warm_call_is_still_sandboxed(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    module = _module(
        tmp_path,
        HEAVY
        + f"""
def write_home() -> str:
    \"\"\"Write outside the project.\"\"\"
    open({str(home / "escape.txt")!r}, "w").write("out")
    return "written"
""",
    )
    project = tmp_path / "project"
    project.mkdir()
    for _ in range(2):
        result = _call(module, "write_home", {}, project, Config())
        assert result.status is ToolStatus.ERROR and "PermissionError" in result.output
    assert not (home / "escape.txt").exists()
    assert _imports(project) == 1  # the warm parent served both calls


def test_what_a_warm_call_starts_is_killed_with_it(tmp_path):
    module = _module(
        tmp_path,
        HEAVY
        + """
import subprocess
def start_daemon() -> str:
    \"\"\"Leave a process behind.\"\"\"
    child = subprocess.Popen(["sleep", "300"], start_new_session=True)
    return str(child.pid)
""",
    )
    pids = [int(_call(module, "start_daemon", {}, tmp_path).output) for _ in range(2)]
    assert _imports(tmp_path) == 1
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and any(_alive(pid) for pid in pids):
        time.sleep(0.05)
    assert not any(_alive(pid) for pid in pids)


def test_a_module_that_fails_at_import_is_answered_in_one_line_every_call(tmp_path):
    module = _module(tmp_path, "raise RuntimeError('no config')\ndef f() -> str:\n    return 'x'\n")
    for _ in range(2):
        result = _call(module, "f", {}, tmp_path)
        assert (result.status, result.output) == (ToolStatus.ERROR, "Error: RuntimeError: no config")


def test_a_module_that_starts_a_thread_at_import_runs_cold(tmp_path):
    source = HEAVY.replace(
        "counter = []",
        "import threading\nthreading.Thread(target=time.sleep, args=(60,), daemon=True).start()\ncounter = []",
    )
    module = _module(tmp_path, source)
    assert [_call(module, "lookup", {"n": n}, tmp_path).output for n in (1, 2)] == ["1: seen 1", "2: seen 1"]
    assert _imports(tmp_path) == 3  # the warm attempt, then each call cold


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False
