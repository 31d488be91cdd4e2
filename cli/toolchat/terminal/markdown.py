"""Streamed Markdown on a terminal: every rendered row is printed once, for good, as soon as it is
complete; only the unfinished row (rarely a few) is live and redrawn. Nothing that has scrolled
off is ever printed again, so Ctrl-C, a resize or an answer taller than the screen cannot
duplicate or freeze it, and the work per delta is bounded by the unfinished row, not the answer.

The source is cut into units at line starts (a blank line, a fence, a heading, a list item); a
unit's wrapped rows are committed once a cut of its source is found that renders the same rows
(so a word is never lost or repeated at a wrap); code fences are committed line by line."""

from __future__ import annotations

import html
import re
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.control import Control
from rich.segment import Segment, Segments
from rich.text import Text

from toolchat.safety import clean
from toolchat.terminal.codeblock import CodeBlock, Row
from toolchat.terminal.interrupts import NoInterrupt

if TYPE_CHECKING:
    from rich.live import Live

CODE_THEME = "monokai"
FPS = 30

_FENCE = re.compile(r" {0,3}(`{3,}|~{3,})([^`]*)$")
_HEADING = re.compile(r" {0,3}#{1,6}(?: |$)")
_ITEM = re.compile(r" ?([-*+]|\d{1,9}[.)])(?: |$)")  # a top-level item; deeper ones belong to it
_MAYBE = re.compile(r" {0,3}(?:\d{1,9}[.)]?|[-*+]|#{1,6}|`{1,2}|~{1,2})$")  # too short to tell yet
_DELIMITER_ROW = re.compile(r" {0,3}\|?(?: *:?-+:? *\|)+ *(?::?-+:?)? *$")
_OPEN_LINK = re.compile(r"\[[^\]\n]*$|\]\([^)\s]*$")
_ENTITY = re.compile(r"&(?:#[xX][0-9a-fA-F]{1,6}|#[0-9]{1,7}|[A-Za-z][A-Za-z0-9]{1,31});")


@dataclass
class Fence:
    marker: str
    block: CodeBlock


