"""Session files and slash commands, unit by unit; `toolchat sessions` through the CLI."""

from __future__ import annotations

import json
from pathlib import Path

from rich.console import Console

from fakes import ScriptedBackend, answer
from toolchat.chat import Chat, ChatOptions
from toolchat.config import Settings
from toolchat.env import Environment
from toolchat.sessions import SessionStore, load, project_folder
from toolchat.slash import EXIT, dispatch
from toolchat.tools import discover

USER = {"role": "user", "content": "hi"}
BOT = {"role": "assistant", "content": "hello"}


def test_messages_are_appended_flushed_and_truncations_recorded(tmp_path):
    store = SessionStore(tmp_path / "s.jsonl")
    store.open({"project": "p"})
    store.sync([USER])
    assert load(store.path).messages == [USER]  # on disk before the next message
    store.sync([USER, BOT])
    store.sync([])
    store.sync([BOT])
    assert load(store.path).messages == [BOT]


def test_a_truncated_or_corrupt_line_is_skipped_with_a_count(tmp_path):
    path = tmp_path / "s.jsonl"
    good = json.dumps({"type": "message", "message": USER})
    path.write_text(f'{good}\nnot json at all\n{good[:20]}')
    loaded = load(path)
    assert loaded.messages == [USER] and loaded.skipped == 2


def test_calls_left_unanswered_by_a_kill_are_answered_on_load(tmp_path):
    path = tmp_path / "s.jsonl"
    call = {"role": "assistant", "content": "", "tool_calls": [{"id": "c1", "type": "function",
                                                               "function": {"name": "f", "arguments": "{}"}}]}
    path.write_text("\n".join(json.dumps({"type": "message", "message": m}) for m in (USER, call)) + "\n")
    messages = load(path).messages
    assert messages[-1] == {"role": "tool", "tool_call_id": "c1",
                            "content": "Not run: the session ended before this call finished."}


def test_an_unwritable_data_dir_is_reported_not_fatal(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    store = SessionStore(blocker / "sessions" / "s.jsonl")
    store.open({})
    store.sync([USER])
    assert store.problem and "history is not being saved" in store.problem


def make_chat(tmp_path, *replies) -> Chat:
    env = Environment(cwd=tmp_path, environ={"TOOLCHAT_DATA_DIR": str(tmp_path / "data")})
    settings = Settings(backend="openai", model="m", project_dir=tmp_path)
    backend = ScriptedBackend(*replies)
    console = Console(record=True, width=120)
    def reload(profile, model):
        switched = Settings(backend="openai", model=model or "m", project_dir=tmp_path, profile=profile)
        backend.model = switched.model
        return switched, backend

    return Chat(env, settings, discover([]), backend, ChatOptions(), console, reload=reload)


def test_slash_commands(tmp_path):
    chat = make_chat(tmp_path, answer("first"), answer("again"), answer("third"))
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
    chat.turn("question two")
    dispatch(chat, f"/save {tmp_path / 'out.json'}")
    assert json.loads((tmp_path / "out.json").read_text())[-1] == {"role": "assistant", "content": "third"}
    dispatch(chat, f"/save {tmp_path / 'out.md'}")
    assert "**assistant**:\n\nthird" in (tmp_path / "out.md").read_text()
    dispatch(chat, "/model other-model")
    assert chat.backend.model == "other-model" and chat.settings.model == "other-model"
    dispatch(chat, "/reset")
    assert chat.engine.messages == [{"role": "system", "content": "Be brief."}]
    dispatch(chat, "/stats")
    dispatch(chat, "/history")
    dispatch(chat, "/undoo")
    assert dispatch(chat, "/exit") == EXIT
    shown = chat.console.export_text()
    assert "no tool named 'nosuchtool'" in shown
    assert "unknown command /undoo; did you mean /undo?" in shown
    assert "3 turns, 3 model calls, 0 tool calls" in shown


def test_the_session_file_replays_what_the_chat_did(tmp_path):
    chat = make_chat(tmp_path, answer("one"), answer("two"))
    chat.turn("a")
    chat.turn("b")
    dispatch(chat, "/undo")
    assert load(chat.store.path).messages == chat.engine.messages == [
        {"role": "user", "content": "a"}, {"role": "assistant", "content": "one"}]


def test_sessions_commands(cli, tmp_path, isolated_env):
    folder = project_folder(Path(isolated_env["TOOLCHAT_DATA_DIR"]), tmp_path)
    folder.mkdir(parents=True)
    lines = [{"type": "session", "project": str(tmp_path)}, {"type": "message", "message": USER},
             {"type": "message", "message": BOT}]
    (folder / "20260101-one.jsonl").write_text("\n".join(json.dumps(r) for r in lines) + "\n{broken")
    listed = cli("sessions", "list")
    assert "20260101-one" in listed.stdout and "hi" in listed.stdout
    shown = cli("sessions", "show", "20260101-one")
    assert "**assistant**:" in shown.stdout and "skipped 1 corrupt line" in shown.stderr
    missing = cli("sessions", "show", "20260101-on")
    assert missing.returncode == 2 and "did you mean '20260101-one'?" in missing.stderr
