"""The keys added for timeouts, retries, tracing and MCP servers: validated like every key (file:line,
did-you-mean, the JSON Schema), merged user -> project by name, shown by `config show` and the trust
prompt as command lines or URLs, never their secrets."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator

from toolchat import defaults
from toolchat.config.file import load_file
from toolchat.config.settings import load
from toolchat.config.trust import TrustStore
from toolchat.errors import ConfigError

REPO = Path(__file__).resolve().parents[1]
SCHEMA = json.loads((REPO / "configs" / "toolchat.schema.json").read_text())
TOKEN = "docs-token-0123456789-recognisable"


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def settings_in(cwd: Path, tmp_path: Path, environ=None, overrides=None, **kwargs):
    return load(
        None,
        overrides or {},
        config_dir=tmp_path / "_config",
        data_dir=tmp_path / "_data",
        cwd=cwd,
        environ=environ or {},
        **kwargs,
    )


def trusted(path: Path, tmp_path: Path, environ=None) -> Path:
    TrustStore(tmp_path / "_data").trust(load_file(path, environ or {}))
    return path


def schema_errors(data: dict) -> list:
    return list(Draft202012Validator(SCHEMA).iter_errors(data))


def test_defaults_come_from_one_place(tmp_path):
    settings = settings_in(tmp_path, tmp_path)
    assert (settings.response_timeout, settings.max_retries) == (defaults.RESPONSE_TIMEOUT, defaults.MAX_RETRIES)
    assert (settings.request_timeout, settings.tool_timeout) == (defaults.REQUEST_TIMEOUT, defaults.TOOL_TIMEOUT)
    assert (settings.max_rounds, settings.max_output_chars) == (defaults.MAX_ROUNDS, defaults.MAX_OUTPUT_CHARS)
    assert settings.trace is None and settings.mcp_servers == []


def test_timeouts_retries_and_trace_from_a_profile(tmp_path):
    write(
        tmp_path / "_config" / "config.yaml",
        "profile: p\ntrace: traces/run.jsonl\nprofiles:\n  p:\n    response_timeout: 30\n    max_retries: 0\n",
    )
    settings = settings_in(tmp_path / "elsewhere", tmp_path)
    assert (settings.response_timeout, settings.max_retries) == (30.0, 0)
    assert settings.trace == tmp_path / "_config" / "traces" / "run.jsonl"  # against the file's folder
    assert settings.origins["max_retries"].endswith("config.yaml:6:5")


@pytest.mark.parametrize(
    "text, line, message",
    [
        (
            "profiles:\n  p:\n    max_retires: 1\n",
            "3:5",
            "unknown key 'profiles.p.max_retires'; did you mean 'max_retries'?",
        ),
        ("response_timout: 5\n", "1:1", "unknown key 'response_timout'; did you mean 'response_timeout'?"),
        ("max_retries: -1\n", "1:1", "'max_retries' must be from 0 to 100, not -1"),
        ("response_timeout: 0\n", "1:1", "'response_timeout' must be a number of seconds above 0, not 0"),
        ("tools:\n  timeout: 1.0e+10\n", "2:3", "'tools.timeout' must be a number of seconds above 0"),
        ("trace: [a]\n", "1:1", "'trace' must be a string"),
        (
            "mcp_servers:\n  time:\n    comand: mcp-server-time\n",
            "3:5",
            "unknown key 'mcp_servers.time.comand'; did you mean 'command'?",
        ),
        ("mcp_servers:\n  time:\n    args: [x]\n", "2:3", "MCP server 'time' has neither 'command' nor 'url'"),
        ("mcp_servers:\n  t:\n    command: a\n    url: http://x\n", "2:3", "has both 'command' and 'url'"),
        ("mcp_servers:\n  t:\n    url: http://x\n    type: sse\n", "4:5", "unknown type 'sse' for MCP server 't'"),
        ("mcp_servers:\n  t:\n    command: a\n    type: http\n", "4:5", "is type http but has a command"),
        ("mcp_servers:\n  t:\n    command: a\n    env: {A: [1]}\n", "4:11", "'mcp_servers.t.env.A' must be a string"),
        ("mcp_servers:\n  t:\n    command: a\n    tools: [1]\n", "4:13", "mcp_servers.t.tools entries must be strings"),
        ("mcp_servers:\n  t:\n    command: a\n    startup_timeout: -1\n", "4:5", "must be a number of seconds above 0"),
        ("mcp_servers:\n  t: mcp-server-time\n", "2:3", "MCP server 't' must be a mapping"),
        ("mcp_servers:\n  t:\n    command: ' '\n", "3:5", "MCP server 't' has an empty command"),
        ("mcp_servers:\n  t:\n    url: docs.example/mcp\n", "3:5", "url must start with http:// or https://"),
    ],
)
def test_new_keys_are_validated_with_file_line_and_the_schema_agrees(tmp_path, text, line, message):
    path = write(tmp_path / "toolchat.yaml", text)
    with pytest.raises(ConfigError) as info:
        load_file(path, {})
    assert str(info.value).startswith(f"{path}:{line}: ") and message in str(info.value), str(info.value)
    import yaml

    assert schema_errors(yaml.safe_load(text)), "the schema accepts what the validator refuses"


MCP_YAML = """\
mcp_servers:
  time:
    command: mcp-server-time
    args: ["--local-timezone", UTC, 3]
  git:
    command: mcp-server-git
    args: ["--repository", "."]
    cwd: repo
    env: {GIT_TOKEN: "${GIT_TOKEN}", MODE: plain}
    timeout: 5
    startup_timeout: 10
    enabled: false
    tools: [git_status]
  docs:
    url: https://docs.example/mcp
    headers: {Authorization: "Bearer ${DOCS_TOKEN}"}
