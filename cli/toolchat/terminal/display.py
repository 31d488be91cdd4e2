"""How a chat looks while it runs: the REPL's event sink (streamed Markdown, call and result
panels, a spinner while waiting) and the figures `/stats` shows."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from rich.console import Console
from rich.text import Text

from toolchat.backends.base import ReasoningDelta, TextDelta, Usage
from toolchat.engine import (
    CallDecided,
    CallFinished,
    CallRecord,
    CallRequested,
    CallStarted,
    Compacted,
    ContextNote,
    Event,
    RoundDone,
    RoundStarted,
    TurnEnded,
    TurnError,
)
from toolchat.redact import Redactor, StreamRedactor
from toolchat.terminal.interrupts import NoInterrupt
from toolchat.terminal.render import MarkdownStream, call_panel, clean, plain, result_panel
from toolchat.tools import Registry, Tool


@dataclass
class Stats:
    rounds: list[tuple[Usage, float]] = field(default_factory=list)
    tools: list[tuple[str, str, float]] = field(default_factory=list)
    turns: int = 0


def origin(tool: Tool | None) -> str:
    """Where a tool comes from, as the approval panel shows it."""
    return tool.origin if tool is not None else "no such tool"


class ChatDisplay:
    """The REPL's event sink. It only shows; the conversation saves itself."""

    def __init__(self, console: Console, registry: Callable[[], Registry], stats: Stats, redactor: Redactor) -> None:
        self.console, self.registry, self.stats = console, registry, stats
        self.redact = redactor.redact
        self.stream = RedactedStream(MarkdownStream(console), redactor)
        self.status: Any = None
        self.last_result: CallRecord | None = None
        self.round_started: float | None = None
        self.thought = ThoughtView(console, redactor)
        self.numbers: dict[str, int] = {}  # call id -> its place in the reply (1, 2, ...), shown when several run
        self.running: dict[str, str] = {}  # call id -> its label, while it runs

    def __call__(self, event: Event) -> None:
        if isinstance(event, ReasoningDelta):
            if not self.thought.active and self.thought.live:
                self.stream.end()  # the "thinking…" spinner gives way to the reasoning itself
            self.thought.feed(event.text)
        elif isinstance(event, TextDelta):
            self.thought.collapse()
            self.stream.feed(event.text)
        elif isinstance(event, CallRequested):
            self.thought.collapse()
            self.stream.end()
            number, of = event.place
            self.numbers[event.call.id] = number
            arguments = event.arguments if event.arguments is not None else event.call.arguments
            name = self.redact(event.call.name)  # a model may echo a secret as a tool's name
            name = f"{name} #{number}" if of > 1 else name  # as it starts and ends
            shown = origin(self.registry().get(event.call.name))
            self.console.print(call_panel(name, arguments, shown, redact=self.redact))
        elif isinstance(event, CallDecided):
            if event.automatic:
                self.console.print(plain(f"  {self.redact(event.call.name)}: allowed without asking", "dim"))
        elif isinstance(event, CallStarted):
            self._started(event)
        elif isinstance(event, CallFinished):
            record = self.last_result = event.record
            name = self.redact(record.name)
            label = self.running.pop(record.id, name)
            if not self.running:
                self._stop_spin()
            self.stats.tools.append((name, record.status.value, record.duration))  # for /stats
            note = "  (arguments edited by you)" if record.edited else ""
            with NoInterrupt():  # a Ctrl-C (a second one, while stopped calls are said) never cuts a panel
                panel = result_panel(label, record.status.value, record.duration, self.redact(record.output))
                self.console.print(panel)
            if note:
                self.console.print(plain(note, "dim"))
            if self.running:
                self._spin(self._running_line())
            else:
                self.stream.waiting()
        elif isinstance(event, RoundStarted):
            self.round_started = time.monotonic()
            self.numbers, self.running = {}, {}
        elif isinstance(event, RoundDone):
            self.thought.collapse(event.usage.reasoning_tokens)
            self.stats.rounds.append((event.usage, event.seconds))
            self.round_started = None
        elif isinstance(event, TurnEnded) and self.round_started is not None:  # a model call cut short counts too
            self.stats.rounds.append((Usage(), time.monotonic() - self.round_started))
            self.round_started = None
        elif isinstance(event, (Compacted, ContextNote)):
            self.stream.end()
            self.console.print(plain(event.line if isinstance(event, Compacted) else f"note: {event.text}", "dim"))
        elif isinstance(event, TurnError):
            self.thought.collapse()
            self.stream.end()
            self.console.print(plain(f"error: {self.redact(event.message)}", "bold red"))

    def _started(self, event: CallStarted) -> None:
        """One line per call as it starts when several run at once (each named `tool #n`, as its
        result will be), and one spinner line naming every call still running."""
        label = name = self.redact(event.call.name)
        if event.together > 1:
            label = f"{name} #{self.numbers.get(event.call.id, len(self.numbers) + 1)}"
            self.console.print(plain(f"  ▸ {label} started", "dim"))
        self.running[event.call.id] = label
        self._spin(self._running_line())

    def _running_line(self) -> str:
        labels = list(self.running.values())
        if len(labels) == 1:
            return f"running {clean(labels[0])}…"
        return f"running {len(labels)} calls: {clean(', '.join(labels))}…"

    def _spin(self, message: str) -> None:
        if self.status is not None:  # one spinner line, whatever runs: said again, not stacked
            self.status.update(Text(message, style="dim"))
            return
        self.status = self.console.status(Text(message, style="dim"))
        self.status.start()

    def _stop_spin(self) -> None:
        if self.status is not None:
            self.status.stop()
            self.status = None

    def stop(self) -> None:
        self._stop_spin()
        self.thought.collapse()
        self.stream.end()


