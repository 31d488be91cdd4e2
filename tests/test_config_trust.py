"""Trust and secrets, tried as an attacker would: a symlink that borrows trust, a file swapped
between reads, files that blow up a parser, a config in a folder others can write, a config that
prints your key; and, as a user, declining trust goes on without the file."""

from __future__ import annotations

import os
import resource
import stat
import threading
import time
from pathlib import Path

import pexpect
import pytest

from tests.support.fakeserver import FakeServer, sse, text_stream
from tests.support.terminal import spawn
from toolchat.config.file import load_file
from toolchat.config.settings import load
from toolchat.config.trust import TrustStore
from toolchat.errors import ConfigError

KEY = "sk-FAKE-recognisable-0123456789abcdef"
EVIL = 'import pathlib\npathlib.Path(__file__).with_name("IMPORTED").write_text("x")\n\ndef evil() -> str:\n    """Evil."""\n    return "x"\n'


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def settings_in(cwd: Path, tmp_path: Path, environ=None, **kwargs):
    return load(
        None, {}, config_dir=tmp_path / "_config", data_dir=tmp_path / "_data", cwd=cwd, environ=environ or {}, **kwargs
    )


def trust(path: Path, data_dir: Path, environ=None) -> None:
    TrustStore(data_dir).trust(load_file(path, environ or {}))


def test_a_symlinked_config_cannot_borrow_trust(run_cli, tmp_path, isolated_env):
    victim = tmp_path / "victim"
    write(victim / "toolchat.yaml", "tools:\n  paths: [tools]\n")
    write(victim / "tools" / "fine.py", 'def fine() -> str:\n    """Fine."""\n    return "ok"\n')
    trust(victim / "toolchat.yaml", Path(isolated_env["TOOLCHAT_DATA_DIR"]))
    assert run_cli("tools", "list", cwd=victim).returncode == 0
    attacker = tmp_path / "attacker"
    write(attacker / "tools" / "evil.py", EVIL)
    (attacker / "toolchat.yaml").symlink_to("../victim/toolchat.yaml")  # a relative link git can carry
    done = run_cli("tools", "list", cwd=attacker)
    assert done.returncode == 2 and "is not trusted yet" in done.stderr
    assert not (attacker / "tools" / "IMPORTED").exists()


def test_trust_binds_to_the_bytes_parsed_not_a_second_read(tmp_path):
    """A file swapped back and forth while toolchat reads it: every load that succeeds used the
    trusted content, never the other (before: 18 of 60 tries passed with the other content)."""
    project = tmp_path / "proj"
    good, bad = "backend: openai\nmodel: m\n", "backend: openai\nmodel: m\nbase_url: http://evil.example/v1\n"
    path = write(project / "toolchat.yaml", good)
    trust(path, tmp_path / "_data")
    stop = threading.Event()

    def swap() -> None:
        spare = project / "spare.yaml"
        while not stop.is_set():
            for text in (bad, good):
                spare.write_text(text)
                os.replace(spare, path)

    swapper = threading.Thread(target=swap)
    swapper.start()
    used = refused = 0
    try:
        for _ in range(300):
            try:
                settings = settings_in(project, tmp_path)
            except ConfigError:
                refused += 1
                continue
            used += 1
            assert settings.base_url is None, "used content that was never trusted"
    finally:
        stop.set()
        swapper.join()
    assert used and refused  # both contents were really seen


