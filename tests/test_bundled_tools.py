"""The bundled tools: a calculator with no eval, a clock, and file tools confined to the project."""

from __future__ import annotations

import os
import re

import pytest

from toolchat.tools import discover
from toolchat.tools.runner import run_tool

REGISTRY = discover([])


def call(name: str, cwd, **arguments) -> tuple[str, str]:
    result = run_tool(REGISTRY.get(name), arguments, cwd=cwd, timeout=20)
    return result.status.value, result.output


@pytest.mark.parametrize("expression, answer", [
    ("2 * (3 + 4) ** 2", "98"), ("sqrt(16) + 1", "5"), ("10 / 4", "2.5"), ("-3 % 2", "1"),
    ("max(1, 7, 3)", "7"), ("round(pi, 3)", "3.142"),
])
def test_calculator(tmp_path, expression, answer):
    assert call("calculate", tmp_path, expression=expression) == ("ok", answer)


@pytest.mark.parametrize("expression, reason", [
    ("__import__('os').system('true')", "unsupported element"),
    ("open('x')", "unsupported element"),
    ("(1).__class__", "unsupported element"),
    ("9 ** 9 ** 9", "exponent"),
    ("2 +", "not an arithmetic expression"),
])
def test_calculator_refuses_anything_but_arithmetic(tmp_path, expression, reason):
    status, output = call("calculate", tmp_path, expression=expression)
    assert status == "error" and reason in output


def test_clock(tmp_path):
    status, output = call("current_datetime", tmp_path, timezone="UTC")
    assert status == "ok" and re.match(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00 \(\w+day, UTC\)", output)
    assert call("current_datetime", tmp_path, timezone="Mars/Olympus")[1] == "Error: ValueError: unknown time zone: 'Mars/Olympus'"


def test_weather_demo_is_labelled(tmp_path):
    assert "demo" in call("get_weather", tmp_path, city="Singapore")[1]
    assert "DEMO" in REGISTRY.get("get_weather").description


@pytest.fixture
def project(tmp_path):
    root = tmp_path / "project"
    (root / "src").mkdir(parents=True)
    (root / "src" / "main.py").write_text("print('hello')\nneedle = 1\n")
    (root / "README.md").write_text("# Project\nthe needle is here\n")
    secret = tmp_path / "secret.txt"
    secret.write_text("needle outside")
    os.symlink(secret, root / "escape.txt")
    os.symlink(tmp_path, root / "escape_dir")
    return root


def test_file_tools_read_inside_the_project(project):
    assert call("list_directory", project) == ("ok", "escape_dir -> (symlink)\nsrc/\nescape.txt -> (symlink)\nREADME.md  (29 bytes)")
    assert call("read_file", project, path="src/main.py") == ("ok", "    1  print('hello')\n    2  needle = 1")
    status, found = call("search_text", project, pattern="needle")
    assert status == "ok"
    assert found.splitlines() == ["README.md:2: the needle is here", "src/main.py:2: needle = 1"]


@pytest.mark.parametrize("name, arguments", [
    ("read_file", {"path": "../secret.txt"}),
    ("read_file", {"path": "escape.txt"}),
    ("read_file", {"path": "/etc/passwd"}),
    ("list_directory", {"path": ".."}),
    ("list_directory", {"path": "escape_dir"}),
    ("search_text", {"pattern": "x", "path": "../"}),
])
def test_file_tools_refuse_to_leave_the_project(project, name, arguments):
    status, output = call(name, project, **arguments)
    assert status == "error" and "outside the project folder" in output
