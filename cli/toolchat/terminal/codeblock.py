"""Highlighted rows of a streamed code block, one column of padding each side on the theme's
background, as Rich's Markdown shows a code block. Each token type is mapped to a style once,
rather than building a Rich Syntax per line (several times the cost; issue 18's benchmark).

A line's colours depend on the lines before it (a docstring, a `/* ... */` comment) and Pygments'
public API does not hand out the lexer's state, so each line is lexed with the lines since the
last sync point: a line start where the lexer is back in its root state, known because that line
lexed alone gives the same tokens as it does after the lines before it (and no token runs into
it). A line is coloured as the text up to its end lexes, never by lines not yet received (an
unclosed string is a string, though a later line may make the lexer see it otherwise): so its
colours are a function of the text before it alone, never of how the stream was cut into
deltas or frames. A batch of lines that each lex alone as they do together is lexed twice (at
once, and line by line); a line that does not (inside a string or comment) is lexed with the
lines since the sync point, at most SYNC_FORCED of them, past which a sync point is taken as
found (colours of a string longer than that may be wrong, the same way however it arrived)."""

from __future__ import annotations

from typing import Any

from rich.cells import cell_len
from rich.console import Console
from rich.segment import Segment
from rich.style import Style
from rich.text import Text

Row = list[Segment]
Tokens = list[tuple[Any, str]]  # (token type, text) of one line, without its newline

SYNC_FORCED = 100  # lines since the sync point after which the next line is taken as one, to bound the work


class CodeBlock:
    def __init__(self, console: Console, language: str, theme: str) -> None:
        from pygments.lexers import get_lexer_by_name
        from pygments.util import ClassNotFound
        from rich.syntax import PygmentsSyntaxTheme

        try:
            self.lexer: Any = get_lexer_by_name(language or "text", stripnl=False, ensurenl=False)
        except ClassNotFound:
            self.lexer = get_lexer_by_name("text", stripnl=False, ensurenl=False)
        self.console = console
        self.theme = PygmentsSyntaxTheme(theme)
        self.background = self.theme.get_background_style()
        self.styles: dict[Any, Style] = {}
        self.window: list[str] = []  # the lines from the sync point on, each with its newline

    def padding_row(self) -> Row:
        return [Segment(" " * self.console.width, self.background)]

    def add(self, lines: list[str]) -> list[Row]:
        """The rows of complete `lines` that follow the ones added before, long lines wrapped."""
        pending = [line.expandtabs(4) + "\n" for line in lines]
        tokens: list[Tokens] = []
        while len(tokens) < len(pending):
            if len(self.window) <= 1:
                tokens += self._run(pending[len(tokens) :])
            if len(tokens) < len(pending):
                tokens.append(self._add(pending[len(tokens)]))
        return [row for line in tokens for row in self._fit(line)]

    def live(self, line: str) -> list[Row]:
        """The rows of the line still being received, coloured as it lexes after the lines before."""
        lines, _ = self._lex([*self.window, line.expandtabs(4)])
        return self._fit(lines[-1])

    def _run(self, lines: list[str]) -> list[Tokens]:
        """From a sync point: the tokens of the first of `lines` that each lex alone as they do
        together (each is then a sync point, as _add would find); all of them lexed at once, to
        lex each line twice rather than three times."""
        together, spilled = self._lex(self.window + lines)
        first = len(self.window)
        done: list[Tokens] = []
        for n, line in enumerate(lines, first):
            if not line.strip() or n - 1 in spilled or self._lex([line])[0][0] != together[n]:
                break
            done.append(together[n])
        if done:
            self.window = [lines[len(done) - 1]]
        return done

    def _add(self, line: str) -> Tokens:
        """`line`'s tokens after the lines since the sync point; the sync point moves to it if it
        lexes the same alone and no token runs into it: the lexer is back in its root state there."""
        self.window.append(line)
        lines, spilled = self._lex(self.window)
        tokens = lines[-1]
        if len(self.window) > SYNC_FORCED:
            self.window = [line]
        elif line.strip() and (len(self.window) == 1 or len(self.window) - 2 not in spilled):
            if len(self.window) == 1 or self._lex([line])[0][0] == tokens:
                self.window = [line]
        return tokens

    def _lex(self, lines: list[str]) -> tuple[list[Tokens], set[int]]:
        """`lines` lexed together, as the tokens of each line, and the lines a token runs on past."""
        tokens: list[Tokens] = [[] for _ in lines]
        spilled: set[int] = set()
        n = 0
        for _, token, value in self.lexer.get_tokens_unprocessed("".join(lines)):
            if "\n" not in value:
                tokens[n].append((token, value))
                continue
            parts = value.split("\n")
            for k, part in enumerate(parts):
                if part:
                    tokens[n].append((token, part))
                if k < len(parts) - 1:
                    if k < len(parts) - 2 or parts[-1]:
                        spilled.add(n)  # this token goes on past this line's end
                    n += 1
        return tokens, spilled

    # -- rows -------------------------------------------------------------------------------------
    def _fit(self, tokens: Tokens) -> list[Row]:
        width = self.console.width
        line = [Segment(value, self.styles.get(token) or self._style(token)) for token, value in tokens]
        text = "".join(segment.text for segment in line)
        used = len(text) if text.isascii() else cell_len(text)
        if used <= width - 2:
            return [[Segment(" ", self.background), *line, Segment(" " * (width - 1 - used), self.background)]]
        wrapped = Text.assemble(*((segment.text, segment.style) for segment in line))
        rows = []
        for part in wrapped.wrap(self.console, width - 2):
            pad = width - 1 - part.cell_len
            rows.append(
                [Segment(" ", self.background), *part.render(self.console), Segment(" " * pad, self.background)]
            )
        return rows

    def _style(self, token: Any) -> Style:
        style = self.styles[token] = self.background + self.theme.get_style_for_token(token)
        return style