def billion_laughs() -> str:
    lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for i in range(1, 10):
        previous, name = chr(ord("a") + i - 1), chr(ord("a") + i)
        lines.append(f"{name}: &{name} [{','.join(['*' + previous] * 9)}]")
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize(
    "text, words",
    [
        (billion_laughs(), "expands to more than 20000 values"),
        ("a: " + "[" * 5000 + "]" * 5000 + "\n", "nested more than 32 levels deep"),
        ("system: '" + "x" * 2_000_000 + "'\n", "larger than 1000 kB"),
    ],
    ids=["billion-laughs", "5000-deep", "2-MB"],
)
def test_an_untrusted_file_cannot_hurt_the_parser(cli, tmp_path, text, words):
    # a subprocess: its peak memory is not this process's, which the in-process load below measures
    project = tmp_path / "proj"
    path = write(project / "toolchat.yaml", text)
    started = time.monotonic()
    done = cli("ask", "hi", cwd=project)
    assert done.returncode == 2 and done.stderr.startswith(f"toolchat: error: {path}") and words in done.stderr
    assert time.monotonic() - started < 20
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with pytest.raises(ConfigError, match=words):
        load_file(path, {})
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 200_000  # kB: no blow-up in-process


def test_a_config_in_a_folder_others_can_write_is_ignored_with_a_notice(run_cli, tmp_path):
    shared = tmp_path / "shared"  # like /tmp: anyone may drop a toolchat.yaml here
    shared.mkdir()
    os.chmod(shared, 0o1777)
    write(shared / "toolchat.yaml", "backend: openai\nbase_url: http://evil.example/v1\n")
    (shared / "mine").mkdir()
    done = run_cli("config", "path", cwd=shared / "mine")
    assert done.returncode == 0
    assert done.stderr.strip() == (
        f"toolchat: ignoring {shared / 'toolchat.yaml'}: it lies in a folder other users can write to ({shared})"
    )
    assert "project: none" in done.stdout
    with FakeServer() as server:  # nothing blocks `ask` either, and nothing of that file is used
        server.add(sse(text_stream("Fine.")))
        done = run_cli("ask", "--base-url", server.url, "hi", cwd=shared / "mine")
        assert done.returncode == 0 and done.stdout.strip() == "Fine." and "ignoring" in done.stderr


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() != 0, reason="giving a file away needs root")
def test_a_config_owned_by_another_user_is_ignored(tmp_path):
    project = tmp_path / "proj"
    path = write(project / "toolchat.yaml", "model: theirs\n")
    os.chown(path, 4242, 4242)
    notices: list[str] = []
    settings = settings_in(project, tmp_path, notify=notices.append)
    assert settings.model != "theirs" and settings.sources == []
    assert notices == [f"ignoring {path}: it is owned by another user (uid 4242)"]


def test_untrusted_files_are_shown_unexpanded_and_trusted_secrets_hidden(run_cli, tmp_path):
    project = tmp_path / "proj"
    write(
        project / "toolchat.yaml",
        "backend: openai\nbase_url: http://127.0.0.1:9/v1\n"
        'system: "token ${OPENAI_API_KEY}"\nmodel: "${MY_SECRET_TOKEN}"\n',
    )
    env = {"OPENAI_API_KEY": KEY, "MY_SECRET_TOKEN": "tok-0123456789-abcdefgh"}
    shown = run_cli("config", "show", cwd=project, env=env)
    assert "token ${OPENAI_API_KEY}" in shown.stdout and "${MY_SECRET_TOKEN}" in shown.stdout
    trusting = run_cli("config", "trust", cwd=project, env=env)
    assert "system: token ${OPENAI_API_KEY}" in trusting.stdout
    after = run_cli("config", "show", cwd=project, env=env)
    assert "token ***" in after.stdout
    for done in (shown, trusting, after):
        assert KEY[4:12] not in done.stdout + done.stderr and "0123456789-abcdefgh" not in done.stdout + done.stderr


