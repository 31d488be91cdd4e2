"""Code blocks are coloured by what they say, never by how the stream was cut: a docstring, a
`/* ... */` comment or a fence inside a Markdown block look the same whether the answer arrives
whole, a line at a time or a character at a time."""

from __future__ import annotations

import io

import pytest
from rich.console import Console

from toolchat.terminal.markdown import MarkdownStream

ANSWER = """Three blocks:

```python
def area(r):
    \"\"\"The area of a circle.

    middle line of the docstring, plain words
    \"\"\"
    return 3.14159 * r * r  # a comment
```

```c
int x = 1; /* a comment that
   spans three lines
   and ends here */ int y = 2;
```

````markdown
# A heading
```python
print("inner")
```
Some *text* after.
````
The end.
"""

STRING = "e6db74"  # monokai's colours, as pyte reports a truecolor foreground
COMMENT = "959077"
WIDTH = 60


def cells(pieces: list[str], every_delta: bool) -> list[list[tuple[str, str, str, bool]]]:
    """Each cell (character, foreground, background, bold) of every row the stream leaves on an
    emulated terminal; `every_delta` draws each delta as its own frame."""
    pyte = pytest.importorskip("pyte")
    out = io.StringIO()
    stream = MarkdownStream(Console(file=out, width=WIDTH, height=30, force_terminal=True, color_system="truecolor"))
    for piece in pieces:
        if every_delta:
            stream.last_update = 0.0
        stream.feed(piece)
    stream.end()
    screen = pyte.HistoryScreen(WIDTH, 30, history=5000)
    pyte.Stream(screen).feed(out.getvalue().replace("\n", "\r\n"))
    lines = [*screen.history.top, *(screen.buffer[y] for y in range(screen.lines))]
    rows = [[(line[x].data, line[x].fg, line[x].bg, line[x].bold) for x in range(WIDTH)] for line in lines]
    while rows and not "".join(cell[0] for cell in rows[-1]).strip():
        rows.pop()
    return rows


def row_with(rows: list[list[tuple[str, str, str, bool]]], text: str) -> list[tuple[str, str, str, bool]]:
    return next(row for row in rows if text in "".join(cell[0] for cell in row))


def colours(row: list[tuple[str, str, str, bool]], text: str) -> set[str]:
    line = "".join(cell[0] for cell in row)
    start = line.index(text)
    return {cell[1] for cell in row[start : start + len(text)] if cell[0].strip()}


def test_a_block_arriving_a_character_at_a_time_is_coloured_as_when_it_arrives_whole():
    whole = cells([ANSWER], every_delta=False)
    by_character = cells(list(ANSWER), every_delta=True)
    by_line = cells(ANSWER.splitlines(keepends=True), every_delta=True)
    assert by_character == whole
    assert by_line == whole
    # and the colours are the right ones: the string and comment go on across the lines
    assert colours(row_with(whole, "middle line of the docstring"), "middle line of the docstring") == {STRING}
    assert colours(row_with(whole, "spans three lines"), "spans three lines") == {COMMENT}
    assert colours(row_with(whole, "and ends here */"), "and ends here */") == {COMMENT}
    assert COMMENT not in colours(row_with(whole, "int y = 2;"), "int y = 2;")
    assert STRING not in colours(row_with(whole, "return 3.14159"), "return")


def test_cuts_at_any_place_leave_the_same_colours():
    whole = cells([ANSWER], every_delta=False)
    for size in (2, 3, 7, 13, 40):
        pieces = [ANSWER[i : i + size] for i in range(0, len(ANSWER), size)]
        assert cells(pieces, every_delta=True) == whole, size


def test_a_long_block_is_coloured_the_same_in_one_frame_as_line_by_line():
    body = "".join(f"x_{n} = f({n}, 'text')  # note {n}\n" for n in range(300))
    docstring = '"""A docstring\n' + "".join(f"still inside, line {n}\n" for n in range(40)) + '"""\n'
    answer = f"```python\n{body}{docstring}{body}```\n"
    whole = cells([answer], every_delta=False)
    assert cells(answer.splitlines(keepends=True), every_delta=True) == whole
    assert colours(row_with(whole, "still inside, line 39"), "still inside, line 39") == {STRING}


MORE = """Two more:

```javascript
let a = 1; /* the lexer has no rule for an unclosed comment
still a comment */ let b = 2;
```

```yaml
steps:
  - run: |
      echo one
      echo two
  - name: next
```
"""
BLOCK_SCALAR = "66d9ef"  # monokai's colour for the YAML lexer's block scalar lines


def test_a_comment_closed_later_and_a_yaml_block_scalar_are_coloured_the_same_however_they_arrive():
    whole = cells([MORE], every_delta=False)
    assert cells(list(MORE), every_delta=True) == whole
    assert cells(MORE.splitlines(keepends=True), every_delta=True) == whole
    # the line that closes the comment is a comment, though the line that opened it lexed alone
    assert colours(row_with(whole, "still a comment */"), "still a comment */") == {COMMENT}
    assert COMMENT not in colours(row_with(whole, "let b = 2;"), "let b = 2;")
    # a block scalar's lines are the scalar, not keys or plain values (the probe after `- run: |` is in it)
    assert colours(row_with(whole, "echo one"), "echo one") == {BLOCK_SCALAR}
    assert colours(row_with(whole, "echo two"), "echo two") == {BLOCK_SCALAR}
    assert BLOCK_SCALAR not in colours(row_with(whole, "next"), "next")
