"""The Registry merges tool sources and sends each call back to the source that offered it."""

from __future__ import annotations

from typing import Any

import pytest

from toolchat.errors import ToolLoadError
from toolchat.tools import Registry, RunLimits, SourceProblem, Tool, ToolResult, ToolStatus, discover


class ListedSource:
    """A source whose tools the test sets, as an MCP server's list changes; calls echo the source."""

    def __init__(self, label: str, *names: str, replaceable: bool = False) -> None:
        self.label, self.replaceable, self.closed = label, replaceable, 0
        self.names = list(names)

    def tools(self) -> list[Tool]:
        return [
            Tool(name, f"{name} of {self.label}", {"type": "object", "properties": {}}, origin=self.label)
            for name in self.names
        ]

    def problems(self) -> list[SourceProblem]:
        return []

    def run(self, tool: Tool, arguments: dict[str, Any], limits: RunLimits) -> ToolResult:
        return ToolResult(ToolStatus.OK, f"{tool.name} ran on {self.label}")

    def close(self) -> None:
        self.closed += 1


def test_calls_go_to_the_source_that_offered_the_tool(tmp_path):
    registry = discover([], bundled=True)
    registry.add(ListedSource("mcp time", "get_time"))
    assert registry.get("calculate").origin == "bundled"
    assert registry.run(registry.get("get_time"), {}, RunLimits(tmp_path)).output == "get_time ran on mcp time"
    assert registry.run(registry.get("calculate"), {"expression": "6*7"}, RunLimits(tmp_path)).output == "42"


def test_one_name_on_two_sources_is_an_error_naming_both(plugin_dir):
    folder = plugin_dir(clock="def get_time() -> str:\n    '''Time.'''\n    return 'now'\n")
    registry = discover([folder], bundled=False, project_dir=folder.parent)
    with pytest.raises(ToolLoadError) as info:
        registry.add(ListedSource("mcp time", "get_time"))
    assert "two tools are named 'get_time': from plugins/clock.py and from mcp time" in str(info.value)
    assert registry.get("get_time").origin == "plugins/clock.py"  # the failed add changed nothing


def test_a_user_tool_replaces_a_bundled_one_from_any_source():
    registry = Registry(
        [
            ListedSource("bundled", "calculate", "get_weather", replaceable=True),
            ListedSource("mcp weather", "get_weather"),
        ]
    )
    assert registry.get("get_weather").origin == "mcp weather"
    assert registry.replaced["get_weather"].origin == "bundled"


def test_refresh_follows_a_changing_source_and_views_follow_it(tmp_path):
    server = ListedSource("mcp s", "one")
    registry = Registry([ListedSource("plugins", "local"), server])
    allowed = registry.without(["local"])
    assert allowed.names() == ["one"]
    server.names = ["one", "two", "local"]  # list_changed: a new tool, and one that clashes
    registry.refresh()
    assert allowed.names() == ["one", "two"] and registry.names() == ["local", "one", "two"]
    assert registry.get("local").origin == "plugins"
    assert registry.problems() == [
        SourceProblem("mcp s", "its tool 'local' is also offered by plugins; that one is kept")
    ]
    assert allowed.run(registry.get("local"), {}, RunLimits(tmp_path)).status is ToolStatus.UNKNOWN
    registry.close()
    registry.close()
    assert server.closed == 2


def test_a_source_that_fails_to_list_again_keeps_its_last_tools():
    class Flaky(ListedSource):
        broken = False

        def tools(self) -> list[Tool]:
            if self.broken:
                raise ConnectionError("the server went away")
            return super().tools()

    flaky = Flaky("mcp flaky", "ping")
    registry = Registry([flaky])
    flaky.broken = True
    registry.refresh()
    assert registry.names() == ["ping"]
    assert registry.problems() == [
        SourceProblem(
            "mcp flaky",
            "its tools could not be listed again (ConnectionError: the server went away); the last list is kept",
        )
    ]
