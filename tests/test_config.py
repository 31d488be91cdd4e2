"""toolchat.yaml: discovery, precedence, file:line errors, trust, secrets, the shipped examples."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from jsonschema import Draft202012Validator

from tests.support.fakeserver import FakeServer, openai_calls, sse, text_stream
from toolchat.config.file import load_file
from toolchat.config.settings import load
from toolchat.errors import ConfigError

REPO = Path(__file__).resolve().parents[1]
KEY = "sk-FAKE-recognisable-0123456789abcdef"


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = tmp_path / "proj"
    write(
        root / "mytools" / "shout.py",
        'def shout(text: str) -> str:\n    """Shout it.\n\n    Args:\n        text: What to shout\n    """\n    return text.upper()\n',
    )
    (root / "sub" / "deeper").mkdir(parents=True)
    return root


def config_error(path: Path, environ=None) -> str:
    with pytest.raises(ConfigError) as info:
        load_file(path, environ or {}).require_set()  # a ${VAR} not set is said when the file is used
    return str(info.value)


@pytest.mark.parametrize(
    "text, line, message",
    [
        ("profile: a\nprofiles:\n  a: [unclosed\n", "3:6", "'[' is never closed"),
        ("max_rounds: 3\ntools:\n  timout: 5\n", "3:3", "unknown key 'tools.timout'; did you mean 'timeout'?"),
        ("profiles:\n  x:\n    backend: opneai\n", "3:5", "unknown backend 'opneai'; use one of: openai, local"),
        ("max_rounds: lots\n", "1:1", "'max_rounds' must be an integer, not 'lots'"),
        ("tools:\n  bundled: 1\n", "2:3", "'tools.bundled' must be true or false, not 1"),
        (
            "system: hi\nprofiles:\n  x:\n    api_key: ${NOT_SET_ANYWHERE}\n",
            "4:5",
            "environment variable NOT_SET_ANYWHERE is not set",
        ),
        ("modle: gpt\n", "1:1", "unknown key 'modle'; did you mean 'model'?"),
        ("- just\n- a list\n", "1:1", "the config must be a mapping of keys"),
        ("tools:\n  paths: [ok, 3]\n", "2:15", "tools.paths entries must be strings"),
    ],
)
def test_every_error_names_file_line_and_key(tmp_path, text, line, message):
    path = write(tmp_path / "toolchat.yaml", text)
    error = config_error(path)
    assert error.startswith(f"{path}:{line}: "), error
    assert message in error


def test_variables_expand_with_defaults(tmp_path):
    path = write(tmp_path / "c.yaml", "base_url: http://${HOST:-localhost}:${PORT}/v1\n")
    assert load_file(path, {"PORT": "8000"}).data["base_url"] == "http://localhost:8000/v1"


def settings_in(cwd: Path, tmp_path: Path, overrides=None, **kwargs):
    return load(
        None,
        overrides or {},
        config_dir=tmp_path / "_config",
        data_dir=tmp_path / "_data",
        cwd=cwd,
        environ=kwargs.pop("environ", {}),
        **kwargs,
    )


def trust(project: Path, tmp_path: Path) -> None:
    from toolchat.config.trust import TrustStore

    TrustStore(tmp_path / "_data").trust(load_file(project / "toolchat.yaml", {}))


def test_discovery_from_a_nested_folder_and_relative_paths(project, tmp_path):
    write(project / "toolchat.yaml", "model: m\nbackend: openai\ntools:\n  paths: [mytools]\n")
    trust(project, tmp_path)
    settings = settings_in(project / "sub" / "deeper", tmp_path)
    assert settings.model == "m" and settings.tool_paths == [project / "mytools"]
    assert settings.project_dir == project
    assert settings.origins["model"] == f"{project / 'toolchat.yaml'}:1:1"


def test_dot_toolchat_yaml_is_found_too(project, tmp_path):
    write(project / ".toolchat.yaml", "model: hidden\nbackend: openai\n")
    from toolchat.config.trust import TrustStore

    TrustStore(tmp_path / "_data").trust(load_file(project / ".toolchat.yaml", {}))
    assert settings_in(project / "sub", tmp_path).model == "hidden"


def test_precedence_user_then_project_then_flags(project, tmp_path):
    write(
        tmp_path / "_config" / "config.yaml",
        "backend: openai\nmodel: user-model\ntemperature: 0.1\nmax_rounds: 4\ntools:\n  allow: [a]\n",
    )
    write(project / "toolchat.yaml", "model: project-model\nmax_rounds: 6\ntools:\n  allow: [b]\n")
    trust(project, tmp_path)
    settings = settings_in(project, tmp_path, {"max_rounds": 8, "allow": ["c"]})
    assert (settings.model, settings.temperature, settings.max_rounds) == ("project-model", 0.1, 8)
    assert settings.allow == ["a", "b", "c"]
    assert settings.origins["max_rounds"] == "command line"
    assert settings.origins["temperature"].endswith("_config/config.yaml:3:1")


def test_profiles_and_an_unknown_profile(project, tmp_path):
    write(
        project / "toolchat.yaml",
        "profile: a\nprofiles:\n  a:\n    backend: openai\n    model: ma\n"
        "  b:\n    backend: local\n    model: bundled\n",
    )
    trust(project, tmp_path)
    assert settings_in(project, tmp_path).model == "ma"
    assert settings_in(project, tmp_path, {"profile": "b"}).backend == "local"
    with pytest.raises(ConfigError, match="no profile named 'c'"):
        settings_in(project, tmp_path, {"profile": "c"})


def test_untrusted_refused_trusted_used_edited_refused_again(project, tmp_path):
    path = write(project / "toolchat.yaml", "model: m\nbackend: openai\n")
    with pytest.raises(ConfigError) as info:
        settings_in(project, tmp_path)
    assert "is not trusted yet" in str(info.value) and f"toolchat config trust {path}" in str(info.value)
    trust(project, tmp_path)
    assert settings_in(project, tmp_path).model == "m"
    path.write_text("model: m\nbackend: openai\nbase_url: http://evil.example/v1\n")
    with pytest.raises(ConfigError, match="has changed since you trusted it"):
        settings_in(project, tmp_path)
    assert settings_in(project, tmp_path, on_untrusted=lambda config: True).base_url == "http://evil.example/v1"
    assert settings_in(project, tmp_path).base_url == "http://evil.example/v1"  # the answer was recorded


def test_validation_comes_before_trust(project, tmp_path):
    write(project / "toolchat.yaml", "modle: x\n")
    with pytest.raises(ConfigError, match="unknown key 'modle'"):
        settings_in(project, tmp_path, on_untrusted=lambda config: pytest.fail("asked to trust a broken file"))


@pytest.mark.parametrize("example", sorted((REPO / "configs").glob("*.yaml")), ids=lambda p: p.name)
def test_each_shipped_example_validates(example):
    environ = {"OPENAI_API_KEY": "x", "VLLM_API_KEY": "y"}
    config = load_file(example, environ)
    schema = json.loads((REPO / "configs" / "toolchat.schema.json").read_text())
    Draft202012Validator.check_schema(schema)
    assert list(Draft202012Validator(schema).iter_errors(config.data)) == []


def test_the_schema_rejects_what_the_validator_rejects():
    schema = json.loads((REPO / "configs" / "toolchat.schema.json").read_text())
    validator = Draft202012Validator(schema)
    for bad in ({"modle": "x"}, {"tools": {"timout": 1}}, {"profiles": {"a": {"backend": "nope"}}}):
        assert list(validator.iter_errors(bad))


# --- through the CLI, as a user ------------------------------------------------------------------


def test_done_when_trust_once_then_ask_from_a_subfolder_uses_it_all(run_cli, project):
    with FakeServer() as server:
        write(
            project / "toolchat.yaml",
            f"profile: dev\nprofiles:\n  dev:\n    backend: openai\n"
            f"    base_url: {server.url}\n    model: proj-model\n    api_key: ${{PROJ_KEY}}\n"
            "tools:\n  paths: [mytools]\n  allow: [shout]\n",
        )
        env = {"PROJ_KEY": KEY}
        sub = project / "sub" / "deeper"
        refused = run_cli("ask", "hello", cwd=sub, env=env)
        assert refused.returncode == 2 and "toolchat config trust" in refused.stderr and server.requests == []
        trusted = run_cli("config", "trust", cwd=sub, env=env)
        assert (
            trusted.returncode == 0
            and "profiles.dev.api_key: ${PROJ_KEY}" in trusted.stdout
            and KEY not in trusted.stdout
        )
        server.add(sse(openai_calls([("shout", {"text": "hi"})])), sse(text_stream("HI!")))
        done = run_cli("ask", "--json", "shout hi", cwd=sub, env=env)
        assert done.returncode == 0, done.stderr
        assert server.headers[0]["authorization"] == f"Bearer {KEY}"
        assert server.requests[0]["model"] == "proj-model"
        assert json.loads(done.stdout)["tool_calls"][0]["output"] == "HI"  # allowed without asking
        assert KEY not in done.stdout + done.stderr


def test_a_typo_stops_with_file_line_and_key(run_cli, project):
    write(project / "toolchat.yaml", "profile: dev\nprofiles:\n  dev:\n    bakend: openai\n")
    done = run_cli("ask", "hello", cwd=project / "sub")
    assert done.returncode == 2
    assert done.stderr.strip() == (
        f"toolchat: error: {project / 'toolchat.yaml'}:4:5: unknown key 'profiles.dev.bakend'; did you mean 'backend'?"
    )
    broken = run_cli("config", "validate", str(write(project / "other.yaml", "a: [\n")))
    assert broken.returncode == 2 and f"{project / 'other.yaml'}:1:4: '[' is never closed" in broken.stderr


def test_secrets_are_never_printed_or_stored(run_cli, project, isolated_env):
    write(project / "toolchat.yaml", "backend: openai\nbase_url: http://127.0.0.1:9/v1\napi_key: ${PROJ_KEY}\n")
    env = {"PROJ_KEY": KEY}
    outputs = [
        run_cli("config", "show", cwd=project, env=env),
        run_cli("config", "trust", cwd=project, env=env),
        run_cli("config", "show", cwd=project, env=env),
        run_cli("ask", "hi", cwd=project, env=env),
        run_cli("ask", "--json", "hi", cwd=project, env={**env, "TOOLCHAT_DEBUG": "1"}),
    ]
    assert "${PROJ_KEY}" in outputs[0].stdout and "*** (set, hidden)" in outputs[2].stdout  # as written, untrusted
    assert "cannot connect" in outputs[3].stderr
    for done in outputs:
        assert KEY not in done.stdout + done.stderr
    for folder in ("TOOLCHAT_DATA_DIR", "TOOLCHAT_CONFIG_DIR", "TOOLCHAT_CACHE_DIR"):
        for file in Path(isolated_env[folder]).rglob("*"):
            if file.is_file():
                assert KEY.encode() not in file.read_bytes(), file


def test_config_init_writes_a_commented_file_and_refuses_to_overwrite(run_cli, tmp_path):
    folder = tmp_path / "fresh"
    folder.mkdir()
    done = run_cli("config", "init", cwd=folder)
    assert done.returncode == 0, done.stderr
    text = (folder / "toolchat.yaml").read_text()
    assert "toolchat config schema" in text and "$schema=toolchat.schema.json" in text
    assert str(tmp_path) not in text and str(REPO) not in text and "site-packages" not in text  # fits every clone
    schema = run_cli("config", "schema")
    assert json.loads(schema.stdout) == json.loads((REPO / "configs" / "toolchat.schema.json").read_text())
    assert yaml.safe_load(text)["profile"] == "local"
    assert run_cli("config", "validate", cwd=folder).stdout.strip().endswith("toolchat.yaml: valid")
    again = run_cli("config", "init", cwd=folder)
    assert again.returncode == 2 and "already exists" in again.stderr
    assert "trusted" in run_cli("config", "path", cwd=folder).stdout


def test_tools_commands_need_trust_too(run_cli, project):
    write(project / "toolchat.yaml", "tools:\n  paths: [mytools]\n")
    done = run_cli("tools", "list", cwd=project)
    assert done.returncode == 2 and "not trusted" in done.stderr
    assert run_cli("tools", "list", "-c", str(project / "toolchat.yaml"), cwd=project).returncode == 0


def test_config_init_trusts_in_the_data_dir_it_was_given_and_nowhere_else(run_cli, isolated_env, tmp_path, monkeypatch):
    # the process's own environment names another data dir: a command that built its own
    # Environment would write trust there, outside what it was handed
    elsewhere = tmp_path / "process-data-dir"
    monkeypatch.setenv("TOOLCHAT_DATA_DIR", str(elsewhere))
    folder = tmp_path / "fresh"
    folder.mkdir()
    done = run_cli("config", "init", cwd=folder)
    assert done.returncode == 0, done.stderr
    assert "trusted, since you made it" in done.stdout
    assert not elsewhere.exists() or not any(elsewhere.rglob("*"))
    given = Path(isolated_env["TOOLCHAT_DATA_DIR"])
    assert any(p.is_file() for p in given.rglob("*")), "the trust was written nowhere"
    assert "trusted" in run_cli("config", "path", cwd=folder).stdout
