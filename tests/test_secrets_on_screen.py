"""An API key never reaches the screen or the prompt history, wherever it comes from: a model
repeating it (cut across deltas, in any case), a tool call's arguments, a tool's output. What is
shown is what the session file and `--json` hold: `***` in its place."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pexpect
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.support.fakeserver import FakeServer, chunk, openai_calls, sse, text_stream
from tests.support.terminal import say, see, spawn
from toolchat.redact import Redactor, StreamRedactor

KEY = "sk-proj-Zq81secretKEY55xy"
ECHO = '''
def echo(text: str) -> str:
    """Say `text` back."""
    return "you said: " + text
'''


def no_part_of_the_key(text: str) -> bool:
    lower, key = text.lower(), KEY.lower()
    return not any(lower[i : i + 8] in key for i in range(len(lower) - 7))


def answer_cut_through_the_key() -> list[dict]:
    """'Your key is KEY, keep it safe.' in deltas cut inside the key, one of them upper case."""
    return [
        chunk({"role": "assistant", "content": ""}),
        chunk({"content": "Your key is " + KEY[:5]}),
        chunk({"content": KEY[5:11].upper()}),
        chunk({"content": KEY[11:] + ", keep it safe."}),
        chunk(finish="stop"),
    ]


def test_ask_shows_no_key_from_the_answer_the_call_or_the_tool(cli, plugin_dir):
    tools = plugin_dir(echo=ECHO)
    with FakeServer(models=["m"]) as server:
        server.add(sse(openai_calls([("echo", {"text": f"remember {KEY}"})])), sse(answer_cut_through_the_key()))
        done = cli(
            "ask",
            "--base-url",
            server.url,
            "-m",
            "m",
            "-t",
            str(tools),
            "--yes",
            "what is my key?",
            env={"OPENAI_API_KEY": KEY},
        )
    assert done.returncode == 0, done.stderr
    assert done.stdout == "Your key is ***, keep it safe.\n"
    assert "→ echo" in done.stderr and "← echo ok: you said: remember ***" in done.stderr
    assert no_part_of_the_key(done.stdout + done.stderr)


def test_the_repl_and_its_history_show_no_key_and_its_prompt_history_keeps_none(isolated_env, tmp_path, plugin_dir):
    tools = plugin_dir(echo=ECHO)
    screen = tmp_path / "screen.txt"
    with FakeServer(models=["m"]) as server:
        server.add(sse(openai_calls([("echo", {"text": f"remember {KEY}"})])), sse(answer_cut_through_the_key()))
        child = spawn(
            "chat",
            "--base-url",
            server.url,
            "-m",
            "m",
            "-t",
            str(tools),
            "--allow",
            "echo",
            env={**isolated_env, "OPENAI_API_KEY": KEY},
            cwd=tmp_path,
            screen=False,
        )
        with open(screen, "w", encoding="utf-8") as log:
            child.logfile_read = log
            child.expect("›")
            time.sleep(0.3)
            child.send(f"my key is {KEY}, what is it?\r")
            child.expect("keep it safe")
            child.expect("›")
            time.sleep(0.3)
            child.send("/history\r")  # the conversation so far, shown as the turn was
            child.expect("Your key is")
            child.expect("›")
            time.sleep(0.3)
            child.send("/show\r")  # the last tool result, whole
            child.expect("echo → ok")
            child.expect("›")
            time.sleep(0.3)
            child.send("/exit\r")
            child.expect(pexpect.EOF)
    shown = screen.read_text(encoding="utf-8")
    turn, history_shown = shown.split("/history", 1)
    after_question = turn[turn.rindex("what is it?") + len("what is it?") :]  # the typed line is shown as typed
    assert "***" in after_question and "you said: remember ***" in after_question
    assert no_part_of_the_key(after_question)
    assert "my key is ***, what is it?" in history_shown and "[call echo" in history_shown
    assert no_part_of_the_key(history_shown)
    histories = list(Path(isolated_env["TOOLCHAT_DATA_DIR"]).rglob("prompt-history"))
    assert len(histories) == 1
    history = histories[0].read_text(encoding="utf-8")
    assert "my key is ***, what is it?" in history
    assert no_part_of_the_key(history)


def test_a_stream_through_the_redactor_shows_what_the_whole_text_would():
    redactor = Redactor([KEY, "pw12"])
    text = f"a {KEY} b {KEY.upper()}{KEY} pw12 {KEY[:7]} end"
    for size in range(1, 12):
        stream = StreamRedactor(redactor)
        shown = "".join(stream.feed(text[i : i + size]) for i in range(0, len(text), size)) + stream.flush()
        assert shown == redactor.redact(text) == f"a *** b *** *** {KEY[:7]} end"


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.sampled_from(
            [KEY, KEY.upper(), KEY[:6], KEY[4:13], KEY[12:], "pw1", "2", "pw12", "sk-", " ", ".", "\n", "hello"]
        ),
        max_size=12,
    ),
    st.lists(st.integers(min_value=0, max_value=200), max_size=8),
)
def test_a_key_cut_anywhere_in_a_stream_is_hidden_as_in_the_whole_text(pieces, cuts):
    redactor = Redactor([KEY, "pw12"])
    text = "".join(pieces)
    points = sorted({min(c, len(text)) for c in cuts} | {0, len(text)})
    stream = StreamRedactor(redactor)
    shown = "".join(stream.feed(text[a:b]) for a, b in zip(points, points[1:])) + stream.flush()
    assert no_part_of_the_key(shown) and "pw12" not in shown.lower()
    assert shown.replace("******", "***") == redactor.redact(text)


def test_without_secrets_a_stream_passes_at_once():
    stream = StreamRedactor(Redactor())
    assert stream.feed("sk-") == "sk-" and stream.flush() == ""


def test_a_tool_name_holding_the_key_is_hidden_in_the_repl_its_stats_and_its_files(isolated_env, tmp_path):
    """A model may echo a key as a tool's NAME: the call and result panels, /stats, the session
    file and /save show `***` there, as for the arguments; /system hides the key in the prompt too."""
    with FakeServer(models=["m"]) as server:
        server.add(sse(openai_calls([(KEY, {"note": "x"})])), sse(text_stream("no such tool, done.")))
        child = spawn(
            "chat", "--base-url", server.url, "-m", "m", env={**isolated_env, "OPENAI_API_KEY": KEY}, cwd=tmp_path
        )
        child.expect("›")
        say(child, f"/system You may use the key {KEY} for nothing.")
        child.expect("system prompt set")
        child.expect("›")
        say(child, "/system")  # shown as set, the key hidden
        see(child, "You may use the key *** for nothing.")
        child.expect("›")
        say(child, "call it")
        child.expect("done.")
        child.expect("›")
        say(child, "/stats")
        child.expect(r"tool \*\*\*: unknown")
        child.expect("›")
        say(child, "/save saved.md")
        child.expect("saved ")
        child.expect("›")
        say(child, "/exit")
        child.expect(pexpect.EOF)
    typed = f"› /system You may use the key {KEY} for nothing."
    shown = "\n".join(row for row in child.screen.transcript() if row != typed)  # the typed line is shown as typed
    assert "tool call ***" in shown and "*** → unknown" in shown  # the panels' titles
    assert no_part_of_the_key(shown)
    written = [*Path(isolated_env["TOOLCHAT_DATA_DIR"]).rglob("*.jsonl"), tmp_path / "saved.md"]
    assert len(written) == 2
    for path in written:
        text = path.read_text(encoding="utf-8")
        assert "***" in text and no_part_of_the_key(text), path


def test_ask_hides_a_tool_name_holding_the_key_on_stderr_and_in_json(cli):
    with FakeServer(models=["m"]) as server:
        server.add(sse(openai_calls([(KEY, {"note": "x"})])), sse(text_stream("no such tool, done.")))
        done = cli("ask", "--base-url", server.url, "-m", "m", "--json", "call it", env={"OPENAI_API_KEY": KEY})
    assert done.returncode == 0, done.stderr
    assert "→ *** " in done.stderr and "← *** unknown" in done.stderr
    result = json.loads(done.stdout)
    assert result["tool_calls"][0]["name"] == "***" and result["tool_calls"][0]["status"] == "unknown"
    assert no_part_of_the_key(done.stdout + done.stderr)


def test_ask_hides_a_call_id_holding_the_key_on_stderr_and_in_json(cli):
    stream = openai_calls([("get_weather", {"city": "Paris"})])
    stream[1]["choices"][0]["delta"]["tool_calls"][0]["id"] = KEY  # a server may echo anything as an id
    with FakeServer(models=["m"]) as server:
        server.add(sse(stream), sse(text_stream("Sunny.")))
        done = cli("ask", "--base-url", server.url, "-m", "m", "--json", "-y", "weather?", env={"OPENAI_API_KEY": KEY})
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["tool_calls"][0]["status"] == "ok", done.stdout
    assert no_part_of_the_key(done.stdout + done.stderr), done.stdout
