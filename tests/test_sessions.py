"""Session files and the REPL's session operations, driven through the real ReplSession; `toolchat
sessions` through the CLI."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from rich.console import Console

from tests.support.fakes import ScriptedBackend, answer, call, calls
from tests.support.fakeserver import FakeServer, sse, text_stream
from tests.support.sessions import REGISTRY, env_for, make_chat
from toolchat.config.settings import load as load_config
from toolchat.conversation import Conversation
from toolchat.sessions import NOT_RUN, SessionLog, history_file, load, project_folder, sessions_in
from toolchat.terminal.session import ReplOptions, ReplSession, reloader
from toolchat.terminal.slash import EXIT, dispatch

USER = {"role": "user", "content": "hi"}
BOT = {"role": "assistant", "content": "hello"}


def records(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_bytes().split(b"\n") if line]


def test_operations_are_written_as_they_happen_and_replay_exactly(tmp_path):
    log = SessionLog(tmp_path / "s.jsonl", {"project": "p"})
    conversation = Conversation("Be brief.", log)
    assert not log.path.exists()  # the file is made with the first message
    conversation.append(USER)
    assert load(log.path).messages == [{"role": "system", "content": "Be brief."}, USER]
    conversation.append(BOT)
    conversation.truncate(1)
    conversation.set_system("Be long.")
    conversation.append({"role": "user", "content": "line\u2028separator and \x85 next line"})
    assert load(log.path).messages == conversation.messages
    assert len(conversation.messages) == 2 and conversation.messages[0]["content"] == "Be long."


def test_a_message_with_unicode_line_separators_survives_a_resume(tmp_path):
    chat = make_chat(tmp_path, ScriptedBackend(answer("ok\u2028still the same line")))
    chat.turn("a\u2028b\x85c\u2029d")
    chat.close()
    resumed = make_chat(tmp_path, ScriptedBackend(), ReplOptions(resume=True))
    assert resumed.engine.messages == chat.engine.messages
    assert "skipped" not in " ".join(resumed.notices)


def test_undo_after_resuming_a_repaired_session_stays_undone(tmp_path):
    # a kill while a tool ran: the call is on disk, its answer is not
    chat = make_chat(tmp_path, ScriptedBackend())
    chat.engine.conversation.append(USER)
    chat.engine.conversation.append(
        {
            "role": "assistant",
            "content": "",
            "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "calculate", "arguments": "{}"}}],
        }
    )
    chat.close()
    resumed = make_chat(tmp_path, ScriptedBackend(answer("second")), ReplOptions(resume=True))
    assert resumed.engine.messages[-1] == {"role": "tool", "tool_call_id": "c1", "content": NOT_RUN}
    resumed.turn("another question")
    dispatch(resumed, "/undo")
    dispatch(resumed, "/undo")
    assert resumed.engine.messages == []
    resumed.close()
    again = make_chat(tmp_path, ScriptedBackend(), ReplOptions(resume=True))
    assert again.engine.messages == [] and "no earlier session" in " ".join(again.notices)


def test_the_call_request_is_on_disk_before_its_tool_runs(tmp_path):
    seen: list[list[dict]] = []
    chat = make_chat(tmp_path, ScriptedBackend(calls(call("calculate", {"expression": "1+1"}, id="c1")), answer("2")))
    chat.approver = lambda pending: (
        seen.append(load(chat.log.path).messages),
        __import__("toolchat.engine").engine.Decision(False),
    )[1]
    chat.turn("1+1?")
    assert seen and seen[0][-1]["tool_calls"][0]["id"] == "c1"


def test_a_torn_last_line_does_not_swallow_the_next_message(tmp_path):
    chat = make_chat(tmp_path, ScriptedBackend(answer("one")))
    chat.turn("first")
    chat.close()
    with open(chat.log.path, "ab") as file:  # a kill in the middle of a write
        file.write(b'{"type": "message", "message": {"role": "user", "con')
    resumed = make_chat(tmp_path, ScriptedBackend(answer("two")), ReplOptions(resume=True))
    resumed.turn("second")
    resumed.close()
    messages = load(chat.log.path).messages
    assert [m["content"] for m in messages] == ["first", "one", "second", "two"]
    assert load(chat.log.path).skipped == 0


def test_a_second_toolchat_on_the_same_session_starts_a_new_one(tmp_path):
    first = make_chat(tmp_path, ScriptedBackend(answer("one"), answer("three")))
    first.turn("a")
    second = make_chat(tmp_path, ScriptedBackend(answer("two")), ReplOptions(resume=True))
    assert "open in another toolchat" in " ".join(second.notices) and second.log.path != first.log.path
    second.turn("b")
    first.turn("c")
    assert [m["content"] for m in load(first.log.path).messages] == ["a", "one", "c", "three"]
    assert [m["content"] for m in load(second.log.path).messages] == ["b", "two"]


def test_the_lock_holds_across_processes(tmp_path):
    chat = make_chat(tmp_path, ScriptedBackend(answer("one")))
    chat.turn("a")
    code = textwrap.dedent(f"""
        from pathlib import Path
        from toolchat.sessions import SessionLog, SessionBusy
        try:
            SessionLog(Path({str(chat.log.path)!r}), {{}}).claim()
        except SessionBusy as exc:
            print("busy:", exc)
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=30)
    assert "busy: session" in out.stdout