def test_settings_redactor_knows_every_secret(tmp_path):
    project = tmp_path / "proj"
    path = write(
        project / "toolchat.yaml",
        "api_key: ${PROJ_KEY}\nsystem: 'x ${DB_PASSWORD} ${PLAIN_NAME}'\n"
        "mcp_servers:\n  s:\n    command: x\n    env: {API_TOKEN: literal-token-value}\n",
    )
    environ = {
        "PROJ_KEY": KEY,
        "OPENAI_API_KEY": "sk-env-key-9876543210",
        "DB_PASSWORD": "hunter2-hunter2",
        "PLAIN_NAME": "not-a-secret-at-all",
    }
    trust(path, tmp_path / "_data", environ)
    redactor = settings_in(project, tmp_path, environ).redactor()
    text = f"{KEY.upper()} sk-env-key-98765 hunter2-hunter2 literal-token-value not-a-secret-at-all"
    assert redactor.redact(text) == "*** *** *** *** not-a-secret-at-all"


def test_the_trust_store_is_private_and_fixed_when_it_was_not(tmp_path):
    data = tmp_path / "data"
    path = write(tmp_path / "proj" / "toolchat.yaml", "model: m\n")
    trust(path, data)
    assert stat.S_IMODE((data / "trusted.json").stat().st_mode) == 0o600 and stat.S_IMODE(data.stat().st_mode) == 0o700
    os.chmod(data / "trusted.json", 0o644)
    os.chmod(data, 0o755)
    assert TrustStore(data).is_trusted(load_file(path, {}))
    assert stat.S_IMODE((data / "trusted.json").stat().st_mode) == 0o600 and stat.S_IMODE(data.stat().st_mode) == 0o700


def test_answering_n_goes_on_without_the_project_config(isolated_env, tmp_path):
    with FakeServer() as server:
        server.add(sse(text_stream("Plain answer.")))
        write(tmp_path / "toolchat.yaml", "system: You are a pirate.\nmodel: proj-model\n")
        child = spawn("--base-url", server.url, "-m", "flag-model", env=isolated_env, cwd=tmp_path, columns=200)
        child.expect(r"Trust it and use it\?")
        time.sleep(0.3)
        child.send("n")
        child.expect("going on without the project config")
        child.expect("›")
        time.sleep(0.3)
        child.send("hello\r")
        child.expect("Plain answer.")
        child.expect("›")
        time.sleep(0.3)
        child.sendeof()
        child.expect(pexpect.EOF)
        child.close()
        assert child.exitstatus == 0
        request = server.requests[0]
        assert request["model"] == "flag-model" and "pirate" not in str(request["messages"])
    assert (
        TrustStore(Path(isolated_env["TOOLCHAT_DATA_DIR"])).is_trusted(load_file(tmp_path / "toolchat.yaml", {}))
        is False
    )


def test_config_show_shows_the_effective_defaults(run_cli, tmp_path):
    local = run_cli("config", "show", "-c", str(write(tmp_path / "l.yaml", "backend: local\n")))
    rows = {line.split()[0]: line for line in local.stdout.splitlines() if line.strip()}
    assert "0.3" in rows["temperature"] and "default (local backend)" in rows["temperature"]
    assert "512" in rows["max_tokens"] and "600.0" in rows["response_timeout"] and " 2 " in rows["max_retries"]
    remote = run_cli(
        "config", "show", "-c", str(write(tmp_path / "o.yaml", "backend: openai\nbase_url: http://h/v1\n"))
    )
    rows = {line.split()[0]: line for line in remote.stdout.splitlines() if line.strip()}
    assert "(the server's default)" in rows["temperature"] and "(the server's default)" in rows["max_tokens"]


def test_a_folder_in_place_of_the_trust_records_is_one_line_on_config_trust(run_cli, tmp_path, isolated_env):
    path = write(tmp_path / "proj" / "toolchat.yaml", "model: m\n")
    (Path(isolated_env["TOOLCHAT_DATA_DIR"]) / "trusted.json").mkdir()
    done = run_cli("config", "trust", str(path))
    assert done.returncode != 0 and "internal error" not in done.stderr and "Traceback" not in done.stderr
    assert "cannot write the trust records" in done.stderr and "trusted.json" in done.stderr
    assert len(done.stderr.strip().splitlines()) <= 2, done.stderr