class MarkdownStream:
    """feed() text as it arrives, end() when the answer stops; waiting() shows a spinner until
    the first text."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self.spinner: Live | None = None
        self.lock = threading.Lock()  # the state is shared with the timer that draws a late frame
        self.timer: threading.Timer | None = None
        self.last_update = 0.0
        self._reset()

    def _reset(self) -> None:
        self.line = ""  # the source line being received
        self.decided = True  # whether `line` has been classified and added to its unit
        self.src = ""  # the uncommitted source of the current text unit
        self.kind = ""  # "" (between units), "text", "heading", "code", "item-" (by marker: "item.", ...)
        self.indent = 0  # columns of the unit's continuation rows once its first rows are committed
        self.fence: Fence | None = None
        self.code: list[str] = []  # complete code lines not yet printed
        self.drawn = 0  # rows currently drawn live
        self.started = False  # a row of this answer was committed
        self.gap = False  # a blank line came after the last unit

    # -- the interface the REPL uses -------------------------------------------------------------
    def waiting(self, message: str = "thinking…") -> None:
        from rich.live import Live
        from rich.spinner import Spinner

        if self.spinner is None and not self.drawn:
            self.spinner = Live(
                Spinner("dots", Text(message, style="dim")), console=self.console, refresh_per_second=10, transient=True
            )
            self.spinner.start()

    def feed(self, text: str) -> None:
        self._stop_spinner()
        with NoInterrupt(), self.lock:  # Ctrl-C lands between deltas, never between a row drawn and noted
            self._feed(clean(text))
            self._schedule()

    def _feed(self, text: str) -> None:
        while text:
            newline = text.find("\n")
            piece, text = (text, "") if newline < 0 else (text[:newline], text[newline + 1 :])
            self._take(piece)
            if newline >= 0:
                self._line_done()

    def _schedule(self) -> None:
        """Draw at most FPS frames a second: deltas that arrive faster are drawn together (a
        batch of code lines is lexed and written at once, coloured as if they came one by one);
        a timer draws the last of a burst."""
        wait = self.last_update + 1 / FPS - time.monotonic()
        if wait <= 0:
            self._update()
        elif self.timer is None:
            self.timer = threading.Timer(wait, self._late_frame)
            self.timer.daemon = True
            self.timer.start()

    def _late_frame(self) -> None:
        with self.lock:
            if self.timer is not None:
                self.timer = None
                self._update()

    def end(self, suffix: str = "") -> None:
        """Print what is left (with `suffix`, e.g. an interrupted mark) and stop being live."""
        self._stop_spinner()
        with NoInterrupt(), self.lock:
            if self.timer is not None:
                self.timer.cancel()
                self.timer = None
            self._end(clean(suffix))

    def _end(self, suffix: str) -> None:
        if suffix:
            self._feed(suffix)
        if not self.decided:
            self._decide(complete=True)
        if self.fence is not None:
            if self.line:
                self.code.append(self.line)
            self._close_fence()
        else:
            self._finish_unit()
        self._emit([], [])
        self._reset()

    # -- source lines into units ----------------------------------------------------------------
    def _take(self, piece: str) -> None:
        if self.decided and not self.line and piece:
            self.decided = False
        self.line += piece
        if self.decided:
            if self.fence is None:
                self.src += piece
        elif piece:
            self._decide(complete=False)

    def _line_done(self) -> None:
        in_fence = self.fence is not None
        if not self.decided:
            self._decide(complete=True)  # may open or close a fence: that line is neither code nor text
        if in_fence and self.fence is not None:
            self.code.append(self.line)
        elif not in_fence and self.fence is None and self.src:
            self.src += "\n"
        self.line, self.decided = "", True
        if self.kind == "heading":
            self._finish_unit()

    def _decide(self, complete: bool) -> None:
        """Classify the line being received once enough of it is known."""
        line, stripped = self.line, self.line.strip()
        if self.fence is not None:
            if not stripped or not set(stripped) <= {self.fence.marker[0]} or len(line) - len(line.lstrip(" ")) > 3:
                self.decided = True  # a code line
            elif complete:  # the closing fence, if long enough
                if len(stripped) >= len(self.fence.marker):
                    self._close_fence()
                    self.line = ""
                self.decided = True
            return
        if not complete and (not stripped or _MAYBE.match(line) or _FENCE.match(line)):
            return  # "-" may be a list item, "#" a heading, "```py" a fence whose language is not all here
        if not stripped:
            self._finish_unit()
            self.gap = self.started
        elif _FENCE.match(line):
            opener = _FENCE.match(line)
            assert opener is not None
            self._begin("code")
            self._open_fence(opener.group(1), opener.group(2).strip().split(" ")[0])
        else:
            if _HEADING.match(line):
                self._begin("heading")
            elif _ITEM.match(line):
                self._begin("item" + _marker(line))
            elif not self.kind:
                self._begin("text")
            self.src += line
        self.decided = True

    def _begin(self, kind: str) -> None:
        """A new unit: a blank line before it, as Rich puts between blocks, but between the items
        of one list."""
        previous = self.kind
        self._finish_unit()
        if self.started and (self.gap or not (kind == previous and kind.startswith("item"))):
            self._emit([[]], [])
        self.kind, self.gap = kind, False

    def _finish_unit(self) -> None:
        if self.kind and self.kind != "code" and self.src.strip():
            self._emit(self._rows(self.src), [])
        self.src, self.kind, self.indent = "", "", 0

    # -- code fences ------------------------------------------------------------------------------
    def _open_fence(self, marker: str, language: str) -> None:
        self.fence = Fence(marker, CodeBlock(self.console, language, CODE_THEME))
        self._emit([self.fence.block.padding_row()], [])

    def _close_fence(self) -> None:
        assert self.fence is not None
        rows = self.fence.block.add(self.code)
        self.code = []
        self._emit([*rows, self.fence.block.padding_row()], [])
        self.fence, self.kind = None, ""

    # -- the live part ------------------------------------------------------------------------------
    def _update(self) -> None:
        self.last_update = time.monotonic()
        if self.fence is not None:
            block = self.fence.block
            done = block.add(self.code)
            self.code = []
            live = block.live(self.line) if self.line and self.decided and self._live_ok() else []
            self._emit(done, live)
            return
        if not self.kind or not self.src.strip():
            self._emit([], [])
            return
        rows = self._rows(self.src)
        if len(rows) > 1:
            rows = self._commit_complete_rows(rows)
        self._emit([], rows if self._live_ok() else [])

    def _commit_complete_rows(self, rows: list[Row]) -> list[Row]:
        """Commit every row but the last; what is left live."""
        keep = len(rows) - 1
        crowded = keep >= max(2, self.console.height // 2)
        if not crowded and _open_inline(self.src):
            return rows  # `code`, **bold** or a [link](...) still open may re-wrap the rows before it
        cut = self._cut(rows, keep, exact=not crowded)
        if cut is not None:
            self._emit(rows[:keep], [])
            self.indent = _indent(rows[keep])
            self.src = self.src[cut:]
            return rows[keep:]
        return self._force_cut(rows, keep) if crowded else rows

    def _force_cut(self, rows: list[Row], keep: int) -> list[Row]:
        """No cut renders the same rows, and they fill half the screen: commit what the source's
        complete lines (else its words up to the last row) render as, so nothing is lost or printed
        twice though the rows may wrap differently; a table's rest keeps its header."""
        newline = self.src.rfind("\n")
        if newline > 0:
            cut, indent = newline + 1, 0
        else:
            tokens = list(re.finditer(r"\S+", self.src))
            if len(tokens) >= 2:
                words = len(" ".join(_plain(row) for row in rows[:keep]).split())
                cut = tokens[min(max(words, 1), len(tokens) - 1)].start()
            else:  # one word longer than the screen (a hash, base64): cut it where its rows are full
                cut = len(self.src) - len(self.src.lstrip()) + sum(len(_plain(row).strip()) for row in rows[:keep])
                if not 0 < cut < len(self.src):
                    return rows
            indent = _indent(rows[keep])
        head, rest = self.src[:cut], self.src[cut:]
        self._emit(self._rows(head), [])
        self.src, self.indent = _table_header(head) + rest, indent
        return self._rows(self.src) if rest.strip() else []

    def _cut(self, rows: list[Row], keep: int, exact: bool) -> int | None:
        """Where to cut `src` so that its start renders as rows[:keep] and (if `exact`) its rest
        as the rows after them."""
        words = len(" ".join(_plain(row) for row in rows[:keep]).split())
        tokens = list(re.finditer(r"\S+", self.src))
        if words < 1 or words >= len(tokens):
            return None
        end = tokens[words - 1].end()
        start = tokens[words].start()
        head = self._rows(self.src[:end])
        if [_plain(r) for r in head] != [_plain(r) for r in rows[:keep]]:
            return None
        if exact:
            indent = _indent(rows[keep])
            rest = self._rows(self.src[start:], indent)
            if [_plain(r) for r in rest] != [_plain(r) for r in rows[keep:]]:
                return None
        return start

    def _rows(self, source: str, indent: int | None = None) -> list[Row]:
        from rich.markdown import Markdown

        indent = self.indent if indent is None else indent
        width = max(10, self.console.width - indent)
        # hyperlinks=False shows a link as "text (url)": no hidden OSC 8 target
        markdown = Markdown(_defuse_entities(source), code_theme=CODE_THEME, hyperlinks=False)
        rows = [
            _safe(_trim(row))
            for row in self.console.render_lines(markdown, self.console.options.update_width(width), pad=False)
        ]
        while rows and not _plain(rows[0]).strip():
            rows.pop(0)  # the blank line Rich puts before a list or quote; gaps are ours
        if indent:
            rows = [[Segment(" " * indent), *row] for row in rows]
        return rows

    def _live_ok(self) -> bool:
        return self.console.is_terminal and not self.console.record

    def _emit(self, done: list[Row], live: list[Row]) -> None:
        """Replace the live rows with `done` rows (for good) and then `live` rows (to be redrawn)."""
        if not done and not live and not self.drawn:
            return
        segments: list[Segment] = []
        if self.drawn:
            segments.append(_erase_live(self.drawn).segment)
        for row in done:
            segments += [*row, Segment.line()]
        for n, row in enumerate(live):
            segments += row if n == 0 else [Segment.line(), *row]
        self.drawn = len(live)
        self.started = self.started or bool(done)
        self.console.print(Segments(segments), end="", soft_wrap=True)

    def _stop_spinner(self) -> None:
        if self.spinner is not None:
            self.spinner.stop()
            self.spinner = None