def test_system_is_one_record_not_a_rewrite(tmp_path):
    chat = make_chat(tmp_path, ScriptedBackend(answer("one")))
    chat.turn("a")
    before = records(chat.log.path)
    dispatch(chat, "/system Be brief.")
    after = records(chat.log.path)
    assert after[: len(before)] == before and after[len(before) :] == [{"type": "system", "content": "Be brief."}]
    assert load(chat.log.path).messages[0] == {"role": "system", "content": "Be brief."}


def test_files_are_private_and_symlinks_refused(tmp_path):
    chat = make_chat(tmp_path, ScriptedBackend(answer("one")))
    chat.turn("a")
    assert stat.S_IMODE(chat.log.path.stat().st_mode) == 0o600
    assert stat.S_IMODE(chat.log.path.parent.stat().st_mode) == 0o700
    chat.close()
    target = tmp_path / "elsewhere.jsonl"
    target.write_text("")
    chat.log.path.unlink()
    chat.log.path.symlink_to(target)
    resumed = make_chat(tmp_path, ScriptedBackend(answer("x")), ReplOptions(session=chat.log.id))
    resumed.turn("b")
    assert target.read_text() == ""  # nothing appended through the link
    assert "starting a new session" in " ".join(resumed.notices) and resumed.log.path != chat.log.path


def test_existing_loose_permissions_are_fixed_on_open(tmp_path):
    folder = project_folder(tmp_path / "data", tmp_path)
    folder.mkdir(parents=True, mode=0o755)
    path = folder / "old.jsonl"
    path.write_text(json.dumps({"type": "message", "message": USER}) + "\n")
    path.chmod(0o644)
    chat = make_chat(tmp_path, ScriptedBackend(), ReplOptions(resume=True))
    assert chat.engine.messages == [USER]
    assert stat.S_IMODE(path.stat().st_mode) == 0o600 and stat.S_IMODE(folder.stat().st_mode) == 0o700


def test_history_files_are_one_per_project(tmp_path):
    a, b = tmp_path / "example.com", tmp_path / "example.org"
    assert history_file(tmp_path, a) != history_file(tmp_path, b)


def test_an_empty_session_leaves_no_file_and_continue_takes_the_last_real_one(tmp_path):
    chat = make_chat(tmp_path, ScriptedBackend(answer("one")))
    chat.turn("real question")
    chat.close()
    empty = make_chat(tmp_path, ScriptedBackend())
    empty.close()
    reset = make_chat(tmp_path, ScriptedBackend())
    dispatch(reset, "/reset")
    reset.close()
    assert len(sessions_in(chat.log.path.parent)) == 1
    resumed = make_chat(tmp_path, ScriptedBackend(), ReplOptions(resume=True))
    assert resumed.engine.messages[0]["content"] == "real question"


