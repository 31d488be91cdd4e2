"""Hostile input, round three (issue 27), what reaches toolchat through the user's own files and a
model server's stream: crafted session files, FIFOs where private files belong, a name that leaves
the project folder, escapes in a config, an index no server could mean. Each test is the attack as
it was found, kept as the check that it stays fixed."""

from __future__ import annotations

import json
import os
import stat
import threading
from pathlib import Path

import pytest

from tests.support.fakeserver import FakeServer, chunk, sse
from toolchat.sessions import NOT_RUN, SessionLog, load, project_folder


@pytest.mark.parametrize("index", ["1e400", "-1e400", "1.5", '"first"'])
def test_a_tool_call_index_that_is_not_a_whole_number_is_the_servers_fault_in_one_line(cli, index):
    head = '{"index": %s, "id": "c1", "function": {"name": "get_weather", "arguments": "{}"}}' % index
    line = 'data: {"choices": [{"index": 0, "delta": {"tool_calls": [%s]}, "finish_reason": null}]}\n\n' % head
    with FakeServer() as server:
        server.add(sse([chunk({"role": "assistant"}), line, chunk(finish="tool_calls")]))
        done = cli("ask", "--yes", "--base-url", server.url, "Weather in Oslo?")
    assert done.returncode == 1, done.stderr
    assert "internal error" not in done.stderr and "Error" not in done.stderr
    assert "broke off mid-answer: a tool call with the index" in done.stderr
    assert "not a whole number" in done.stderr
    assert len(done.stderr.strip().splitlines()) <= 2, done.stderr


def test_an_index_sent_as_a_whole_float_is_still_the_index(cli):
    calls = [
        chunk({"role": "assistant"}),
        chunk({"tool_calls": [{"index": 0.0, "id": "c1", "function": {"name": "calculate", "arguments": ""}}]}),
        chunk({"tool_calls": [{"index": 0.0, "function": {"arguments": json.dumps({"expression": "2+3"})}}]}),
        chunk(finish="tool_calls"),
    ]
    with FakeServer() as server:
        server.add(sse(calls), sse([chunk({"content": "5"}), chunk(finish="stop")]))
        done = cli("ask", "--yes", "--base-url", server.url, "2+3?")
        answers = [m["content"] for m in server.requests[-1]["messages"] if m["role"] == "tool"]
    assert done.returncode == 0, done.stderr
    assert answers == ["5"]


def write_session(folder: Path, name: str, *records: dict) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.jsonl"
    lines = [{"type": "session", "project": "p"}, *records]
    path.write_text("".join(json.dumps(r) + "\n" for r in lines))
    return path


@pytest.mark.parametrize("given", ["../../etc/passwd", ".hidden", "..", "-rf"])
def test_every_name_sessions_list_shows_can_be_shown(run_cli, tmp_path, isolated_env, given):
    folder = project_folder(Path(isolated_env["TOOLCHAT_DATA_DIR"]), tmp_path)
    log = SessionLog.new(folder, {"project": str(tmp_path)}, given)  # as `--session NAME` names it
    log.append({"role": "user", "content": "what is in here?"})
    log.close()
    listed = run_cli("sessions", "list")
    shown_name = log.id
    assert shown_name in listed.stdout and "/" not in shown_name
    shown = run_cli("sessions", "show", "--", shown_name)
    assert shown.returncode == 0, shown.stderr
    assert "what is in here?" in shown.stdout


WRONG_SHAPES = [
    {"role": "assistant", "tool_calls": [5]},
    {"role": "assistant", "tool_calls": "call"},
    {"role": "assistant", "tool_calls": [{"id": "c", "function": "f"}]},
    {"role": 7, "content": "x"},
    {"role": "user", "content": {"text": "x"}},
    {"content": "no role"},
]


