"""Discovery: folders and files become tools; broken modules are reported, not fatal."""

from __future__ import annotations

from pathlib import Path

import pytest

from toolchat.errors import ToolLoadError
from toolchat.tools import RunLimits, discover

BUNDLED = {"get_weather", "calculate", "current_datetime", "list_directory", "read_file", "search_text"}


def test_public_functions_defined_in_the_module_are_tools(plugin_dir):
    folder = plugin_dir(
        mine='''
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
    '''
    )
    registry = discover([folder], bundled=False)
    assert registry.names() == ["greet", "later"]
    assert registry.get("greet").source == (folder / "mine.py").resolve()


def test_a_single_file_and_the_bundled_folder(plugin_dir):
    folder = plugin_dir(one="def one():\n    '''One.'''\n", two="def two():\n    '''Two.'''\n")
    registry = discover([folder / "one.py"])
    assert set(registry.names()) == BUNDLED | {"one"}
    assert all(registry.get(n).origin == "bundled" for n in BUNDLED)
    assert registry.get("one").origin == str((folder / "one.py").resolve())


def test_explicit_definitions_bound_to_callables(plugin_dir):
    folder = plugin_dir(
        explicit="""
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
    """
    )
    registry = discover([folder], bundled=False)
    assert registry.names() == ["current_time", "multiply"]
    assert registry.run(registry.get("current_time"), {}, RunLimits(folder)).output == "noon"
    assert registry.run(registry.get("multiply"), {"a": 6, "b": 7}, RunLimits(folder)).output == "42"


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
    reasons = {Path(p.where).name: p.reason for p in registry.problems()}
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
    assert registry.replaced["get_weather"].source.name == "weather.py"


def test_same_folder_given_twice_is_not_a_conflict(plugin_dir):
    folder = plugin_dir(a="def only():\n    '''A.'''\n")
    assert discover([folder, folder / "a.py"], bundled=False).names() == ["only"]


def test_missing_path_is_a_clear_error(tmp_path):
    with pytest.raises(ToolLoadError, match="tool path not found"):
        discover([tmp_path / "nope"], bundled=False)


def test_a_plugin_can_import_its_sibling_helper(plugin_dir):
    folder = plugin_dir(
        _helpers="def shout(s):\n    return s.upper()\n",
        loud="from _helpers import shout\n\ndef loud(s: str) -> str:\n    '''Loud.'''\n    return shout(s)\n",
    )
    registry = discover([folder], bundled=False)
    assert registry.names() == ["loud"]
    assert registry.run(registry.get("loud"), {"s": "hey"}, RunLimits(folder)).output == "HEY"


def test_the_schema_cache_skips_imports_of_unchanged_modules(plugin_dir, tmp_path):
    import os

    from toolchat.tools.cache import SchemaCache

    marker = tmp_path / "imported"
    folder = plugin_dir(
        counted=f"open({str(marker)!r}, 'a').write('x')\n\n"
        "def counted(n: int) -> int:\n    '''Counted.'''\n    return n * 2\n",
        broken="import not_there_pkg\n",
    )
    cache_file = tmp_path / "cache" / "schemas.json"
    first = discover([folder], bundled=False, cache=SchemaCache(cache_file))
    assert marker.read_text() == "x" and first.names() == ["counted"]
    import sys

    for name in [m for m in sys.modules if m.endswith("_counted")]:
        del sys.modules[name]  # as in a new process
    second = discover([folder], bundled=False, cache=SchemaCache(cache_file))
    assert marker.read_text() == "x", "an unchanged module was imported again just to list it"
    assert second.get("counted").parameters == first.get("counted").parameters
    assert [p.reason for p in second.problems()] == ["ModuleNotFoundError: No module named 'not_there_pkg'"]
    assert second.run(second.get("counted"), {"n": 21}, RunLimits(folder)).output == "42"  # imported on first run
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
    result = registry.run(registry.get("fragile"), {}, RunLimits(folder))
    assert result.status.value == "error" and "FileNotFoundError" in result.output


