"""The private temporary folders of calls and MCP servers (`toolchat-call-...`, `toolchat-mcp-...`)
that a `kill -9` leaves behind: a later start removes those whose maker is gone, and nothing else:
never a live process's (nor one whose number a live process has taken since), never a symlink,
another user's folder, another PID namespace's, or a folder whose name merely looks like one."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.support.scratch import killed, maker
from toolchat.files import sweep_scratch


def test_a_killed_makers_folder_goes_at_the_next_start_and_a_living_ones_stays(tmp_path):
    temps = tmp_path / "tmp"
    temps.mkdir()
    first, left = maker(temps, "mcp")
    (left / "inside" / "deeper").mkdir(parents=True)
    (left / "inside" / "file.txt").write_text("scratch")
    killed(first)
    assert left.is_dir()  # a kill -9 leaves it
    second, kept = maker(temps, "call")  # the next start sweeps before it makes its own
    try:
        assert not left.exists() and kept.is_dir()
        assert oct(kept.stat().st_mode & 0o777) == "0o700"
        sweep_scratch(temps)  # another toolchat starting meanwhile
        assert kept.is_dir()  # its maker lives
    finally:
        killed(second)
    sweep_scratch(temps)
    assert sorted(temps.iterdir()) == []


def test_a_number_a_live_process_took_over_does_not_keep_a_dead_makers_folder(tmp_path):
    temps = tmp_path / "tmp"
    temps.mkdir()
    child, own = maker(temps, "call")
    try:
        _, _, pid, start, namespace, _ = own.name.split("-")
        # made by an earlier process with the same number, before the living one started
        older = temps / f"toolchat-call-{pid}-{int(start) - 1}-{namespace}-abcd_123"
        older.mkdir(mode=0o700)
        sweep_scratch(temps)
        assert not older.exists() and own.is_dir()
    finally:
        killed(child)


def test_nothing_but_a_dead_makers_own_folder_is_ever_removed(tmp_path):
    temps = tmp_path / "tmp"
    temps.mkdir()
    child, made = maker(temps, "mcp")
    killed(child)
    _, _, pid, start, namespace, _ = made.name.split("-")
    made.rmdir()

    def named(suffix: str, namespace: str = namespace) -> Path:
        return temps / f"toolchat-call-{pid}-{start}-{namespace}-{suffix}"

    outside = tmp_path / "not-toolchats"
    outside.mkdir()
    (outside / "keep.txt").write_text("mine")
    named("link0000").symlink_to(outside, target_is_directory=True)  # planted: never followed
    loose = named("loose000")
    loose.mkdir(mode=0o755)  # not as toolchat makes them
    os.chmod(loose, 0o755)
    named("file0000").write_text("a file, not a folder")
    named("other_ns", str(int(namespace) + 1)).mkdir(mode=0o700)  # a container's: its numbers mean nothing here
    (temps / f"toolchat-call-{pid}-my-project").mkdir(mode=0o700)  # a name that merely starts like one
    (temps / f"toolchat-mcp-{pid}-{start}-{namespace}-toolong123").mkdir(mode=0o700)
    (temps / f"toolchat-mcp-{pid}-x1").mkdir(mode=0o700)
    stale = named("stale000")
    stale.mkdir(mode=0o700)
    kept = sorted(p.name for p in temps.iterdir() if p != stale)
    sweep_scratch(temps)
    assert sorted(p.name for p in temps.iterdir()) == kept
    assert (outside / "keep.txt").read_text() == "mine"


def test_another_users_folder_is_never_removed(tmp_path):
    temps = tmp_path / "tmp"
    temps.mkdir()
    child, made = maker(temps, "call")
    killed(child)
    try:
        os.chown(made, 65534, 65534)
    except PermissionError:
        pytest.skip("only root can give a folder to another user")
    sweep_scratch(temps)
    assert made.is_dir()
