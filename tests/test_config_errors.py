"""Config mistakes a person editing toolchat.yaml by hand makes, told where the cause is: where a
bracket or quote opened, a key written twice (at any depth), tabs; the same in every file and
through every command; and, fuzzed, every message names a line and column that exist in the file."""

from __future__ import annotations

import re
from pathlib import Path

import pexpect
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from tests.support.terminal import spawn
from toolchat.config.file import load_file
from toolchat.config.yamlfile import line_count
from toolchat.errors import ConfigError

CASES = [
    ("profile: fake\nprofiles:\n  fake: [unclosed\n", "3:9", "'[' is never closed"),
    ("profile: fake\nprofiles: {fake: {model: m}\n", "2:11", "'{' is never closed"),
    ('system: "unterminated\n\n', "1:9", "this quoted string is never closed"),
    ("system: 'also\n  unterminated\n", "1:9", "this quoted string is never closed"),
    ("max_rounds: 4\nmax_rounds: 9\n", "2:1", "'max_rounds' is set twice (first on line 1)"),
    (
        "profiles:\n  a:\n    temperature: 0.1\n    model: m\n    temperature: 0.2\n",
        "5:5",
        "'profiles.a.temperature' is set twice (first on line 3)",
    ),
    ("profiles:\n  a: {}\n  a: {}\n", "3:3", "'profiles.a' is set twice (first on line 2)"),
    ("tools:\n  allow: [a]\n\tdeny: [b]\n", "3:1", "tabs cannot indent YAML; use spaces"),
    (
        "model: m\n---\nmodel: n\n",
        "2:1",
        "broken YAML: expected a single document in the stream, but found another document",
    ),
    ('model: m\nsystem: "a\x07b"\n', "2:11", "the file holds a character YAML does not accept (U+0007)"),
    ("système: é\nmodle: x\n", "1:1", "unknown key 'système'; did you mean 'system'?"),  # columns count characters
]


def test_bytes_that_are_not_utf8_are_named_at_their_line_and_column(tmp_path):
    path = tmp_path / "toolchat.yaml"
    path.write_bytes(b"model: m\nsystem: caf\xc3\xa9 \xe9\n")  # "café " is 5 characters, 6 bytes
    assert message_for(path) == f"{path}:2:14: the file is not UTF-8 text (byte 0xe9)"


def message_for(path: Path) -> str:
    with pytest.raises(ConfigError) as info:
        load_file(path, {})
    return str(info.value)


@pytest.mark.parametrize("text, where, words", CASES)
def test_the_message_points_at_the_cause(tmp_path, text, where, words):
    path = tmp_path / "toolchat.yaml"
    path.write_text(text)
    assert message_for(path) == f"{path}:{where}: {words}"


@pytest.mark.parametrize("text, where, words", [CASES[0], CASES[2], CASES[5], CASES[7]])
def test_every_file_and_every_command_says_the_same(cli, tmp_path, text, where, words):
    project = tmp_path / "proj"
    project.mkdir()
    config = project / "toolchat.yaml"
    config.write_text(text)
    for args in (["config", "validate"], ["ask", "hi"], ["tools", "list"]):
        done = cli(*args, cwd=project)
        assert done.returncode == 2 and done.stderr.strip() == f"toolchat: error: {config}:{where}: {words}", args
    given = tmp_path / "given.yaml"
    given.write_text(text)
    done = cli("ask", "-c", str(given), "hi")
    assert done.returncode == 2 and f"{given}:{where}: {words}" in done.stderr
    user = tmp_path / "_config" / "config.yaml"
    user.write_text(text)
    done = cli("ask", "hi", cwd=tmp_path)
    assert done.returncode == 2 and f"{user}:{where}: {words}" in done.stderr