def test_dangling_symlinks_and_loops_are_skipped_with_a_warning(plugin_dir):
    folder = plugin_dir(good="def fine():\n    '''Fine.'''\n    return 1\n")
    (folder / "dangling.py").symlink_to(folder / "gone.py")
    (folder / "loop.py").symlink_to(folder / "loop.py")
    (folder / ".#good.py").symlink_to("user@host.1234:1700000000")  # an editor's lock link: hidden, skipped quietly
    registry = discover([folder], bundled=False)
    assert registry.names() == ["fine"]
    reasons = {Path(p.where).name: p.reason for p in registry.problems()}
    assert reasons == {"dangling.py": "a symbolic link to nothing; skipped", "loop.py": "a symbolic link loop; skipped"}


def test_a_module_that_hangs_crashes_or_exits_at_import_is_listed_broken(plugin_dir):
    from toolchat.tools import Registry
    from toolchat.tools.folders import PluginFolders

    folder = plugin_dir(
        good="def fine():\n    '''Fine.'''\n    return 1\n",
        hangs="while True:\n    pass\n",
        exits="import os\nos._exit(0)\n",
        crashes="import ctypes\nctypes.string_at(0)\n",
    )
    registry = Registry([PluginFolders([folder], import_timeout=1)])
    assert registry.names() == ["fine"]
    reasons = {Path(p.where).name: p.reason for p in registry.problems()}
    assert reasons == {
        "hangs.py": "importing it took longer than 1 s (does it hang at import?)",
        "exits.py": "the process exited with code 0 while importing it",
        "crashes.py": "the process crashed (signal SIGSEGV) while importing it",
    }


def test_a_failed_import_is_tried_again_next_time(plugin_dir, tmp_path):
    from toolchat.tools.cache import SchemaCache

    folder = plugin_dir(
        uses="from later_helper import VALUE\n\ndef uses() -> int:\n    '''Uses.'''\n    return VALUE\n"
    )
    cache_file = tmp_path / "schemas.json"
    first = discover([folder], bundled=False, cache=SchemaCache(cache_file))
    assert first.names() == [] and "No module named 'later_helper'" in first.problems()[0].reason
    (folder / "later_helper.py").write_text("VALUE = 7\n")  # the missing piece arrives; uses.py is untouched
    second = discover([folder / "uses.py"], bundled=False, cache=SchemaCache(cache_file))
    assert second.names() == ["uses"] and second.problems() == []
    assert second.run(second.get("uses"), {}, RunLimits(folder)).output == "7"


def test_printing_at_import_never_reaches_toolchats_output(plugin_dir, capfd):
    folder = plugin_dir(
        noisy='''
        import os, sys
        print("print at import")
        os.write(1, b"fd 1 at import\\n")
        os.write(2, b"fd 2 at import\\n")
        os.system("echo shell at import")

        def quiet() -> str:
            """Quiet."""
            return "ok"
        '''
    )
    registry = discover([folder], bundled=False)
    assert registry.names() == ["quiet"]
    out, err = capfd.readouterr()
    assert "import" not in out + err


def test_toolchat_itself_never_imports_a_plugin(plugin_dir):
    import sys

    folder = plugin_dir(private="def private_tool() -> str:\n    '''P.'''\n    return 'p'\n")
    registry = discover([folder], bundled=False)
    assert registry.run(registry.get("private_tool"), {}, RunLimits(folder)).output == "p"
    assert not [name for name in sys.modules if name.endswith("_private")]


def test_each_module_has_the_whole_import_time_limit(plugin_dir):
    from toolchat.tools import Registry
    from toolchat.tools.folders import PluginFolders

    slow = "import time\ntime.sleep(0.6)\n\ndef {0}() -> str:\n    '''{0}.'''\n    return '{0}'\n"
    folder = plugin_dir(
        a=slow.format("first"), b=slow.format("second"), c="while True:\n    pass\n", d=slow.format("after_the_hang")
    )
    registry = Registry([PluginFolders([folder], import_timeout=1)])
    assert registry.names() == ["first", "second", "after_the_hang"]
    assert [Path(p.where).name for p in registry.problems()] == ["c.py"]
