"""Running tools: results as text, cut output, errors as text, real timeouts, crash isolation."""

from __future__ import annotations

import enum
import os
import time
from pathlib import Path

from toolchat.tools.model import Tool, ToolStatus
from toolchat.tools.runner import cut, run_tool
from toolchat.tools.schema import function_schema


def tool_of(func) -> Tool:
    s = function_schema(func)
    return Tool(s.name, s.description, s.parameters, func, Path("x.py"), enum_params=s.enum_params)


def run(func, cwd: Path, timeout: float = 10, limit: int = 20_000, **arguments):
    return run_tool(tool_of(func), arguments, cwd=cwd, timeout=timeout, max_output_chars=limit)


def test_dicts_and_lists_become_json_and_none_empty(tmp_path):
    assert run(lambda: {"a": [1, "é"]}, tmp_path).output == '{"a": [1, "é"]}'
    assert run(lambda: None, tmp_path).output == ""
    assert run(lambda: 2.5, tmp_path).output == "2.5"
    assert run(lambda: b"\xff\xfeok", tmp_path).output == "\ufffd\ufffdok"


def test_output_is_cut_with_a_note(tmp_path):
    result = run(lambda: "x" * 5_000_000, tmp_path, limit=1000)
    assert result.ok
    assert result.output.startswith("x" * 1000 + "\n")
    assert "[output cut: 4999000 of 5000000 characters not shown]" in result.output
    assert cut("short", 10) == "short"


def test_an_exception_becomes_error_text_without_traceback(tmp_path):
    def boom(x: int):
        raise ValueError(f"bad {x}")

    result = run(boom, tmp_path, x=3)
    assert result.status is ToolStatus.ERROR
    assert result.output == "Error: ValueError: bad 3"


def test_a_hung_tool_is_stopped_for_real(tmp_path):
    marker = tmp_path / "still-running"

    def hang():
        import subprocess

        subprocess.Popen(["sh", "-c", f"sleep 3; touch {marker}"])  # a child of the tool, too
        while True:
            time.sleep(0.1)

    started = time.monotonic()
    result = run(hang, tmp_path, timeout=1)
    assert result.status is ToolStatus.TIMEOUT
    assert "did not finish within 1 s" in result.output
    assert time.monotonic() - started < 5
    time.sleep(3.5)
    assert not marker.exists(), "the tool's own child process outlived the timeout"


def test_tools_run_in_the_project_folder(tmp_path):
    assert run(lambda: os.getcwd(), tmp_path).output == str(tmp_path)


def test_async_tools_work(tmp_path):
    async def later(n: int) -> int:
        import asyncio

        await asyncio.sleep(0.01)
        return n * 2

    assert run(later, tmp_path, n=21).output == "42"


def test_sys_exit_os_exit_and_crashes_do_not_take_toolchat_down(tmp_path):
    import sys

    assert run(lambda: sys.exit(3), tmp_path).output == "Error: the tool called sys.exit(3)"
    result = run(lambda: os._exit(7), tmp_path)
    assert result.status is ToolStatus.ERROR and "exited with code 7" in result.output

    def segfault():
        import ctypes

        ctypes.string_at(0)

    result = run(segfault, tmp_path)
    assert result.status is ToolStatus.ERROR and "crashed (signal SIGSEGV)" in result.output


def test_printed_output_is_captured_not_leaked(tmp_path, capfd):
    def chatty() -> str:
        print("hello from the tool")
        os.write(2, b"raw stderr\n")
        return "done"

    result = run(chatty, tmp_path)
    assert result.output == "done\n\n[printed output]\nhello from the tool\nraw stderr"
    out, err = capfd.readouterr()
    assert "hello from the tool" not in out + err


class Unit(enum.Enum):
    C = "celsius"
    F = "fahrenheit"


def test_enum_arguments_arrive_as_members(tmp_path):
    def temp(unit: Unit) -> str:
        return f"{type(unit).__name__}.{unit.name}"

    assert run(temp, tmp_path, unit="fahrenheit").output == "Unit.F"


def test_input_gets_eof_instead_of_hanging(tmp_path):
    result = run(lambda: input("? "), tmp_path, timeout=5)
    assert result.status is ToolStatus.ERROR and "EOFError" in result.output