def test_a_valid_json_line_of_the_wrong_shape_is_skipped_with_a_warning(run_cli, tmp_path, isolated_env):
    folder = project_folder(Path(isolated_env["TOOLCHAT_DATA_DIR"]), tmp_path)
    records = [{"type": "message", "message": m} for m in WRONG_SHAPES]
    records += [{"type": "message", "message": {"role": "user", "content": "still here"}}]
    records += [{"type": "replace", "index": 0, "message": {"role": "tool", "tool_call_id": ["x"]}}]
    write_session(folder, "odd", *records)
    shown = run_cli("sessions", "show", "odd")
    assert shown.returncode == 0, shown.stderr
    assert "internal error" not in shown.stderr
    assert f"skipped {len(WRONG_SHAPES) + 1} corrupt line(s)" in shown.stderr
    assert "still here" in shown.stdout
    assert run_cli("sessions", "list").returncode == 0


def test_a_torn_tail_of_megabytes_is_cut_in_one_backward_scan(tmp_path, monkeypatch):
    folder = tmp_path / "sessions"
    path = write_session(folder, "torn", {"type": "message", "message": {"role": "user", "content": "kept"}})
    torn = 8 * 1024 * 1024
    with path.open("ab") as out:
        out.write(b'{"type": "message", "message": {"content": "' + b"x" * torn)
    read, real_read = [], os.read
    monkeypatch.setattr(os, "read", lambda fd, n: read.append(n) or real_read(fd, n))
    log = SessionLog(path, {})
    log.claim()
    log.append({"role": "assistant", "content": "next"})
    log.close()
    monkeypatch.undo()
    assert sum(read) <= torn + 2 * 65536, f"read {sum(read)} bytes to cut a {torn}-byte tail"
    assert [m["content"] for m in load(path).messages] == ["kept", "next"]


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_a_fifo_in_place_of_trusted_json_is_refused_not_waited_on(run_cli, tmp_path, isolated_env):
    os.mkfifo(Path(isolated_env["TOOLCHAT_DATA_DIR"]) / "trusted.json")
    (tmp_path / "toolchat.yaml").write_text("temperature: 0.2\n")
    listed = run_cli("tools", "list")  # a hang here is the defect: run_cli's timeout fails it
    assert listed.returncode == 2, listed.stderr
    assert "is not trusted yet" in listed.stderr


def test_a_fifo_in_place_of_the_prompt_history_is_refused_and_the_history_kept_in_memory(tmp_path):
    from prompt_toolkit.history import InMemoryHistory

    from tests.support.fakes import ScriptedBackend
    from tests.support.sessions import make_chat
    from toolchat.sessions import history_file
    from toolchat.terminal.repl import _history

    chat = make_chat(tmp_path, ScriptedBackend())
    path = history_file(chat.env.data_dir, tmp_path)
    path.parent.mkdir(parents=True, exist_ok=True)
    os.mkfifo(path)
    done = []
    worker = threading.Thread(target=lambda: done.append(_history(chat, chat.env)), daemon=True)
    worker.start()
    worker.join(5)
    assert done, "opening the prompt history waited on a FIFO"
    assert isinstance(done[0], InMemoryHistory)
    chat.close()


def test_every_folder_and_file_toolchat_makes_is_private_not_only_the_leaves(tmp_path):
    from toolchat.config.trust import TrustStore
    from toolchat.mcp.logs import log_path, open_log
    from toolchat.tools.cache import SchemaCache

    data, cache = tmp_path / "data", tmp_path / "cache"
    (data / "sessions").mkdir(parents=True, mode=0o755)  # as an older toolchat or a umask left them
    cache.mkdir(mode=0o755)
    os.chmod(data, 0o755), os.chmod(data / "sessions", 0o755)
    (cache / "tool-schemas.json").write_text("{}")
    os.chmod(cache / "tool-schemas.json", 0o644)
    (data / "trusted.json").write_text("{}")
    os.chmod(data / "trusted.json", 0o644)

    log = SessionLog.new(project_folder(data, tmp_path), {"project": "p"}, "one")
    log.append({"role": "user", "content": "hi"})
    log.close()
    open_log(log_path(data, "time"), "mcp-server-time", append=True).close()
    SchemaCache(cache / "tool-schemas.json")
    TrustStore(data)._records()

    folders = [data, data / "sessions", log.path.parent, data / "mcp-logs"]
    assert {str(f): oct(mode(f)) for f in folders} == {str(f): oct(0o700) for f in folders}
    files = [log.path, log_path(data, "time"), cache / "tool-schemas.json", data / "trusted.json"]
    assert {str(f): oct(mode(f)) for f in files} == {str(f): oct(0o600) for f in files}