"""


def test_mcp_servers_become_specs_with_origins_and_secrets(tmp_path):
    project = tmp_path / "proj"
    path = write(project / "toolchat.yaml", MCP_YAML)
    environ = {"DOCS_TOKEN": TOKEN, "GIT_TOKEN": "git-secret-value-abcdef"}
    assert schema_errors(load_file(path, environ).data) == []
    trusted(path, tmp_path, environ)
    settings = settings_in(project / "sub", tmp_path, environ)
    time, git, docs = settings.mcp_servers
    assert (time.name, time.type, time.args, time.cwd) == ("time", "stdio", ["--local-timezone", "UTC", "3"], project)
    assert time.origin == f"{path}:2:3" and time.startup_timeout == defaults.MCP_STARTUP_TIMEOUT and time.tools is None
    assert (git.cwd, git.timeout, git.startup_timeout, git.enabled, git.tools) == (
        project / "repo",
        5.0,
        10.0,
        False,
        ["git_status"],
    )
    assert git.env == {"GIT_TOKEN": "git-secret-value-abcdef", "MODE": "plain"}
    assert (docs.type, docs.url, docs.headers) == (
        "http",
        "https://docs.example/mcp",
        {"Authorization": f"Bearer {TOKEN}"},
    )
    redactor = settings.redactor()
    assert TOKEN not in redactor.redact(f"echo {TOKEN.upper()} and git-secret-value-abcdef")
    assert "plain" in redactor.redact("MODE plain")  # not a secret: not hidden


def test_user_and_project_servers_merge_by_name_later_wins(tmp_path):
    write(
        tmp_path / "_config" / "config.yaml",
        "mcp_servers:\n  time:\n    command: old-time\n  fetch:\n    command: mcp-server-fetch\n",
    )
    project = tmp_path / "proj"
    trusted(write(project / "toolchat.yaml", "mcp_servers:\n  time:\n    command: mcp-server-time\n"), tmp_path)
    servers = {s.name: s for s in settings_in(project, tmp_path).mcp_servers}
    assert servers["time"].command == "mcp-server-time" and servers["time"].origin.startswith(str(project))
    assert servers["fetch"].command == "mcp-server-fetch"


def test_mcp_flags_add_servers_and_replace_one_of_the_same_name(tmp_path):
    from toolchat.config.mcp_spec import McpServerSpec

    trusted(
        write(
            tmp_path / "proj" / "toolchat.yaml",
            "mcp_servers:\n  time:\n    command: mcp-server-time\n  git:\n    command: mcp-server-git\n",
        ),
        tmp_path,
    )
    flags = [
        McpServerSpec(
            name="time",
            type="stdio",
            command="mcp-server-time",
            args=["--local-timezone", "Asia/Tokyo"],
            origin="command line (--mcp)",
        ),
        McpServerSpec(name="docs", type="http", url="http://127.0.0.1:9/mcp", origin="command line (--mcp)"),
    ]
    servers = settings_in(tmp_path / "proj", tmp_path, overrides={"mcp_servers": flags}).mcp_servers
    assert [(s.name, s.args, s.cwd) for s in servers] == [
        ("git", [], tmp_path / "proj"),
        ("time", ["--local-timezone", "Asia/Tokyo"], tmp_path / "proj"),
        ("docs", [], None),
    ]


@pytest.mark.parametrize("key", ["mcpServers", "servers"])
def test_mcp_servers_may_name_a_claude_cursor_or_vscode_json_file(tmp_path, key):
    project = tmp_path / "proj"
    write(
        project / ".mcp.json",
        json.dumps(
            {
                key: {
                    "time": {"command": "mcp-server-time", "args": ["--local-timezone", "${TZ_NAME:-UTC}"]},
                    "docs": {"type": "http", "url": "https://${HOST}/mcp", "headers": {"X-Api-Key": "${DOCS_TOKEN}"}},
                }
            },
            indent=2,
        ),
    )
    trusted(write(project / "toolchat.yaml", "mcp_servers: .mcp.json\n"), tmp_path)
    settings = settings_in(project, tmp_path, {"HOST": "docs.example", "DOCS_TOKEN": TOKEN})
    time, docs = settings.mcp_servers
    assert time.args == ["--local-timezone", "UTC"] and time.origin == f"{project / '.mcp.json'}:3:5"
    assert docs.url == "https://docs.example/mcp" and docs.headers == {"X-Api-Key": TOKEN}
    assert settings.redactor().redact(TOKEN) == "***"


def test_a_broken_or_wrong_json_file_is_a_config_error_naming_it_before_any_trust(tmp_path):
    project = tmp_path / "proj"
    config = write(project / "toolchat.yaml", "mcp_servers: .mcp.json\n")
    asked = lambda file: pytest.fail("asked to trust a file that does not validate")
    with pytest.raises(ConfigError, match="toolchat.yaml:1:1: mcp_servers names .*mcp.json, which is not a file"):
        settings_in(project, tmp_path, on_untrusted=asked)
    write(project / ".mcp.json", '{"mcpServers": {\n  "time": {"comand": "x"}\n}}')
    with pytest.raises(ConfigError, match=r"\.mcp\.json:2:3: unknown key 'mcpServers.time.comand'; did you mean"):
        settings_in(project, tmp_path, on_untrusted=asked)
    write(project / ".mcp.json", '{"mcpServers": {\n  "time": {"command": "x",}\n}}')
    with pytest.raises(ConfigError, match=r"\.mcp\.json:2:\d+: broken JSON"):
        load_file(config, {})


def test_trust_covers_the_json_file_too(tmp_path):
    project = tmp_path / "proj"
    write(project / ".mcp.json", '{"mcpServers": {"time": {"command": "mcp-server-time"}}}')
    trusted(write(project / "toolchat.yaml", "mcp_servers: .mcp.json\n"), tmp_path)
    assert settings_in(project, tmp_path).mcp_servers[0].command == "mcp-server-time"
    write(project / ".mcp.json", '{"mcpServers": {"time": {"command": "curl", "args": ["evil.example"]}}}')
    with pytest.raises(ConfigError, match="has changed since you trusted it"):
        settings_in(project, tmp_path)


def test_config_show_and_trust_list_servers_never_their_secrets(cli, tmp_path):
    project = tmp_path / "proj"
    write(project / "toolchat.yaml", MCP_YAML)
    env = {"DOCS_TOKEN": TOKEN, "GIT_TOKEN": "git-secret-value-abcdef"}
    shown = cli("config", "show", cwd=project, env=env)
    assert shown.returncode == 0, shown.stderr
    assert "mcp-server-time --local-timezone UTC 3" in shown.stdout
    assert "https://docs.example/mcp" in shown.stdout and "(disabled)" in shown.stdout
    trusting = cli("config", "trust", cwd=project, env=env)
    assert "mcp_servers.git: runs mcp-server-git --repository . (sets env GIT_TOKEN, MODE)" in trusting.stdout
    assert "mcp_servers.docs: connects to https://docs.example/mcp (sets headers Authorization)" in trusting.stdout
    again = cli("config", "show", cwd=project, env=env)
    for done in (shown, trusting, again):
        assert TOKEN not in done.stdout + done.stderr and "git-secret-value" not in done.stdout + done.stderr
