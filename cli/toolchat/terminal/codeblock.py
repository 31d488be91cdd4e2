"""Highlighted rows of a streamed code block, one column of padding each side on the theme's
background, as Rich's Markdown shows a code block. Each token type is mapped to a style once,
rather than building a Rich Syntax per line (several times the cost; issue 18's benchmark).

A line's colours depend on the lines before it (a docstring, a `/* ... */` comment) and Pygments'
public API does not hand out the lexer's state, so each line is lexed once, with the lines since
the last sync point before it and a fixed probe line after it: a line's end is a sync point when
the probe lexes there as it does alone (the lexer is back in its root state; inside a string or a
comment the probe is string or comment), and the next line is then lexed on its own. A line is
coloured as the text up to its end lexes, never by lines not yet received (an unclosed string is a
string, though a later line may make the lexer see it otherwise), and every line goes through the
same steps whether it came alone or in a batch: its colours are a function of the text before it
alone, never of how the stream was cut into deltas or frames. Inside a string or comment the lines
since the sync point are lexed again with each line, at most SYNC_FORCED of them, past which a sync
point is taken as found (colours of a string longer than that may be wrong, the same way however
it arrived)."""

from __future__ import annotations

from typing import Any

from rich.cells import cell_len
from rich.console import Console
from rich.segment import Segment
from rich.style import Style
from rich.text import Text

from toolchat.terminal.lexing import tokenizer

Row = list[Segment]
Tokens = list[tuple[Any, str]]  # (token type, text) of one line, without its newline

SYNC_FORCED = 100  # lines since the sync point after which the next line is taken as one, to bound the work
ERROR_HELD = 2  # lines since the sync point up to which a line with an error token is not taken as one
PROBE = "  x\n"  # lexed after each line, indented as it is and two more: a name in the root state, part
# of the string, comment or block scalar (YAML's `- run: |`) the line is in, if any


class CodeBlock:
    def __init__(self, console: Console, language: str, theme: str) -> None:
        from pygments.lexers import get_lexer_by_name
        from pygments.token import Error
        from pygments.util import ClassNotFound
        from rich.syntax import PygmentsSyntaxTheme

        try:
            lexer = get_lexer_by_name(language or "text", stripnl=False, ensurenl=False)
        except ClassNotFound:
            lexer = get_lexer_by_name("text", stripnl=False, ensurenl=False)
        self.tokenize = tokenizer(lexer)  # the lexer's tokens, faster (terminal/lexing.py)
        self.console = console
        self.theme = PygmentsSyntaxTheme(theme)
        self.background = self.theme.get_background_style()
        self.styles: dict[Any, Style] = {}
        self.error = Error  # a token the lexer could not place: perhaps a string or comment not closed yet
        self.window: list[str] = []  # the lines since the last sync point, each with its newline
        self.probes: dict[str, Tokens] = {}  # each probe's tokens in the root state, by probe
        self.lead = Segment(" ", self.background)  # the column before each row's text
        self.pads: dict[int, Segment] = {}

    def padding_row(self) -> Row:
        return [Segment(" " * self.console.width, self.background)]

    def add(self, lines: list[str]) -> list[Row]:
        """The rows of complete `lines` that follow the ones added before, long lines wrapped."""
        rows: list[Row] = []
        width = self.console.width  # read once: a terminal's width is a system call each time
        for line in lines:
            line = line.expandtabs(4) + "\n"
            tokens, synced = self._tokens(line)
            self.window.append(line)
            if synced or len(self.window) >= SYNC_FORCED:
                self.window = []
            rows += self._fit(tokens, width)
        return rows

    def live(self, line: str) -> list[Row]:
        """The rows of the line still being received, coloured as it would be if it ended here."""
        return self._fit(self._tokens(line.expandtabs(4) + "\n")[0], self.console.width)

    def _tokens(self, line: str) -> tuple[Tokens, bool]:
        """`line`'s tokens after the lines since the sync point, and whether its end is one."""
        probe = " " * (len(line) - len(line.lstrip(" -"))) + PROBE  # "- " indents a YAML list's item
        *_, tokens, after = self._lex([*self.window, line, probe])
        if not line.strip():
            return tokens, False  # a blank line says nothing
        if len(self.window) < ERROR_HELD and any(token is self.error for token, _ in tokens):
            return tokens, False  # an error may be a string or comment whose lexer rule needs its end
        if probe not in self.probes:
            self.probes[probe] = _solid(self._lex([probe])[0])
        return tokens, _solid(after) == self.probes[probe]

    def _lex(self, lines: list[str]) -> list[Tokens]:
        """`lines` lexed together, as the tokens of each line (a token over a line end is cut there)."""
        tokens: list[Tokens] = [[] for _ in range(len(lines) + 1)]
        n, append = 0, tokens[0].append  # most tokens are within a line: one test and one append each
        for _, token, value in self.tokenize("".join(lines)):
            if "\n" not in value:
                if value:
                    append((token, value))
                continue
            parts = value.split("\n")
            if parts[0]:
                append((token, parts[0]))
            for part in parts[1:]:
                n += 1
                append = tokens[n].append
                if part:
                    append((token, part))
        return tokens[: len(lines)]

    # -- rows -------------------------------------------------------------------------------------
    def _fit(self, tokens: Tokens, width: int) -> list[Row]:
        line, text = self._segments(tokens)
        used = len(text) if text.isascii() else cell_len(text)
        if used <= width - 2:
            return [[self.lead, *line, self._pad(width - 1 - used)]]
        wrapped = Text.assemble(*((segment.text, segment.style) for segment in line))
        return [
            [self.lead, *part.render(self.console), self._pad(width - 1 - part.cell_len)]
            for part in wrapped.wrap(self.console, width - 2)
        ]

    def _pad(self, columns: int) -> Segment:
        """The background after a row's text; a few widths recur, so each is made once."""
        pad = self.pads.get(columns)
        if pad is None:
            pad = self.pads[columns] = Segment(" " * columns, self.background)
        return pad

    def _segments(self, tokens: Tokens) -> tuple[Row, str]:
        """One segment for each run of tokens of one style (fewer to make and to write), and the
        line's text."""
        styles, line = self.styles, []
        texts: list[str] = []
        last = None
        for token, value in tokens:
            style = styles.get(token)
            if style is None:  # not `or`: a Style with no attributes is false
                style = self._style(token)
            if style is not last and texts:
                line.append(Segment("".join(texts), last))
                texts = []
            texts.append(value)
            last = style
        if texts:
            line.append(Segment("".join(texts), last))
        return line, "".join([value for _, value in tokens])

    def _style(self, token: Any) -> Style:
        """The token's style on the background, the same object for token types that look the same."""
        style = self.background + self.theme.get_style_for_token(token)
        self.styles[token] = next((known for known in self.styles.values() if known == style), style)
        return self.styles[token]


def _solid(tokens: Tokens) -> Tokens:
    """The tokens that are not only white space, stripped (a lexer may join the white space before
    the probe to the line end before it)."""
    return [(token, value.strip()) for token, value in tokens if value.strip()]
