"""Rich rendering shared by the REPL and the commands. Text that toolchat did not write itself (tool output, model
text, plugin docstrings) goes through `clean` and is shown as Text, never parsed as markup."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from rich.text import Text

from toolchat.env import console_for

if TYPE_CHECKING:  # imported where used, to keep `toolchat tools list` quick to start
    from rich.panel import Panel

    from toolchat.terminal.markdown import MarkdownStream

from toolchat.safety import clean

__all__ = ["MarkdownStream", "call_panel", "clean", "console_for", "plain", "result_panel"]


def __getattr__(name: str) -> object:
    """MarkdownStream is imported when the REPL asks for it, not by every command that prints."""
    if name == "MarkdownStream":
        from toolchat.terminal.markdown import MarkdownStream

        return MarkdownStream
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def plain(text: str, style: str = "") -> Text:
    """Untrusted text as a Rich Text: no markup is interpreted, no escape sequence survives."""
    return Text(clean(text), style=style)


def call_panel(name: str, arguments: object, source: str, note: str = "", redact: Callable[[str], str] = str) -> Panel:
    """A requested call: the tool, its arguments as highlighted JSON (through `redact`), where the
    tool comes from."""
    import json

    from rich.panel import Panel
    from rich.syntax import Syntax

    text = arguments if isinstance(arguments, str) else json.dumps(arguments, indent=2, ensure_ascii=False)
    body = Syntax(clean(redact(text)), "json", theme="ansi_dark", word_wrap=True, background_color="default")
    title = Text.assemble(("tool call ", "dim"), (clean(name), "bold cyan"))
    subtitle = Text(clean(source + (f" · {note}" if note else "")), style="dim")
    return Panel(body, title=title, title_align="left", subtitle=subtitle, subtitle_align="right", border_style="cyan")


STATUS_STYLE = {
    "ok": "green",
    "error": "red",
    "timeout": "red",
    "denied": "yellow",
    "invalid": "yellow",
    "unknown": "yellow",
    "cancelled": "yellow",
}


def result_panel(name: str, status: str, seconds: float, output: str, lines: int = 8) -> Panel:
    """A result: status, duration and a preview cut to a few lines, with how many more there are."""
    from rich.panel import Panel

    shown = clean(output).splitlines() or ["(no output)"]
    preview = Text("\n".join(line[:200] for line in shown[:lines]))
    if len(shown) > lines:
        preview.append(f"\n… {len(shown) - lines} more lines", style="dim")
    style = STATUS_STYLE.get(status, "white")
    title = Text.assemble(
        (clean(name), "bold"), (" → ", "dim"), (status, f"bold {style}"), (f"  {seconds:.2f} s", "dim")
    )
    return Panel(preview, title=title, title_align="left", border_style=style)
