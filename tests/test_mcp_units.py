"""The small pure parts of MCP support: offered names, `--mcp` flags, result conversion."""

from __future__ import annotations

import base64
import re

import pytest

from toolchat.errors import UsageError
from toolchat.mcp import parse_flag, parse_flags
from toolchat.mcp.names import offered_name

VALID = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")


def test_names_are_server__tool_and_always_valid():
    assert offered_name("time", "get_current_time") == "time__get_current_time"
    odd = offered_name("my.server", "read file/v2")
    assert VALID.match(odd) and odd.startswith("my_server__read_file_v2_")
    # two tools whose names differ only in refused characters stay apart
    assert offered_name("s", "a.b") != offered_name("s", "a b") != offered_name("s", "a_b")
    long = offered_name("a-very-long-server-name", "x" * 100)
    assert VALID.match(long) and len(long) == 64
    assert long != offered_name("a-very-long-server-name", "x" * 101)
    assert VALID.match(offered_name("", "")) and VALID.match(offered_name("ü", "ツール"))


def test_mcp_flags_become_named_servers():
    time_server = parse_flag("mcp-server-time --local-timezone UTC")
    assert (time_server.name, time_server.type, time_server.command, time_server.args) == (
        "time",
        "stdio",
        "mcp-server-time",
        ["--local-timezone", "UTC"],
    )
    assert parse_flag("npx -y @modelcontextprotocol/server-filesystem /tmp").name == "filesystem"
    assert parse_flag("python3.12 servers/weather_mcp.py").name == "weather"
    docs = parse_flag("https://docs.example.com/mcp")
    assert (docs.name, docs.type, docs.url) == ("docs", "http", "https://docs.example.com/mcp")
    assert parse_flag("http://127.0.0.1:8123/mcp").name == "http"
    names = [s.name for s in parse_flags(["mcp-server-git", "mcp-server-git --repository x"], taken=["git"])]
    assert names == ["git2", "git3"]


@pytest.mark.parametrize("bad", ["", "   ", "mcp-server-time 'unclosed"])
def test_a_bad_mcp_flag_is_a_usage_error(bad):
    with pytest.raises(UsageError):
        parse_flag(bad)


def test_results_convert_every_kind_of_content():
    pytest.importorskip("mcp")
    import mcp_types as types

    from toolchat.mcp.convert import to_result
    from toolchat.tools.model import ToolStatus

    audio = base64.b64encode(b"\0" * 2500).decode()
    result = types.CallToolResult(
        content=[
            types.TextContent(text="first"),
            types.AudioContent(data=audio, mime_type="audio/wav"),
            types.ResourceLink(uri="file:///srv/report.pdf", name="report"),
            types.EmbeddedResource(resource=types.TextResourceContents(uri="file:///a.txt", text="inline text")),
            types.EmbeddedResource(
                resource=types.BlobResourceContents(uri="file:///b.bin", blob=audio, mime_type="application/zip")
            ),
        ]
    )
    converted = to_result(result, 10_000)
    assert converted.status is ToolStatus.OK
    assert converted.output.splitlines() == [
        "first",
        "[audio/wav, 2 kB]",
        "file:///srv/report.pdf",
        "inline text",
        "file:///b.bin [application/zip, 2 kB]",
    ]
    structured = to_result(types.CallToolResult(content=[], structured_content={"temp": 21}), 100)
    assert structured.output == '{"temp": 21}'
    error = to_result(types.CallToolResult(content=[types.TextContent(text="no such file")], is_error=True), 100)
    assert (error.status, error.output) == (ToolStatus.ERROR, "Error: no such file")


def test_any_server_and_tool_name_becomes_a_valid_distinct_name():
    hypothesis = pytest.importorskip("hypothesis")
    from hypothesis import strategies as st

    seen: dict[str, tuple[str, str]] = {}

    @hypothesis.settings(max_examples=300, deadline=None, database=None)  # nothing written to the checkout
    @hypothesis.given(st.text(max_size=80), st.text(max_size=120))
    def check(server: str, tool: str) -> None:
        name = offered_name(server, tool)
        assert VALID.match(name)
        if "__" not in server + tool:  # "a__" + "b" and "a" + "__b" are one name by design
            assert seen.setdefault(name, (server, tool)) == (server, tool)

    check()
