"""`toolchat tools ...` as a user runs it, in a subprocess."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest

from tests.support.fakeserver import FakeServer, openai_calls, sse, text_stream

GUIDE = '''
def get_current_temperature(location: str, unit: str):
    """
    Get the current temperature at a location.

    Args:
        location: The location to get the temperature for, in the format "City, Country"
        unit: The unit to return the temperature in. (choices: ["celsius", "fahrenheit"])
    """
    return 22.


def get_current_wind_speed(location: str):
    """
    Get the current wind speed in km/h at a given location.

    Args:
        location: The location to get the wind speed for, in the format "City, Country"
    """
    return 6.


def multiply(a: float, b: float):
    """
    A function that multiplies two numbers

    Args:
        a: The first number to multiply
        b: The second number to multiply
    """
    return a * b


def current_time():
    """Get the current local time as a string."""
    return "12:00"
'''

# What the transformers guide shows for these functions.
GUIDE_SCHEMAS = [
    {
        "type": "function",
        "function": {
            "name": "get_current_temperature",
            "description": "Get the current temperature at a location.",
            "parameters": {
                "type": "object",
                "properties": {
                    "location": {
                        "type": "string",
                        "description": 'The location to get the temperature for, in the format "City, Country"',
                    },
                    "unit": {
                        "type": "string",
                        "enum": ["celsius", "fahrenheit"],
                        "description": "The unit to return the temperature in.",
                    },
                },
                "required": ["location", "unit"],
            },
        },
    },
    {
        "type": "function",
        "function": {
            "name": "get_current_wind_speed",
            "description": "Get the current wind speed in km/h at a given location.",
            "parameters": {
                "type": "object",
                "properties": {
                    "location": {
                        "type": "string",
                        "description": 'The location to get the wind speed for, in the format "City, Country"',
                    }
                },
                "required": ["location"],
            },
        },
    },
    {
        "type": "function",
        "function": {
            "name": "multiply",
            "description": "A function that multiplies two numbers",
            "parameters": {
                "type": "object",
                "properties": {
                    "a": {"type": "number", "description": "The first number to multiply"},
                    "b": {"type": "number", "description": "The second number to multiply"},
                },
                "required": ["a", "b"],
            },
        },
    },
    {
        "type": "function",
        "function": {
            "name": "current_time",
            "description": "Get the current local time as a string.",
            "parameters": {"type": "object", "properties": {}},
        },
    },
]


@pytest.fixture
def guide(plugin_dir) -> Path:
    return plugin_dir("guide", functions=GUIDE)


def test_schema_of_the_guides_functions(cli, guide):
    done = cli("tools", "schema", "--tools", str(guide), "--no-bundled-tools")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == GUIDE_SCHEMAS


def test_schema_of_named_tools_and_an_unknown_name(cli, guide):
    done = cli("tools", "schema", "multiply", "-t", str(guide))
    assert [d["function"]["name"] for d in json.loads(done.stdout)] == ["multiply"]
    done = cli("tools", "schema", "multiplied", "-t", str(guide))
    assert done.returncode == 2
    assert done.stderr.strip() == "toolchat: error: no tool named 'multiplied' (did you mean 'multiply'?)"
    assert done.stdout == ""


def test_list_shows_good_tools_and_names_the_broken_file(cli, plugin_dir):
    folder = plugin_dir(
        GUIDE_OK="", broken="import not_installed_pkg\n", weather="def get_weather(city: str):\n    '''Real.'''\n"
    )
    (folder / "guide.py").write_text(GUIDE)
    done = cli("tools", "list", "--tools", str(folder))
    assert done.returncode == 0, done.stderr
    for name in ("get_current_temperature", "multiply", "current_time", "calculate", "read_file"):
        assert name in done.stdout
    assert "plugins/broken.py: ModuleNotFoundError: No module named 'not_installed_pkg'" in done.stdout
    assert "your 'get_weather' replaces the bundled tool of that name (weather.py)" in done.stdout
    assert "Traceback" not in done.stdout + done.stderr


def test_list_without_bundled_tools(cli, guide):
    done = cli("tools", "list", "-t", str(guide), "--no-bundled-tools")
    assert "multiply" in done.stdout and "calculate" not in done.stdout


def test_bundled_tools_off_in_config(cli, guide, tmp_path):
    config = tmp_path / "toolchat.yaml"
    config.write_text("tools:\n  bundled: false\n  paths: [guide]\n")
    done = cli("tools", "list", "-c", str(config))
    assert "multiply" in done.stdout and "calculate" not in done.stdout


def test_show(cli, guide):
    done = cli("tools", "show", "get_current_temperature", "-t", str(guide))
    assert done.returncode == 0
    assert "Get the current temperature at a location." in done.stdout
    assert 'string one of "celsius", "fahrenheit"' in done.stdout
    assert str(guide / "functions.py") in done.stdout


def test_run_validates_then_runs(cli, guide):
    done = cli("tools", "run", "multiply", "--args", '{"a": 6, "b": 7}', "-t", str(guide))
    assert (done.returncode, done.stdout.strip()) == (0, "42")
    done = cli("tools", "run", "multiply", "--args", '{"a": "6", "b": 7}', "-t", str(guide))
    assert done.returncode == 2
    assert "invalid arguments for 'multiply': argument 'a' must be number, got \"6\"" in done.stderr
    done = cli("tools", "run", "multiply", "--args", '{"a": 6', "-t", str(guide))
    assert done.returncode == 2 and "arguments are not valid JSON" in done.stderr


def test_run_reports_a_failing_tool(cli, plugin_dir):
    folder = plugin_dir(bad="def bad():\n    '''Bad.'''\n    raise KeyError('k')\n")
    done = cli("tools", "run", "bad", "-t", str(folder))
    assert done.returncode == 1
    assert "tool error: Error: KeyError: 'k'" in done.stderr
    assert "Traceback" not in done.stderr


def test_duplicate_user_tools_stop_with_both_files(cli, plugin_dir):
    folder = plugin_dir(a="def twin():\n    '''A.'''\n", b="def twin():\n    '''B.'''\n")
    done = cli("tools", "list", "-t", str(folder))
    assert done.returncode == 2
    assert f"two tools are named 'twin': in {folder / 'a.py'} and in {folder / 'b.py'}" in done.stderr


def test_missing_tools_path(cli, tmp_path):
    done = cli("tools", "list", "-t", str(tmp_path / "nowhere"))
    assert done.returncode == 2 and "tool path not found" in done.stderr


def test_tool_text_cannot_inject_terminal_escapes(cli, plugin_dir):
    folder = plugin_dir(
        evil='def evil():\n    """Looks \\x1b[2J[bold red]innocent[/]."""\n    return "\\x1b]0;pwned\\x07"\n'
    )
    listed = cli("tools", "list", "-t", str(folder))
    ran = cli("tools", "run", "evil", "-t", str(folder))
    for text in (listed.stdout, ran.stdout):
        assert "\x1b" not in text and "\x07" not in text
    assert "\\x1b[2J[bold red]innocent[/]" in listed.stdout
    assert "\\x1b]0;pwned\\x07" in ran.stdout


def test_version_and_help_do_not_import_heavy_modules(tmp_path):
    probe = (
        "import sys\n"
        "from toolchat.commands.app import main\n"
        "main(sys.argv[1:])\n"
        "heavy = [m for m in ('openai', 'llama_cpp', 'prompt_toolkit') if m in sys.modules]\n"
        "print('HEAVY:', heavy, file=sys.stderr)\n"
    )
    for args in (["--help"], ["--version"], ["tools", "list"]):
        done = subprocess.run([sys.executable, "-c", probe, *args], capture_output=True, text=True, cwd=tmp_path)
        assert "HEAVY: []" in done.stderr, (args, done.stderr)


def test_the_wheel_ships_the_bundled_tools(tmp_path):
    import shutil

    root = Path(__file__).resolve().parents[1]
    source = tmp_path / "source"  # a copy: building writes build/ and *.egg-info beside the sources
    shutil.copytree(
        root,
        source,
        ignore=shutil.ignore_patterns(
            ".git", ".venv", "build", "dist", "*.egg-info", "__pycache__", "tests", "benchmarks", ".hypothesis"
        ),
    )
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp_path), str(source)],
        check=True,
        capture_output=True,
    )
    wheel = next(tmp_path.glob("toolchat-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    for module in ("weather.py", "calculator.py", "clock.py", "files.py"):
        assert f"toolchat/bundled_tools/{module}" in names


def test_plugins_that_print_or_exit_at_import_cannot_spoil_the_output(cli, plugin_dir):
    folder = plugin_dir(
        noisy="import os\nos.write(1, b'{garbage')\nos.system('echo shell noise')\n\n"
        "def noisy() -> str:\n    '''Noisy.'''\n    return 'n'\n",
        leaver="import os\nos._exit(0)\n",
    )
    done = cli("tools", "schema", "-t", str(folder), "--no-bundled-tools")
    assert done.returncode == 0, done.stderr
    assert [d["function"]["name"] for d in json.loads(done.stdout)] == ["noisy"]
    done = cli("tools", "list", "-t", str(folder), "--no-bundled-tools")
    assert "noisy" in done.stdout and "garbage" not in done.stdout and "shell noise" not in done.stdout
    assert "plugins/leaver.py: the process exited with code 0 while importing it" in done.stdout


def test_ask_json_stays_one_json_object_when_a_plugin_writes_to_fd_1_at_import(cli, plugin_dir):
    folder = plugin_dir(
        noisy="import os\nos.write(1, b'{not json')\nos.system('echo shell at import')\n\n"
        "def noisy() -> str:\n    '''Noisy.'''\n    return 'value'\n"
    )
    with FakeServer() as server:
        server.add(sse(openai_calls([("noisy", {})])), sse(text_stream("The answer.")))
        done = cli(
            "ask", "--json", "--yes", "--tools", str(folder), "--no-bundled-tools", "--base-url", server.url, "go"
        )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["answer"] == "The answer."
    # what the module printed while the call imported it is part of the call's result, as any print
    assert "[printed output]\n{not jsonshell at import" in server.requests[1]["messages"][-1]["content"]


@pytest.mark.parametrize("signal_number", [signal.SIGHUP, signal.SIGTERM, signal.SIGKILL])
def test_nothing_a_tool_started_outlives_ask(isolated_env, plugin_dir, tmp_path, signal_number):
    pid_file = tmp_path / "pids"
    folder = plugin_dir(
        slow=f"""
        import os, subprocess, time

        def slow() -> str:
            '''Slow.'''
            daemon = os.fork()
            if daemon == 0:  # a daemon of the tool's own, in a session of its own
                os.setsid()
                time.sleep(60)
                os._exit(0)
            child = subprocess.Popen(["sleep", "60"])
            with open({str(pid_file)!r}, "w") as f:
                f.write(f"{{os.getpid()}} {{child.pid}} {{daemon}}")
            time.sleep(60)
        """
    )
    with FakeServer() as server:
        server.add(sse(openai_calls([("slow", {})])))
        ask = subprocess.Popen(
            [sys.executable, "-m", "toolchat", "ask", "--yes", "--tools", str(folder), "--base-url", server.url, "go"],
            env=isolated_env,
            cwd=tmp_path,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
            preexec_fn=lambda: signal.signal(signal.SIGHUP, signal.SIG_DFL),
        )
        try:
            deadline = time.monotonic() + 60
            while not (pid_file.exists() and len(pid_file.read_text().split()) == 3):
                assert time.monotonic() < deadline and ask.poll() is None, "the tool never started"
                time.sleep(0.05)
            ask.send_signal(signal_number)
            ask.wait(15)
        finally:
            ask.kill()
    for pid in map(int, pid_file.read_text().split()):
        assert _gone(pid), "a process the tool started outlived toolchat"


def _gone(pid: int, seconds: float = 5) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            with open(f"/proc/{pid}/stat") as stat:
                if stat.read().rsplit(")", 1)[1].split()[0] == "Z":
                    return True
        except OSError:
            return True
        time.sleep(0.05)
    return False