def test_the_repl_says_it_before_starting(isolated_env, tmp_path):
    (tmp_path / "toolchat.yaml").write_text(CASES[4][0])
    child = spawn(env=isolated_env, cwd=tmp_path, columns=200)
    child.expect(re.escape(f"{tmp_path / 'toolchat.yaml'}:2:1: 'max_rounds' is set twice (first on line 1)"))
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 2


VALID = """\
profile: dev
profiles:
  dev:
    backend: openai
    model: "m"
    temperature: 0.2
tools:
  paths: [tools, "more"]
  allow: [a, b]
system: 'be brief'
max_rounds: 4
"""
BREAKERS = ["[", "{", '"', "'", "\t", ":", "- ", "]", "}", "&a", "*a", "\n  ", "#", ",", "|", ">", "!!"]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    st.lists(
        st.tuples(st.integers(0, len(VALID)), st.sampled_from(BREAKERS) | st.text(max_size=3)), min_size=1, max_size=3
    ),
    st.booleans(),
)
@example([(0, "\x85\x1f")], False)  # a NEL is a line break to YAML: the bad character is on line 2
def test_every_broken_file_names_a_line_that_exists(tmp_path, edits, duplicate):
    """Hand edits gone wrong (a stray bracket, quote, tab or colon; a line pasted twice): the message
    always names the file, a line inside it and a column on that line."""
    text = VALID
    for position, piece in sorted(edits, reverse=True):
        text = text[:position] + piece + text[position:]
    if duplicate:
        lines = text.split("\n")
        text = "\n".join(lines[:5] + [lines[4]] + lines[5:])
    path = tmp_path / "toolchat.yaml"
    path.write_text(text, encoding="utf-8")
    try:
        load_file(path, {})
    except ConfigError as exc:
        match = re.match(re.escape(str(path)) + r":(\d+):(\d+): \S", str(exc))
        assert match, str(exc)
        line, column = int(match.group(1)), int(match.group(2))
        assert 1 <= line <= line_count(text), (str(exc), text)
        row = re.split("\r\n|[\r\n\x85\u2028\u2029]", text)[line - 1]
        assert 1 <= column <= len(row) + 1, (str(exc), text)  # a place on that line, or just after it


SERVER_KEYS = [
    "command",
    "args",
    "env",
    "cwd",
    "url",
    "headers",
    "type",
    "timeout",
    "startup_timeout",
    "enabled",
    "tools",
    "x",
]
scalars = (
    st.none()
    | st.booleans()
    | st.integers(-5, 5)
    | st.floats(allow_nan=True)
    | st.sampled_from(["stdio", "http", "sse", "mcp-server-time", "${HOME}", "${UNSET_VAR:-d}", "http://h/mcp", ""])
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    st.dictionaries(
        st.text(max_size=4) | st.integers(0, 3),
        st.fixed_dictionaries(
            {"command": scalars},
            optional={
                "args": st.lists(scalars, max_size=3),
                "env": st.dictionaries(st.text(max_size=3), scalars, max_size=2),
            },
        )
        | st.fixed_dictionaries({"url": scalars}, optional={"type": scalars, "timeout": scalars})
        | st.dictionaries(
            st.sampled_from(SERVER_KEYS),
            scalars | st.lists(scalars, max_size=3) | st.dictionaries(st.text(max_size=3), scalars, max_size=2),
            max_size=5,
        )
        | scalars,
        max_size=3,
    )
)
def test_random_mcp_server_entries_are_valid_or_a_config_error(tmp_path, servers):
    import yaml

    from toolchat.config.settings import resolve

    path = tmp_path / "toolchat.yaml"
    path.write_text(yaml.safe_dump({"mcp_servers": servers}), encoding="utf-8")
    try:
        file = load_file(path, {"HOME": "/home/u"})
    except ConfigError as exc:
        assert re.match(re.escape(str(path)) + r":\d+:\d+: ", str(exc)), str(exc)
        return
    settings = resolve([file], {}, tmp_path, {})
    assert all(spec.type in ("stdio", "http") and (spec.command or spec.url) for spec in settings.mcp_servers)
