"""Discovery: folders and files become tools; broken modules are reported, not fatal."""

from __future__ import annotations

import pytest

from toolchat.errors import ToolLoadError
from toolchat.tools import discover
from toolchat.tools.runner import run_tool

BUNDLED = {"get_weather", "calculate", "current_datetime", "list_directory", "read_file", "search_text"}


def test_public_functions_defined_in_the_module_are_tools(plugin_dir):
    folder = plugin_dir(mine='''
        from os.path import join          # imported: not a tool
        from json import dumps as helper  # imported: not a tool

        def greet(name: str) -> str:
            """Say hello.

            Args:
                name: Who to greet
            """
            return "hi " + name

        async def later(n: int) -> int:
            """Async tool."""
            return n

        def _private():
            pass

        class NotATool:
            pass

        CONSTANT = 3
    ''')
    registry = discover([folder], bundled=False)
    assert registry.names() == ["greet", "later"]
    assert registry.get("greet").source == (folder / "mine.py").resolve()


def test_a_single_file_and_the_bundled_folder(plugin_dir):
    folder = plugin_dir(one="def one():\n    '''One.'''\n", two="def two():\n    '''Two.'''\n")
    registry = discover([folder / "one.py"])
    assert set(registry.names()) == BUNDLED | {"one"}
    assert all(registry.get(n).bundled for n in BUNDLED)
    assert not registry.get("one").bundled


def test_explicit_definitions_bound_to_callables(plugin_dir):
    folder = plugin_dir(explicit='''
        def _now():
            return "noon"

        def multiply(a, b):
            return a * b

        TOOLS = [
            ({"type": "function", "function": {"name": "current_time",
              "description": "Get the current local time as a string.",
              "parameters": {"type": "object", "properties": {}}}}, _now),
            {"type": "function", "function": {"name": "multiply", "description": "Multiply.",
              "parameters": {"type": "object", "properties": {"a": {"type": "number"}, "b": {"type": "number"}},
                             "required": ["a", "b"]}}},
        ]
    ''')
    registry = discover([folder], bundled=False)
    assert registry.names() == ["current_time", "multiply"]
    assert run_tool(registry.get("current_time"), {}, cwd=folder).output == "noon"
    assert run_tool(registry.get("multiply"), {"a": 6, "b": 7}, cwd=folder).output == "42"


def test_broken_modules_are_listed_with_reasons_and_skipped(plugin_dir):
    folder = plugin_dir(
        good="def fine():\n    '''Fine.'''\n    return 1\n",
        syntax="def broken(:\n    pass\n",
        missing="import no_such_package_xyz\n",
        raises="raise RuntimeError('boom at import')\n",
        exits="import sys\nsys.exit(4)\n",
    )
    registry = discover([folder], bundled=False)
    assert registry.names() == ["fine"]
    reasons = {f.source.name: f.reason for f in registry.failures}
    assert reasons == {
        "exits.py": "the module called sys.exit(4) while loading",
        "missing.py": "ModuleNotFoundError: No module named 'no_such_package_xyz'",
        "raises.py": "RuntimeError: boom at import",
        "syntax.py": "SyntaxError: invalid syntax (line 1)",
    }


def test_two_user_modules_with_one_name_is_an_error_naming_both(plugin_dir):
    folder = plugin_dir(a="def same():\n    '''A.'''\n", b="def same():\n    '''B.'''\n")
    with pytest.raises(ToolLoadError) as info:
        discover([folder], bundled=False)
    assert str(folder / "a.py") in str(info.value) and str(folder / "b.py") in str(info.value)


def test_a_user_tool_replaces_a_bundled_one_and_says_so(plugin_dir):
    folder = plugin_dir(w="def get_weather(city: str) -> str:\n    '''Real weather.'''\n    return 'rain'\n")
    registry = discover([folder])
    assert registry.get("get_weather").description == "Real weather."
    assert registry.replaced["get_weather"].name == "weather.py"


def test_same_folder_given_twice_is_not_a_conflict(plugin_dir):
    folder = plugin_dir(a="def only():\n    '''A.'''\n")
    assert discover([folder, folder / "a.py"], bundled=False).names() == ["only"]


def test_missing_path_is_a_clear_error(tmp_path):
    with pytest.raises(ToolLoadError, match="tool path not found"):
        discover([tmp_path / "nope"], bundled=False)


def test_a_plugin_can_import_its_sibling_helper(plugin_dir):
    folder = plugin_dir(_helpers="def shout(s):\n    return s.upper()\n",
                        loud="from _helpers import shout\n\ndef loud(s: str) -> str:\n    '''Loud.'''\n    return shout(s)\n")
    registry = discover([folder], bundled=False)
    assert registry.names() == ["loud"]
    assert run_tool(registry.get("loud"), {"s": "hey"}, cwd=folder).output == "HEY"


def test_the_schema_cache_skips_imports_of_unchanged_modules(plugin_dir, tmp_path):
    import os

    from toolchat.tools.cache import SchemaCache

    marker = tmp_path / "imported"
    folder = plugin_dir(counted=f"open({str(marker)!r}, 'a').write('x')\n\n"
                                "def counted(n: int) -> int:\n    '''Counted.'''\n    return n * 2\n",
                        broken="import not_there_pkg\n")
    cache_file = tmp_path / "cache" / "schemas.json"
    first = discover([folder], bundled=False, cache=SchemaCache(cache_file))
    assert marker.read_text() == "x" and first.names() == ["counted"]
    import sys

    for name in [m for m in sys.modules if m.endswith("_counted")]:
        del sys.modules[name]  # as in a new process
    second = discover([folder], bundled=False, cache=SchemaCache(cache_file))
    assert marker.read_text() == "x", "an unchanged module was imported again just to list it"
    assert second.get("counted").parameters == first.get("counted").parameters
    assert [f.reason for f in second.failures] == ["ModuleNotFoundError: No module named 'not_there_pkg'"]
    assert run_tool(second.get("counted"), {"n": 21}, cwd=folder).output == "42"  # imported on first run
    assert marker.read_text() == "xx"
    source = folder / "counted.py"
    source.write_text(source.read_text().replace("'''Counted.'''", "'''Counted twice.'''"))
    os.utime(source, ns=(source.stat().st_mtime_ns + 10**9,) * 2)
    third = discover([folder], bundled=False, cache=SchemaCache(cache_file))
    assert third.get("counted").description == "Counted twice."


def test_a_cached_tool_whose_module_now_fails_reports_it(plugin_dir, tmp_path):
    from toolchat.tools.cache import SchemaCache

    folder = plugin_dir(fragile="def fragile() -> str:\n    '''F.'''\n    return 'ok'\n")
    cache_file = tmp_path / "schemas.json"
    discover([folder], bundled=False, cache=SchemaCache(cache_file))
    import sys

    for name in [m for m in sys.modules if m.endswith("_fragile")]:
        del sys.modules[name]
    registry = discover([folder], bundled=False, cache=SchemaCache(cache_file))
    (folder / "fragile.py").unlink()
    result = run_tool(registry.get("fragile"), {}, cwd=folder)
    assert result.status.value == "error" and "the tool's module failed to load" in result.output
