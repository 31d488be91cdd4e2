"""The REPL's terminal in a real pseudo-terminal: the approval question, streamed Markdown, and
text that must not drive the terminal."""

from __future__ import annotations

import pexpect
import pytest

from tests.support.fakeserver import FakeServer, openai_calls, sse, text_stream
from tests.support.terminal import QUESTION, WEATHER, Screen, press, say, see, spawn


def test_enter_and_other_keys_at_the_approval_question_ask_again(repl, server):
    server.add(sse(openai_calls(WEATHER)), sse(text_stream("It is sunny.")))
    child = repl(server)
    say(child, "weather?")
    child.expect(QUESTION)
    press(child, "\r")
    press(child, "x")
    press(child, "\r")
    press(child, "\x1b[200~yes\x1b[201~")  # pasted text is not an answer either
    press(child, "\r")
    assert child.isalive()
    press(child, "Y")
    see(child, "get_weather → ok")
    child.expect("It is sunny.")
    child.expect("›")
    assert "internal error" not in child.before and len(server.requests) == 2


def test_capital_n_declines(repl, server):
    server.add(sse(openai_calls(WEATHER)), sse(text_stream("Declined, fine.")))
    child = repl(server)
    say(child, "weather?")
    child.expect(QUESTION)
    press(child, "N")
    child.expect("Reason for the model")
    say(child, "")
    see(child, "get_weather → denied")
    child.expect("Declined, fine.")


# -- streamed Markdown, as a terminal shows it ------------------------------------------------------


@pytest.fixture
def terminal(isolated_env, tmp_path):
    pytest.importorskip("pyte")  # a dev dependency (pyproject.toml); only these tests need it
    children = []

    def start(server: FakeServer, rows: int = 24, columns: int = 80, **extra: str) -> tuple[pexpect.spawn, Screen]:
        child = spawn(
            "chat",
            "--base-url",
            server.url,
            "-m",
            "fake",
            env={**isolated_env, **extra},
            cwd=tmp_path,
            rows=rows,
            columns=columns,
            color=True,
        )
        children.append(child)
        child.expect("›")
        return child, child.screen

    yield start
    for child in children:
        if child.isalive():
            child.terminate(force=True)


def words(count: int) -> list[str]:
    return [f"w{i:03d}" for i in range(count)]


def test_ctrl_c_mid_paragraph_shows_each_row_once(terminal, server):
    server.add(sse(text_stream(" ".join(words(300)), pieces=300), delay=0.02))
    child, screen = terminal(server, rows=30, columns=60)
    say(child, "talk")
    child.expect("w080")
    child.sendintr()
    child.expect("interrupted")
    child.expect("›")
    seen = [w for w in words(300) if screen.count(w)]
    assert seen == words(len(seen)) and len(seen) >= 80  # what arrived, in order, no gap
    assert [w for w in seen if screen.count(w) != 1] == []


def test_a_paragraph_taller_than_the_terminal_keeps_streaming_and_is_not_reprinted(terminal, server):
    server.add(sse(text_stream(" ".join(words(400)) + " THE-END", pieces=400), delay=0.01))
    child, screen = terminal(server, rows=12, columns=60)
    say(child, "talk")
    child.expect("w250")
    assert any("w250" in line for line in screen.shown())  # the screen follows the text: no freeze
    assert "THE-END" not in child.before
    child.expect("THE-END")
    child.expect("›")
    assert [w for w in words(400) if screen.count(w) != 1] == []


def test_a_resize_mid_paragraph_does_not_reprint_it(terminal, server):
    server.add(sse(text_stream(" ".join(words(300)) + " THE-END", pieces=300), delay=0.01))
    child, screen = terminal(server, rows=20, columns=60)
    say(child, "talk")
    child.expect("w060")
    screen.resize(20, 100)
    child.expect("w150")
    screen.resize(20, 70)
    child.expect("THE-END")
    child.expect("›")
    assert [w for w in words(300) if screen.count(w) > 1] == []
    assert all(screen.count(w) == 1 for w in words(300)[160:])