def test_an_unwritable_data_dir_is_reported_not_fatal(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    log = SessionLog(blocker / "sessions" / "s.jsonl", {})
    Conversation(None, log).append(USER)
    assert log.problem and "history is not being saved" in log.problem


def test_slash_commands(tmp_path):
    chat = make_chat(tmp_path, ScriptedBackend(answer("first"), answer("again"), answer("third")))
    chat.turn("question one")
    assert dispatch(chat, "/retry") is None
    assert [m["content"] for m in chat.engine.messages] == ["question one", "again"]
    dispatch(chat, "/undo")
    assert chat.engine.messages == []
    dispatch(chat, "/system Be brief.")
    assert chat.engine.messages == [{"role": "system", "content": "Be brief."}]
    dispatch(chat, "/allow calculate")
    assert "calculate" in chat.engine.policy.allow
    dispatch(chat, "/deny read_file")
    assert chat.engine.registry.get("read_file") is None and chat.all_tools.get("read_file") is not None
    dispatch(chat, "/allow nosuchtool")
    dispatch(chat, "/allow")
    chat.turn("question two")
    dispatch(chat, f"/save {tmp_path / 'out.json'}")
    assert json.loads((tmp_path / "out.json").read_text())[-1] == {"role": "assistant", "content": "third"}
    dispatch(chat, f"/save {tmp_path / 'out.json'}")  # exists: refused, not overwritten silently
    dispatch(chat, f"/save! {tmp_path / 'out.md'}")
    assert "**assistant**:\n\nthird" in (tmp_path / "out.md").read_text()
    dispatch(chat, "/reset")
    assert chat.engine.messages == [{"role": "system", "content": "Be brief."}]
    dispatch(chat, "/stats")
    dispatch(chat, "/history")
    dispatch(chat, "/undoo")
    assert dispatch(chat, "/exit") == EXIT
    shown = chat.console.export_text()
    assert "no tool named 'nosuchtool'" in shown
    assert "usage: /allow NAME" in shown
    assert "out.json exists" in shown and "/save!" in shown
    assert "unknown command /undoo; did you mean /undo?" in shown
    assert "3 turns, 3 model calls, 0 tool calls" in shown


def test_save_without_a_name_writes_into_the_data_dir_not_the_project(tmp_path):
    chat = make_chat(tmp_path, ScriptedBackend(answer("first"), answer("second")))
    chat.turn("question one")
    before = sorted(p.name for p in tmp_path.iterdir())
    dispatch(chat, "/save")
    chat.turn("question two")
    dispatch(chat, "/save")  # the session's own save is brought up to date, not refused
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # nothing new in the user's folder
    saved = list((tmp_path / "data").rglob("toolchat-*.md"))
    assert len(saved) == 1 and "second" in saved[0].read_text()
    assert stat.S_IMODE(saved[0].stat().st_mode) == 0o600 and stat.S_IMODE(saved[0].parent.stat().st_mode) == 0o700
    shown = chat.console.export_text().replace("\n", "")
    assert f"saved {saved[0]}" in shown
    chat.close()


def test_show_prints_the_last_result_whole(tmp_path):
    backend = ScriptedBackend(calls(call("calculate", {"expression": "2**10"}, id="c1")), answer("1024"))
    chat = make_chat(tmp_path, backend, ReplOptions(approve_all=True))
    dispatch(chat, "/show")
    chat.turn("2**10?")
    dispatch(chat, "/show")
    shown = chat.console.export_text()
    assert "no tool has run yet" in shown and "calculate → ok" in shown


PROFILES = """\
profiles:
  warm:
    backend: openai
    base_url: {url}
    model: warm-model
    temperature: 0.9
    max_tokens: 300
  cold:
    backend: openai
    base_url: {url}
    model: cold-model
    temperature: 0.1
    max_tokens: 77
system: Answer in one word.
max_rounds: 2
tools:
  timeout: 7
"""


def test_profile_brings_every_setting_of_the_profile_into_force(tmp_path):
    with FakeServer(models=["warm-model", "cold-model"]) as server:
        config = tmp_path / "toolchat.yaml"
        config.write_text(PROFILES.format(url=server.url))
        env = env_for(tmp_path)
        overrides = {"profile": "warm"}
        settings = load_config(
            config, overrides, config_dir=env.config_dir, data_dir=env.data_dir, cwd=tmp_path, environ=env.environ
        )
        reload = reloader(env, config, overrides, lambda message: None)
        backend = reload.backend(reload.settings("warm", None))
        chat = ReplSession(env, settings, REGISTRY, backend, ReplOptions(), Console(record=True, width=120), reload)
        server.add(sse(text_stream("hot")), sse(text_stream("cold")))
        chat.turn("one")
        dispatch(chat, "/profile cold")
        chat.turn("two")
        first, second = server.requests[-2:]
        assert (first["temperature"], first["max_tokens"], first["model"]) == (0.9, 300, "warm-model")
        assert (second["temperature"], second["max_tokens"], second["model"]) == (0.1, 77, "cold-model")
        assert second["messages"][0] == {"role": "system", "content": "Answer in one word."}
        assert chat.engine.max_rounds == 2 and chat.engine.limits.timeout == 7
        assert "now using openai: cold-model" in chat.console.export_text()


def test_sessions_commands(run_cli, tmp_path, isolated_env):
    folder = project_folder(Path(isolated_env["TOOLCHAT_DATA_DIR"]), tmp_path)
    folder.mkdir(parents=True)
    lines = [
        {"type": "session", "project": str(tmp_path)},
        {"type": "message", "message": USER},
        {"type": "message", "message": BOT},
    ]
    (folder / "20260101-one.jsonl").write_text("\n".join(json.dumps(r) for r in lines) + "\n{broken")
    (folder / "20260102-empty.jsonl").write_text(json.dumps(lines[0]) + "\n")
    listed = run_cli("sessions", "list")
    assert "20260101-one" in listed.stdout and "hi" in listed.stdout and "empty" not in listed.stdout
    shown = run_cli("sessions", "show", "20260101-one")
    assert "**assistant**:" in shown.stdout and "skipped 1 corrupt line" in shown.stderr
    missing = run_cli("sessions", "show", "20260101-on")
    assert missing.returncode == 2 and "did you mean '20260101-one'?" in missing.stderr


def test_sessions_show_reads_nothing_outside_the_project(run_cli, tmp_path):
    outside = tmp_path / "secret.jsonl"
    outside.write_text(json.dumps({"type": "message", "message": {"role": "user", "content": "private"}}) + "\n")
    for name in ("../../../secret", str(outside.with_suffix("")), "../secret"):
        result = run_cli("sessions", "show", name)
        assert result.returncode == 2 and "private" not in result.stdout + result.stderr


@pytest.mark.parametrize("choice", ["no_such_tool"])
def test_a_bad_tool_choice_is_refused_before_the_question_is_recorded(tmp_path, choice):
    with pytest.raises(Exception) as caught:
        make_chat(tmp_path, ScriptedBackend(), ReplOptions(tool_choice=choice))
    assert "not an offered tool" in str(caught.value)
    chat = make_chat(tmp_path, ScriptedBackend(answer("fine")), ReplOptions(tool_choice="calculate"))
    dispatch(chat, "/deny calculate")
    chat.turn("anything")  # no longer forced: the turn runs
    assert chat.options.tool_choice is None and chat.engine.messages[-1]["content"] == "fine"
    assert os.path.exists(chat.log.path)
