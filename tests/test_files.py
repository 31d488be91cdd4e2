"""What toolchat replaces whole (trust records, the tool schema cache, the bundled model) is
written atomically and privately: a reader sees the old file or the new one, never half; an
interrupted write leaves the old file and no stray temporary; the file is 0600 in a 0700 folder."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from toolchat.config.file import load_file
from toolchat.config.trust import TrustStore
from toolchat.files import atomic_write
from toolchat.tools.cache import SchemaCache


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_a_write_replaces_the_file_whole_and_privately(tmp_path):
    target = tmp_path / "made" / "here" / "state.json"
    atomic_write(target, '{"a": 1}')
    atomic_write(target, b'{"a": 2}')
    assert json.loads(target.read_text()) == {"a": 2}
    assert (mode(target), mode(target.parent), mode(target.parent.parent)) == (0o600, 0o700, 0o700)
    assert sorted(p.name for p in target.parent.iterdir()) == ["state.json"]


def test_an_interrupted_write_keeps_the_old_file_and_leaves_nothing(tmp_path):
    target = tmp_path / "model.gguf"
    atomic_write(target, "old")

    def writer(partial: Path) -> None:
        partial.write_text("half of the new")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        atomic_write(target, writer)
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["model.gguf"]


def test_a_writer_that_makes_its_own_file_still_leaves_it_private(tmp_path):
    target = tmp_path / "model.gguf"

    def writer(partial: Path) -> None:  # as a package that unlinks and recreates the path would
        partial.unlink()
        partial.write_bytes(b"GGUF")
        partial.chmod(0o644)

    atomic_write(target, writer)
    assert target.read_bytes() == b"GGUF" and mode(target) == 0o600


def test_trust_and_the_schema_cache_are_private(tmp_path):
    config = tmp_path / "proj" / "toolchat.yaml"
    config.parent.mkdir()
    config.write_text("model: m\n")
    store = TrustStore(tmp_path / "data")
    store.trust(load_file(config, {}))
    assert store.is_trusted(load_file(config, {}))
    assert (mode(store.path), mode(store.path.parent)) == (0o600, 0o700)
    cache = SchemaCache(tmp_path / "cache" / "tools.json")
    module = tmp_path / "plugin.py"
    module.write_text("def f(): pass\n")
    cache.put(module, [{"name": "f"}])
    cache.save()
    assert (mode(cache.path), mode(cache.path.parent)) == (0o600, 0o700)
    assert SchemaCache(cache.path).get(module) == [{"name": "f"}]


def test_text_from_anywhere_is_made_valid_utf8_the_one_way():
    """A file name that is not UTF-8 (as os.listdir keeps it), a lone surrogate a server sent, a
    valid pair: whether it goes to a server or comes back from a tool, the same scrub applies."""
    from toolchat.backends.openai_wire import content_text
    from toolchat.safety import scrub

    name = b"caf\xe9-\xe2\x82.txt".decode("utf-8", "surrogateescape")
    assert scrub(name) == "caf\ufffd-\ufffd.txt"
    assert scrub({"k\ud800": ["a\udfff", 1, None], "ok": "\U0001f600"}) == {
        "k\ufffd": ["a\ufffd", 1, None],
        "ok": "\U0001f600",
    }
    kept = "plain text"
    assert scrub(kept) is kept
    assert content_text([{"type": "text", "text": "x\ud83d"}, "y"]) == "x\ufffdy"
    json.dumps(scrub([name, "\ud800"]), ensure_ascii=False).encode("utf-8")


def test_a_shared_folder_named_as_the_data_dir_keeps_its_mode_and_its_sticky_bit(tmp_path):
    from toolchat.mcp.logs import log_path, open_log
    from toolchat.sessions import SessionLog, project_folder

    data = tmp_path / "shared"
    data.mkdir()
    os.chmod(data, 0o1777)  # as /tmp, or a team's drop folder
    log = SessionLog.new(project_folder(data, tmp_path), {"project": "p"}, "one")
    log.append({"role": "user", "content": "hi"})
    log.close()
    open_log(log_path(data, "time"), "mcp-server-time", append=True).close()
    TrustStore(data).trust(trusted_config(tmp_path))
    assert oct(stat.S_IMODE(data.stat().st_mode)) == oct(0o1777)
    assert {oct(mode(f)) for f in (data / "sessions", log.path.parent, data / "mcp-logs")} == {oct(0o700)}
    assert {oct(mode(f)) for f in (log.path, data / "trusted.json")} == {oct(0o600)}


def test_a_folder_others_may_write_in_without_the_sticky_bit_is_refused_in_one_line(tmp_path):
    from toolchat.errors import ConfigError
    from toolchat.sessions import SessionLog, project_folder

    data = tmp_path / "open"
    data.mkdir()
    os.chmod(data, 0o777)
    log = SessionLog.new(project_folder(data, tmp_path), {"project": "p"}, "one")
    assert f"other users may write in {data} (mode 0777)" in (log.check() or "")
    with pytest.raises(ConfigError, match="cannot write the trust records .*other users may write in"):
        TrustStore(data).trust(trusted_config(tmp_path))
    assert mode(data) == 0o777 and sorted(data.iterdir()) == []


def test_a_symlinked_folder_is_never_chmodded_through(tmp_path):
    from toolchat.sessions import SessionLog, project_folder

    elsewhere, data = tmp_path / "elsewhere", tmp_path / "data"
    elsewhere.mkdir(mode=0o755)
    os.chmod(elsewhere, 0o755)
    data.mkdir()
    (data / "sessions").symlink_to(elsewhere)
    log = SessionLog.new(project_folder(data, tmp_path), {"project": "p"}, "one")
    log.append({"role": "user", "content": "hi"})
    log.close()
    assert mode(elsewhere) == 0o755 and mode(log.path.parent) == 0o700


def test_every_folder_made_for_a_trace_is_private_whatever_the_umask(tmp_path):
    from toolchat.tracing.setup import JsonLinesExporter

    path = tmp_path / "traces" / "deep" / "spans.jsonl"
    old = os.umask(0)
    try:
        JsonLinesExporter(path).shutdown()
    finally:
        os.umask(old)
    assert [oct(mode(f)) for f in (path.parent.parent, path.parent, path)] == [oct(0o700), oct(0o700), oct(0o600)]


def trusted_config(tmp_path: Path):
    config = tmp_path / "proj" / "toolchat.yaml"
    config.parent.mkdir(exist_ok=True)
    config.write_text("model: m\n")
    return load_file(config, {})


def test_a_shared_folder_someone_else_owns_is_refused_sticky_bit_or_not(tmp_path):
    from toolchat.sessions import SessionLog, project_folder

    data = tmp_path / "theirs"
    data.mkdir()
    try:
        os.chown(data, 65534, 65534)  # nobody's: as its owner they could rename what toolchat made in it
    except PermissionError:
        pytest.skip("only root can give a folder to another user")
    os.chmod(data, 0o1777)
    log = SessionLog.new(project_folder(data, tmp_path), {"project": "p"}, "one")
    assert f"other users may write in {data} (mode 1777)" in (log.check() or "")
    assert sorted(data.iterdir()) == []