def test_paragraphs_lists_and_code_are_separated_by_blank_lines(terminal, server):
    answer = "Intro paragraph:\n- first\n- second\n\nBetween.\n```python\nx = 1\n```\nLast line."
    server.add(sse(text_stream(answer, pieces=len(answer))))
    child, screen = terminal(server)
    say(child, "talk")
    child.expect("Last line.")
    child.expect("›")
    rows = screen.transcript()
    start = rows.index("Intro paragraph:")
    shown = [row.strip() for row in rows[start : start + 11]]
    assert shown == ["Intro paragraph:", "", "• first", "• second", "", "Between.", "", "", "x = 1", "", ""]
    assert rows[start + 11].strip() == "Last line."


CODE_ANSWER = (
    'BEGIN\n```python\ndef f():\n    """Docstring.\n    its middle line\n    """\n```\n'
    "```c\nint a; /* opened\n   still a comment\n*/ int b;\n```\n"
    '````markdown\n# Title\n```python\nprint("x")\n```\n````\nFINISH'
)


def test_code_streamed_a_character_at_a_time_is_coloured_as_when_it_arrives_whole(terminal):
    shown = []
    for pieces, delay in ((1, 0.0), (len(CODE_ANSWER), 0.004)):
        with FakeServer() as server:
            server.add(sse(text_stream(CODE_ANSWER, pieces=pieces), delay=delay))
            child, screen = terminal(server, columns=60, COLORTERM="truecolor")
            say(child, "code")
            child.expect("FINISH")
            child.expect("›")
            rows = screen.cells()
            text = ["".join(cell[0] for cell in row).strip() for row in rows]
            shown.append(rows[text.index("BEGIN") : text.index("FINISH") + 1])
            child.sendeof()
    whole, by_character = shown
    assert by_character == whole
    middle = next(row for row in whole if "its middle line" in "".join(cell[0] for cell in row))
    comment = next(row for row in whole if "still a comment" in "".join(cell[0] for cell in row))
    assert {cell[1] for cell in middle if cell[0].strip()} == {"e6db74"}  # monokai's string colour
    assert {cell[1] for cell in comment if cell[0].strip()} == {"959077"}  # and its comment colour


def test_bidi_controls_escapes_and_links_are_shown_not_obeyed(terminal, server):
    answer = (
        "Trojan \u202eevil\u202c and &#x202E;entity&rlm; and \x1b]0;TITLE\x07 and "
        "[see docs](https://evil.example/x) done."
    )
    server.add(sse(text_stream(answer, pieces=20)))
    child, screen = terminal(server, columns=120)
    raw = []
    child.logfile_read = type(
        "Both", (), {"write": lambda self, d: (raw.append(d), screen.write(d)), "flush": lambda self: None}
    )()
    say(child, "talk")
    child.expect("done.")
    child.expect("›")
    output = "".join(raw)
    assert "\u202e" not in output and "\u200f" not in output and "\x1b]0;" not in output
    assert "\x1b]8;" not in output  # no OSC 8 hyperlink: the target is never hidden
    text = " ".join(screen.transcript())
    assert "Trojan \\u202eevil\\u202c" in text and "&#x202E;entity&rlm;" in text  # shown as typed
    assert "\\x1b]0;TITLE\\x07" in text
    assert "see docs (https://evil.example/x) done." in text


def test_a_model_name_from_a_config_or_server_cannot_drive_the_banner(server, isolated_env, tmp_path):
    (tmp_path / "config.yaml").write_text('model: "evil\\e]0;TITLE\\a\\e[31m-red\\u202e"\n')
    child = spawn(
        "chat", "--base-url", server.url, "-c", str(tmp_path / "config.yaml"), env=isolated_env, cwd=tmp_path, rows=24
    )
    try:
        child.expect("/help for commands")
        banner = child.before
        assert "\x1b]0;" not in banner and "\u202e" not in banner
        assert "evil\\x1b]0;TITLE\\x07\\x1b[31m-red\\u202e" in banner
    finally:
        child.terminate(force=True)
