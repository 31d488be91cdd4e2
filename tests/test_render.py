"""Text toolchat did not write cannot drive the terminal, and streamed Markdown shows every row
once, the same however the text was cut into deltas."""

from __future__ import annotations

import io

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from rich.console import Console

from tests.support.fakeserver import FakeServer, sse, text_stream
from toolchat.safety import clean
from toolchat.terminal.markdown import MarkdownStream

BIDI = "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f\u061c"


def test_clean_shows_controls_and_every_bidi_control_escaped():
    assert clean("a\x1b[31mb\x07\x9b\tc\n") == "a\\x1b[31mb\\x07\\x9b\tc\n"
    shown = clean(BIDI)
    assert not set(shown) & set(BIDI)
    assert shown == "".join(f"\\u{ord(c):04x}" for c in BIDI)
    assert clean("naïve 日本 \u200d emoji 👍") == "naïve 日本 \u200d emoji 👍"  # ordinary text untouched
    assert clean("one\u2028two\u2029three") == "one\\u2028two\\u2029three"  # no terminal breaks the line there


def test_ask_shows_bidi_controls_escaped_on_stdout(cli):
    with FakeServer() as server:
        server.add(sse(text_stream("if admin \u202e} {\u2066 ok")))
        done = cli("ask", "--base-url", server.url, "hi")
    assert not set(done.stdout) & set(BIDI)
    assert "if admin \\u202e} {\\u2066 ok" in done.stdout


def test_models_prints_server_ids_neutralised(cli):
    with FakeServer(models=["good-model", "evil\x1b]0;TITLE\x07\x1b[31m-red\u202e"]) as server:
        done = cli("models", "--base-url", server.url)
    assert done.returncode == 0
    assert "\x1b" not in done.stdout and "\x07" not in done.stdout and "\u202e" not in done.stdout
    assert done.stdout.splitlines() == ["evil\\x1b]0;TITLE\\x07\\x1b[31m-red\\u202e", "good-model"]


ANSWER = """Here is a paragraph long enough to wrap over several rows of forty columns, with **bold**,
`inline code` and a [link](https://example.org/page) inside it.
Intro:
- first item, long enough to wrap around the forty columns of this console
- second item
  - nested item
1. one
2. two

## A heading
Text after the heading.

```python
def double(x):
    return x * 2  # wraps? no
```
> a quote that wraps around the forty column width for sure, yes it does
| a | b |
|---|---|
| 1 | 2 |

The end.
"""


def rendered(pieces: list[str], width: int = 40) -> str:
    out = io.StringIO()
    stream = MarkdownStream(Console(file=out, width=width, force_terminal=False, no_color=True, height=30))
    for piece in pieces:
        stream.feed(piece)
    stream.end()
    return out.getvalue()


@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(min_value=1, max_value=len(ANSWER) - 1), max_size=60))
def test_any_cut_into_deltas_renders_as_the_whole_answer_does(cuts):
    points = [0, *sorted(set(cuts)), len(ANSWER)]
    assert rendered([ANSWER[a:b] for a, b in zip(points, points[1:])]) == rendered([ANSWER])


@pytest.mark.parametrize("step", [1, 3, 17])
def test_a_long_paragraph_and_code_block_show_every_row_once(step):
    paragraph = " ".join(f"w{i:04d}" for i in range(800))
    code = "".join(f"line_{i:04d} = {i}\n" for i in range(300))
    text = f"{paragraph}\n\n```python\n{code}```\n"
    out = rendered([text[i : i + step] for i in range(0, len(text), step)])
    for i in range(800):
        assert out.count(f"w{i:04d}") == 1
    for i in range(300):
        assert out.count(f"line_{i:04d} = {i}") == 1


def test_a_table_or_nested_list_taller_than_half_the_screen_loses_and_repeats_no_row():
    table = "| n | value |\n|---|---|\n" + "".join(f"| {i} | v{i:03d} |\n" for i in range(60))
    nested = "- top " + "alpha " * 20 + "\n  - inner " + " ".join(f"b{i:03d}" for i in range(120)) + "\n"
    out = rendered([c for c in table + "\n" + nested])
    assert [n for n in range(60) if out.count(f"v{n:03d}") != 1] == []
    assert [n for n in range(120) if out.count(f"b{n:03d}") != 1] == []
    assert out.count("alpha") == 20


def test_code_in_an_unknown_language_with_long_lines_and_tabs_is_shown_whole():
    long_line = "x = " + " + ".join(f"t{i:03d}" for i in range(40))
    text = f"```nosuchlanguage\n{long_line}\n\tindented\n```\n"
    out = rendered([c for c in text])
    assert all(out.count(f"t{i:03d}") == 1 for i in range(40))
    assert "     indented" in out and "nosuchlanguage" not in out


def test_the_last_delta_of_a_burst_is_drawn_though_the_stream_then_stalls():
    import time

    out = io.StringIO()
    stream = MarkdownStream(Console(file=out, width=60, force_terminal=True, height=20))
    stream.feed("```python\nfirst = 1\n")
    stream.feed("second = 2\n")  # within the same frame: drawn by the timer, not now
    time.sleep(0.2)  # the model pauses
    assert "second" in out.getvalue()
    stream.end()
    assert out.getvalue().count("second") == 1


def test_a_word_longer_than_the_screen_is_committed_as_it_fills_rows_never_all_live():
    import time

    blob = "".join("abcdefghijklmnopqrstuvwxyz0123456789"[(n * 7) % 36] for n in range(20000))
    out = io.StringIO()
    stream = MarkdownStream(Console(file=out, width=80, force_terminal=True, height=24))
    tallest = 0
    for i in range(0, len(blob), 200):
        stream.feed(blob[i : i + 200])
        time.sleep(0.002)
        tallest = max(tallest, stream.drawn)
    stream.end()
    assert tallest < 24  # never more live rows than the screen holds
    plain_out = io.StringIO()
    plain_stream = MarkdownStream(Console(file=plain_out, width=80, no_color=True, height=24))
    for i in range(0, len(blob), 200):
        plain_stream.feed(blob[i : i + 200])
    plain_stream.end()
    assert "".join(plain_out.getvalue().split()) == blob  # every character once, in order


@settings(max_examples=15, deadline=None)
@given(st.lists(st.integers(min_value=1, max_value=len(ANSWER) - 1), max_size=80))
def test_on_a_terminal_the_live_redraws_leave_the_same_screen_as_the_plain_rendering(cuts):
    pyte = pytest.importorskip("pyte")
    screen = pyte.HistoryScreen(40, 30, history=1000)
    terminal = pyte.Stream(screen)
    out = io.StringIO()
    stream = MarkdownStream(Console(file=out, width=40, height=30, force_terminal=True, color_system="standard"))
    points = [0, *sorted(set(cuts)), len(ANSWER)]
    for a, b in zip(points, points[1:]):
        stream.last_update = 0.0  # draw every delta: the redraws are what is under test
        stream.feed(ANSWER[a:b])
    stream.end()
    terminal.feed(out.getvalue().replace("\n", "\r\n"))
    rows = ["".join(line[x].data for x in range(40)).rstrip() for line in screen.history.top]
    rows += [line.rstrip() for line in screen.display]
    while rows and not rows[-1]:
        rows.pop()
    assert rows == [line.rstrip() for line in rendered([ANSWER]).splitlines()]