def _erase_live(rows: int) -> Any:
    """Back to the start of the first live row, erasing the live rows."""
    from rich.segment import ControlType

    codes: list[Any] = [ControlType.CARRIAGE_RETURN, (ControlType.ERASE_IN_LINE, 2)]
    codes += [(ControlType.CURSOR_UP, 1), (ControlType.ERASE_IN_LINE, 2)] * (rows - 1)
    return Control(*codes)


def _table_header(source: str) -> str:
    """The header and delimiter lines of a table in `source`, to start the rest of it with."""
    lines = source.splitlines(keepends=True)
    for n in range(1, len(lines)):
        if _DELIMITER_ROW.match(lines[n]) and "|" in lines[n - 1]:
            return lines[n - 1] + lines[n]
    return ""


def _open_inline(source: str) -> bool:
    return source.count("`") % 2 == 1 or source.count("**") % 2 == 1 or bool(_OPEN_LINK.search(source[-300:]))


def _marker(line: str) -> str:
    """Which list an item belongs to: a new kind of marker starts a new list."""
    item = _ITEM.match(line)
    assert item is not None
    return item.group(1)[-1]


def _plain(row: Row) -> str:
    return "".join(segment.text for segment in row if not segment.control).rstrip()


def _indent(row: Row) -> int:
    text = _plain(row)
    return len(text) - len(text.lstrip(" "))


def _trim(row: Row) -> Row:
    """Drop the unstyled padding Rich adds after a row, so a narrowed terminal does not rewrap it."""
    while row and not row[-1].control and not row[-1].text.strip() and not (row[-1].style and row[-1].style.bgcolor):
        row = row[:-1]
    if row and not row[-1].control and not (row[-1].style and row[-1].style.bgcolor):
        last = row[-1]
        row = [*row[:-1], Segment(last.text.rstrip(" "), last.style)]
    return row


def _safe(row: Row) -> Row:
    """Markdown decodes entities and escapes into characters: neutralise the rendered text too."""
    return [segment if segment.control else Segment(clean(segment.text), segment.style) for segment in row]


def _defuse_entities(source: str) -> str:
    """`&#x202E;` or `&rlm;` must not become a bidi control: show such an entity escaped."""

    def replace(match: re.Match[str]) -> str:
        decoded = html.unescape(match.group())
        return match.group() if clean(decoded) == decoded else "\\" + match.group()

    return _ENTITY.sub(replace, source) if "&" in source else source
