"""The words toolchat says, as a user reads them (issue 28, item 11)."""

from __future__ import annotations

from pathlib import Path

import pexpect
import pytest
from rich.cells import cell_len

from tests.support.fakeserver import FakeServer, openai_calls, raw_call, sse, text_stream
from tests.support.terminal import QUESTION, say, spawn
from toolchat.terminal.session import fit

REPO = Path(__file__).resolve().parents[1]
TOOLS = str(REPO / "tools")


@pytest.fixture
def server():
    with FakeServer() as running:
        yield running


def test_the_call_not_run_at_the_round_limit_has_its_result_line(cli, server):
    server.add(
        sse(openai_calls([("get_weather", {"city": "Paris"})])), sse(openai_calls([("get_weather", {"city": "Rome"})]))
    )
    done = cli("ask", "--base-url", server.url, "--tools", TOOLS, "--allow", "get_weather", "--max-rounds", "2", "hi")
    assert done.returncode == 3
    lines = done.stderr.splitlines()
    assert lines[-3:] == [
        '→ get_weather {"city": "Rome"}',
        "← get_weather denied: Not run: this turn reached its limit of 2 model calls.",
        "toolchat: stopped: the model was still calling tools after 2 model calls; raise --max-rounds or rephrase",
    ]


def test_a_model_call_with_an_unterminated_string_says_where_once(cli, server):
    server.add(sse(raw_call("get_weather", '{"city": "Paris\\n')), sse(text_stream("Sorry.")))
    done = cli("ask", "--base-url", server.url, "--tools", TOOLS, "weather?")
    assert done.returncode == 0, done.stderr
    assert "(Unterminated string starting at char 9)" in done.stderr
    assert "at at" not in done.stderr
    said = server.requests[1]["messages"][-1]["content"]
    assert "arguments are not valid JSON (Unterminated string starting at char 9)" in said


@pytest.mark.terminal
def test_arguments_typed_with_e_in_ask_say_where_they_are_wrong(server, isolated_env, tmp_path):
    server.add(sse(openai_calls([("get_weather", {"city": "Paris"})])), sse(text_stream("Sunny in Rome.")))
    child = spawn("ask", "--base-url", server.url, "--tools", TOOLS, "weather?", env=isolated_env, cwd=tmp_path)
    child.expect(QUESTION)
    child.send("e")
    child.expect("Enter alone to go back")
    child.sendline('{"city": "Rome')
    child.expect("Enter alone to go back")
    child.sendline('{"city": "Rome"}')
    child.expect(pexpect.EOF)
    child.close()
    screen = "\n".join(child.screen.transcript())
    assert "not valid JSON (Unterminated string starting at char 9)" in screen
    assert "at at" not in screen
    assert "Sunny in Rome." in screen


def test_an_mcp_url_whose_host_does_not_resolve_says_so(cli):
    done = cli("mcp", "list", "--mcp", "http://no-such-host.invalid/mcp")
    assert "error: cannot resolve no-such-host.invalid" in done.stdout + done.stderr
    assert "Errno" not in done.stdout + done.stderr


@pytest.mark.terminal
def test_history_cuts_a_long_message_after_a_word_with_an_ellipsis(repl, server):
    question = " ".join(f"word{n:02}" for n in range(40))  # 279 characters
    server.add(sse(text_stream("Short answer.")))
    child = repl(server)
    say(child, question)
    child.expect("Short answer.")
    child.expect("›")
    say(child, "/history")
    child.expect("assistant: Short answer.")
    shown = " ".join(" ".join(child.screen.transcript()).split())
    said = shown[shown.rindex("user: word00") :]
    assert said.startswith("user: word00 word01")
    cut = said[len("user: ") : said.index("…")]
    assert 130 < len(cut) < 150 and cut.split()[-1] in question.split()  # whole words, then the ellipsis
    say(child, "/exit")
    child.expect(pexpect.EOF)


@pytest.mark.terminal
def test_the_banner_names_the_model_once_with_a_base_url(repl, server):
    child = repl(server)
    banner = child.started
    assert banner.count("fake") == 1, banner
    assert server.url in banner  # where it runs is still said
    say(child, "/exit")
    child.expect(pexpect.EOF)


def test_the_toolbar_gives_way_hints_first_then_ends_in_an_ellipsis_at_120_columns():
    facts = (
        " default · openai · fake · context 0/32,768 · approval: ask · mcp: time ready (2) · git ready · docs failed"
    )
    hints = (" · Esc Enter: new line", " · /help")
    assert fit(facts, hints, 200) == facts + " · Esc Enter: new line · /help"
    assert fit(facts, hints, 120) == facts + " · /help"  # "docs failed" whole, not "docs faile"
    assert fit(facts, hints, 110) == facts
    cut = fit(facts, hints, 60)  # never wider than the terminal, and never inside a word ("as…")
    assert cut == " default · openai · fake · context 0/32,768 · approval:…"
    assert fit("x" * 100, hints, 60) == "x" * 58 + "…"  # one word longer than the row: cut, and said so
    assert fit("a" * 50 + " " + "b" * 7 + " c", hints, 60) == "a" * 50 + " " + "b" * 7 + "…"  # a word ending at the cut
    assert fit("ab", hints, 1) == "a…"


@pytest.mark.terminal
def test_config_init_at_80_columns_keeps_its_command_on_one_line(isolated_env, tmp_path):
    child = spawn("config", "init", env=isolated_env, cwd=tmp_path, columns=80)
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0
    assert "`toolchat config show` prints what is in force" in child.screen.transcript()


@pytest.mark.terminal
def test_the_bundled_models_note_wraps_indented_at_80_columns(isolated_env, shared_cache, tmp_path):
    child = spawn(env=isolated_env, cwd=tmp_path, columns=80, timeout=120)
    child.expect("/help for commands")
    child.expect("›")
    rows = child.screen.transcript()
    first = next(n for n, row in enumerate(rows) if "Gemma 3 270M" in row)
    note = rows[first : next(n for n in range(first, len(rows)) if not rows[n].strip() or "/help" in rows[n])]
    assert len(note) > 1 and all(row.startswith("  ") and row[2] != " " for row in note), note
    say(child, "/exit")
    child.expect(pexpect.EOF)


@pytest.mark.terminal
def test_the_save_hint_keeps_its_command_whole_at_80_columns(server, isolated_env, tmp_path):
    name = "a-conversation-saved-with-a-long-name-" + "x" * 9 + ".md"  # the hint fits in 80 columns
    (tmp_path / name).write_text("mine\n")
    child = spawn("chat", "--base-url", server.url, "-m", "fake", env=isolated_env, cwd=tmp_path, columns=80)
    child.expect("›")
    say(child, f"/save {name}")
    child.expect("to replace it")
    child.expect("›")
    assert f"to replace it: /save! {name}" in child.screen.transcript()
    assert (tmp_path / name).read_text() == "mine\n"
    say(child, "/exit")
    child.expect(pexpect.EOF)


def test_the_toolbar_counts_screen_columns_so_wide_names_never_fill_the_row():
    facts = "openai: m · 7 tools · mcp: 時間時間時間時間 ready (2) · サーバー二番目の長い名前 failed"
    hints = (" · Esc Enter: new line", " · /help")
    for width in (60, 80, 100, 150, 200):
        shown = fit(facts, hints, width)
        assert cell_len(shown) < width, (width, shown)
        assert not shown.endswith(("lin", "lin…", "fai…", "faile…"))
