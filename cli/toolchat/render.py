"""Rich rendering shared by the faces. Text that toolchat did not write itself (tool output, model
text, plugin docstrings) goes through `clean` and is shown as Text, never parsed as markup."""

from __future__ import annotations

from typing import IO, TYPE_CHECKING

from rich.console import Console
from rich.text import Text

if TYPE_CHECKING:  # imported where used, to keep `toolchat tools list` quick to start
    from rich.live import Live
    from rich.markdown import Markdown
    from rich.panel import Panel

from toolchat.safety import clean


def plain(text: str, style: str = "") -> Text:
    """Untrusted text as a Rich Text: no markup is interpreted, no escape sequence survives."""
    return Text(clean(text), style=style)


def console_for(stream: IO[str], *, stderr: bool = False) -> Console:
    return Console(file=stream, stderr=stderr, highlight=False, soft_wrap=False)


def call_panel(name: str, arguments: object, source: str, note: str = "") -> "Panel":
    """A requested call: the tool, its arguments as highlighted JSON, where the tool comes from."""
    import json

    from rich.panel import Panel
    from rich.syntax import Syntax

    text = arguments if isinstance(arguments, str) else json.dumps(arguments, indent=2, ensure_ascii=False)
    body = Syntax(clean(text), "json", theme="ansi_dark", word_wrap=True, background_color="default")
    title = Text.assemble(("tool call ", "dim"), (clean(name), "bold cyan"))
    subtitle = Text(clean(source + (f" · {note}" if note else "")), style="dim")
    return Panel(body, title=title, title_align="left", subtitle=subtitle, subtitle_align="right", border_style="cyan")


STATUS_STYLE = {"ok": "green", "error": "red", "timeout": "red", "denied": "yellow", "invalid": "yellow",
                "unknown": "yellow", "cancelled": "yellow"}


def result_panel(name: str, status: str, seconds: float, output: str, lines: int = 8) -> "Panel":
    """A result: status, duration and a preview cut to a few lines, with how many more there are."""
    from rich.panel import Panel

    shown = clean(output).splitlines() or ["(no output)"]
    preview = Text("\n".join(line[:200] for line in shown[:lines]))
    if len(shown) > lines:
        preview.append(f"\n… {len(shown) - lines} more lines", style="dim")
    style = STATUS_STYLE.get(status, "white")
    title = Text.assemble((clean(name), "bold"), (" → ", "dim"), (status, f"bold {style}"), (f"  {seconds:.2f} s", "dim"))
    return Panel(preview, title=title, title_align="left", border_style=style)


class MarkdownStream:
    """Renders streamed text as Markdown: finished blocks are printed once, for good; only the
    block still growing is live, so nothing is duplicated or torn however long the answer."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self.pending = ""
        self.live: "Live | None" = None

    def waiting(self, message: str = "thinking…") -> None:
        from rich.live import Live
        from rich.spinner import Spinner

        if self.live is None:
            self.live = Live(Spinner("dots", Text(message, style="dim")), console=self.console,
                             refresh_per_second=10, transient=True)
            self.live.start()

    def feed(self, text: str) -> None:
        self.pending += clean(text)
        done, rest = _split_blocks(self.pending)
        if done:
            self._stop_live()
            self.console.print(_markdown(done))
            self.pending = rest
        if self.pending:
            self._show_live()

    def _show_live(self) -> None:
        from rich.live import Live

        if self.live is None:
            self.live = Live(console=self.console, refresh_per_second=10, transient=True, vertical_overflow="crop")
            self.live.start()
        self.live.update(_markdown(self.pending))

    def _stop_live(self) -> None:
        if self.live is not None:
            self.live.stop()
            self.live = None

    def end(self, suffix: str = "") -> None:
        """Print what is left (with `suffix`, e.g. an interrupted mark) and stop being live."""
        self._stop_live()
        if self.pending or suffix:
            self.console.print(_markdown(self.pending + suffix))
        self.pending = ""


def _markdown(text: str) -> "Markdown":
    from rich.markdown import Markdown

    return Markdown(text)


def _split_blocks(text: str) -> tuple[str, str]:
    """Split at the last blank line that is outside a code fence: (finished, growing)."""
    cut, fenced, position = -1, False, 0
    for line in text.splitlines(keepends=True):
        if line.lstrip().startswith("```"):
            fenced = not fenced
        position += len(line)
        if not fenced and line.strip() == "" and position < len(text):
            cut = position
    if cut <= 0:
        return "", text
    return text[:cut], text[cut:]
