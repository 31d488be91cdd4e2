"""The bundled tools: a calculator with no eval, a clock, and file tools confined to the project."""

from __future__ import annotations

import os
import re
import time

import pytest

from toolchat.tools import RunLimits, discover

REGISTRY = discover([])


def call(name: str, cwd, timeout: float = 20, **arguments) -> tuple[str, str]:
    result = REGISTRY.run(REGISTRY.get(name), arguments, RunLimits(cwd, timeout))
    return result.status.value, result.output


@pytest.mark.parametrize(
    "expression, answer",
    [
        ("2 * (3 + 4) ** 2", "98"),
        ("sqrt(16) + 1", "5"),
        ("10 / 4", "2.5"),
        ("-3 % 2", "1"),
        ("max(1, 7, 3)", "7"),
        ("round(pi, 3)", "3.142"),
    ],
)
def test_calculator(tmp_path, expression, answer):
    assert call("calculate", tmp_path, expression=expression) == ("ok", answer)


@pytest.mark.parametrize(
    "expression, reason",
    [
        ("__import__('os').system('true')", "unknown function '__import__('os').system'"),
        ("open('x')", "unknown function 'open'"),
        ("(1).__class__", "attribute access is not arithmetic"),
        ("foo + 1", "unknown name 'foo'"),
        ("'a' * 3", "'a' is not a number"),
        ("9 ** 9 ** 9", "exponent"),
        ("(10**1000)**1000", "too large"),
        ("(10**10000)**10000", "too large"),
        ("(10**3000) * (10**3000)", "too large"),
        ("factorial(1000) * factorial(1000)", "too large"),
        ("2 +", "not an arithmetic expression"),
    ],
)
def test_calculator_refuses_anything_but_arithmetic(tmp_path, expression, reason):
    status, output = call("calculate", tmp_path, expression=expression)
    assert status == "error" and reason in output


def test_calculator_answers_a_huge_power_at_once(tmp_path):
    started = time.monotonic()
    status, output = call("calculate", tmp_path, timeout=5, expression="(10**10000)**10000")
    assert status == "error" and "too large" in output and "timeout" not in status
    assert time.monotonic() - started < 2
    assert call("calculate", tmp_path, expression="2 ** 10000 % 7") == ("ok", "2")


def test_clock(tmp_path):
    status, output = call("current_datetime", tmp_path, timezone="UTC")
    assert status == "ok" and re.match(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00 \(\w+day, UTC\)", output)
    assert (
        call("current_datetime", tmp_path, timezone="Mars/Olympus")[1]
        == "Error: ValueError: unknown time zone: 'Mars/Olympus'"
    )


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
    assert call("list_directory", project) == (
        "ok",
        "escape_dir -> (symlink)\nsrc/\nescape.txt -> (symlink)\nREADME.md  (29 bytes)",
    )
    assert call("read_file", project, path="src/main.py") == ("ok", "    1  print('hello')\n    2  needle = 1")
    status, found = call("search_text", project, pattern="needle")
    assert status == "ok"
    assert found.splitlines() == ["README.md:2: the needle is here", "src/main.py:2: needle = 1"]


@pytest.mark.parametrize(
    "name, arguments",
    [
        ("read_file", {"path": "../secret.txt"}),
        ("read_file", {"path": "escape.txt"}),
        ("read_file", {"path": "/etc/passwd"}),
        ("list_directory", {"path": ".."}),
        ("list_directory", {"path": "escape_dir"}),
        ("search_text", {"pattern": "x", "path": "../"}),
    ],
)
def test_file_tools_refuse_to_leave_the_project(project, name, arguments):
    status, output = call(name, project, **arguments)
    assert status == "error" and "outside the project folder" in output


def test_search_skips_fifos_and_other_special_files(project):
    os.mkfifo(project / "src" / "pipe.txt")  # opening it would wait for a writer forever
    status, found = call("search_text", project, timeout=5, pattern="needle")
    assert status == "ok"
    assert found.splitlines() == ["README.md:2: the needle is here", "src/main.py:2: needle = 1"]
    status, output = call("search_text", project, timeout=5, pattern="needle", path="src/pipe.txt")
    assert status == "error" and "not a regular file" in output


def test_a_file_name_that_is_not_utf8_comes_back_as_valid_text(project):
    os.close(os.open(os.fsencode(project) + b"/caf\xe9.txt", os.O_CREAT | os.O_WRONLY, 0o600))
    status, listing = call("list_directory", project)
    assert status == "ok" and "caf\ufffd.txt  (0 bytes)" in listing
    listing.encode("utf-8")  # what the SDK's JSON encoding needs


def test_a_huge_file_is_read_only_in_part(project):
    with open(project / "huge.log", "w") as log:
        log.write("first needle line\n" + "x" * 99 + "\n")
        log.write(("y" * 99 + "\n") * 200_000)  # 20 MB
    status, output = call("read_file", project, path="huge.log", max_lines=2)
    assert status == "ok"
    assert output == (
        "    1  first needle line\n    2  "
        + "x" * 99
        + "\n[the file has 20000118 bytes; only the first 16000000 were read]"
    )
    status, found = call("search_text", project, pattern="first needle", path="huge.log")
    assert found == "huge.log:1: first needle line"