def tool_ids(messages: list[dict]) -> list[str]:
    return [m.get("tool_call_id") or ",".join(c["id"] for c in m.get("tool_calls") or []) for m in messages]


def test_a_server_that_names_every_call_call_0_leaves_a_session_that_can_be_sent_again(tmp_path):
    from tests.support.fakes import ScriptedBackend, answer, call, calls
    from tests.support.sessions import make_chat
    from toolchat.terminal.session import ReplOptions

    sums = [calls(call("calculate", {"expression": e}, id="call_0")) for e in ("1+1", "2+2")]
    chat = make_chat(tmp_path, ScriptedBackend(*sums, answer("4")), ReplOptions(approve_all=True))
    chat.turn("sums?")
    chat.close()
    roles = [m["role"] for m in chat.engine.messages]
    assert roles == ["user", "assistant", "tool", "assistant", "tool", "assistant"]
    ids = tool_ids(chat.engine.messages)
    assert ids[1] == ids[2] == "call_0" and ids[3] == ids[4] != "call_0"  # unique, and consistent
    assert load(chat.log.path).messages == chat.engine.messages

    # an older toolchat recorded the ids as sent, and was killed while the second call ran
    lines = [{"type": "message", "message": m} for m in chat.engine.messages[:4]]
    lines[3]["message"]["tool_calls"][0]["id"] = "call_0"
    write_session(chat.folder, "killed", *lines)
    resumed = make_chat(tmp_path, ScriptedBackend(answer("sent")), ReplOptions(session="killed"))
    assert [m["role"] for m in resumed.engine.messages][-2:] == ["assistant", "tool"]
    assert resumed.engine.messages[-1]["content"] == NOT_RUN
    resumed.turn("and now?")  # every call answered: the history can be sent again
    resumed.close()


def test_escapes_and_markup_in_an_mcp_servers_name_are_shown_neutralised_by_config_show(run_cli, isolated_env):
    name = "evil\u001b[8mhidden[bold red]loud[/bold red]"
    config = {"mcp_servers": {name: {"command": "mcp-server-time"}}}
    Path(isolated_env["TOOLCHAT_CONFIG_DIR"], "config.yaml").write_text(json.dumps(config))
    shown = run_cli("config", "show")
    assert shown.returncode == 0, shown.stderr
    assert "\x1b" not in shown.stdout
    assert "[bold red]loud[/bold red]" in shown.stdout  # shown as written, not interpreted


def test_a_file_name_with_raw_bytes_or_a_line_break_is_one_visible_row_in_sessions_list(
    run_cli, tmp_path, isolated_env
):
    folder = project_folder(Path(isolated_env["TOOLCHAT_DATA_DIR"]), tmp_path)
    record = {"type": "message", "message": {"role": "user", "content": "hello"}}
    write_session(folder, "a\nforged-row", record)
    (folder / os.fsdecode(b"b\x9b31mred.jsonl")).write_text(json.dumps(record) + "\n")
    listed = run_cli("sessions", "list")
    assert listed.returncode == 0, listed.stderr
    assert "a\\x0aforged-row" in listed.stdout and "b\\udc9b31mred" in listed.stdout
    assert "\udc9b" not in listed.stdout and "\x9b" not in listed.stdout
    assert not any(line.startswith("forged-row") for line in listed.stdout.splitlines())


def test_a_number_json_has_not_in_a_session_line_is_skipped_and_the_rest_resumes(tmp_path):
    folder = tmp_path / "sessions"
    path = write_session(folder, "nan", {"type": "message", "message": {"role": "user", "content": "kept"}})
    with path.open("a") as out:
        out.write('{"type": "message", "message": {"role": "user", "content": "x", "n": NaN}}\n')
        out.write('{"type": "message", "message": {"role": "assistant", "content": "y", "n": 1e999}}\n')
    loaded = load(path)
    assert loaded.skipped == 2 and loaded.messages == [{"role": "user", "content": "kept"}]
    json.dumps(loaded.messages, allow_nan=False)  # what is sent to the model can be sent