class ThoughtView:
    """A reply's reasoning while it streams: dim, labelled, the last lines live below the label;
    when the answer or a call begins it collapses to one line ("thought for 12 s, ~340 tokens").
    `live` off (/reasoning off, show_reasoning: false) shows only the collapsed line. The whole
    text of the last reasoning is kept for /reasoning."""

    TAIL = 8  # lines shown while it streams

    def __init__(self, console: Console, redactor: Redactor, live: bool = True) -> None:
        self.console, self.redactor, self.live = console, redactor, live
        self.last = ""  # the last reply's reasoning, redacted
        self.parts: list[str] = []
        self.held = StreamRedactor(redactor)
        self.view: Any = None
        self.started: float | None = None

    @property
    def active(self) -> bool:
        return self.started is not None

    def feed(self, text: str) -> None:
        if self.started is None:
            self.started, self.parts = time.monotonic(), []
            if self.live:
                from rich.live import Live

                self.view = Live(self._frame(), console=self.console, refresh_per_second=8, transient=True)
                self.view.start()
        self.parts.append(self.held.feed(text))
        if self.view is not None:
            self.view.update(self._frame())

    def _frame(self) -> Text:
        lines = clean("".join(self.parts)).splitlines()[-self.TAIL :]
        frame = Text("reasoning\n", style="dim bold")
        frame.append("\n".join(lines), style="dim italic")
        return frame

    def collapse(self, tokens: int | None = None) -> None:
        if self.started is None:
            return
        self.parts.append(self.held.flush())
        if self.view is not None:
            self.view.stop()
            self.view = None
        seconds = time.monotonic() - self.started
        self.last, self.started = "".join(self.parts), None
        count = f"{tokens} tokens" if tokens is not None else f"~{max(1, len(self.last) // 4)} tokens"
        self.console.print(plain(f"▸ thought for {seconds:.0f} s, {count} (/reasoning shows it)", "dim"))


class RedactedStream:
    """The answer's Markdown stream, fed through the redactor: a secret cut across two deltas is
    hidden as it would be in one (what could be its start waits for the next delta or the end)."""

    def __init__(self, stream: MarkdownStream, redactor: Redactor) -> None:
        self.stream, self.held = stream, StreamRedactor(redactor)

    def feed(self, text: str) -> None:
        self.stream.feed(self.held.feed(text))

    def end(self, suffix: str = "") -> None:
        rest = self.held.flush()
        if rest:
            self.stream.feed(rest)
        self.stream.end(suffix)

    def waiting(self, message: str = "thinking…") -> None:
        self.stream.waiting(message)
