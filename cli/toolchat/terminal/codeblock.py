"""Highlighted rows of a streamed code block, one column of padding each side on the theme's
background, as Rich's Markdown shows a code block. The streaming renderer asks for rows once per
line that arrives, so this lexes with Pygments and maps each token type to a style once, rather
than building a Rich Syntax per line (several times the cost; issue 18's benchmark), with the
lexer's rules tried only where they can match (fastlex: the same tokens, a third of the time)."""

from __future__ import annotations

from typing import Any

from rich.cells import cell_len
from rich.console import Console
from rich.segment import Segment
from rich.style import Style
from rich.text import Text

from toolchat.terminal import fastlex

Row = list[Segment]


class CodeBlock:
    def __init__(self, console: Console, language: str, theme: str) -> None:
        from pygments.lexers import get_lexer_by_name
        from pygments.util import ClassNotFound
        from rich.syntax import PygmentsSyntaxTheme

        try:
            self.lexer: Any = get_lexer_by_name(language or "text", stripnl=False, ensurenl=False)
        except ClassNotFound:
            self.lexer = get_lexer_by_name("text", stripnl=False, ensurenl=False)
        fastlex.accelerate(self.lexer)
        self.console = console
        self.theme = PygmentsSyntaxTheme(theme)
        self.background = self.theme.get_background_style()
        self.styles: dict[Any, Style] = {}

    def padding_row(self) -> Row:
        return [Segment(" " * self.console.width, self.background)]

    def rows(self, code: str) -> list[Row]:
        """One row per line of `code` (newline-separated, no final newline), long lines wrapped."""
        width = self.console.width
        rows: list[Row] = []
        line: list[Segment] = []
        for token, value in self.lexer.get_tokens(code.expandtabs(4)):
            style = self.styles.get(token) or self._style(token)
            if "\n" not in value:
                line.append(Segment(value, style))
                continue
            first, *more = value.split("\n")
            if first:
                line.append(Segment(first, style))
            for part in more:
                rows += self._fit(line, width)
                line = [Segment(part, style)] if part else []
        return rows + self._fit(line, width)

    def _style(self, token: Any) -> Style:
        style = self.styles[token] = self.background + self.theme.get_style_for_token(token)
        return style

    def _fit(self, line: list[Segment], width: int) -> list[Row]:
        text = "".join(segment.text for segment in line)
        used = len(text) if text.isascii() else cell_len(text)
        if used <= width - 2:
            return [[Segment(" ", self.background), *line, Segment(" " * (width - 1 - used), self.background)]]
        text = Text.assemble(*((segment.text, segment.style) for segment in line))
        rows = []
        for part in text.wrap(self.console, width - 2):
            pad = width - 1 - part.cell_len
            rows.append(
                [Segment(" ", self.background), *part.render(self.console), Segment(" " * pad, self.background)]
            )
        return rows
