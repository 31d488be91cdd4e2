"""The interactive REPL: prompt-toolkit for input, Rich for output; the engine does the rest."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from rich.console import Console
from rich.text import Text

from toolchat.approval import ReplApprover
from toolchat.backends.base import Backend, TextDelta, Usage
from toolchat.config import Settings
from toolchat.engine import (CallDecided, CallFinished, CallRequested, Engine, Event, Policy, RoundDone,
                             ToolOptions, TurnError, TurnResult, TurnStarted)
from toolchat.env import Environment
from toolchat.render import MarkdownStream, call_panel, clean, plain, result_panel
from toolchat.sessions import SessionStore, load, project_folder, sessions_in
from toolchat.tools import Registry
from toolchat.tracing import traced


@dataclass
class Stats:
    rounds: list[tuple[Usage, float]] = field(default_factory=list)
    tools: list[tuple[str, str, float]] = field(default_factory=list)
    turns: int = 0


@dataclass
class ChatOptions:
    resume: bool = False
    session: str | None = None
    tool_choice: str | None = None
    approve_all: bool = False


class ChatDisplay:
    """The event sink: streamed Markdown, call and result panels, a spinner while waiting."""

    def __init__(self, console: Console, registry: Callable[[], Registry], stats: Stats,
                 on_change: Callable[[], None]) -> None:
        self.console, self.registry, self.stats, self.on_change = console, registry, stats, on_change
        self.stream = MarkdownStream(console)
        self.status: Any = None

    def __call__(self, event: Event) -> None:
        if isinstance(event, TextDelta):
            self.stream.feed(event.text)
        elif isinstance(event, TurnStarted):
            self.on_change()  # the user's message is on disk before the model answers
        elif isinstance(event, CallRequested):
            self.stream.end()
            tool = self.registry().get(event.call.name)
            source = tool.origin if tool else "no such tool"
            arguments = event.arguments if event.arguments is not None else event.call.arguments
            self.console.print(call_panel(event.call.name, arguments, source))
        elif isinstance(event, CallDecided):
            if event.automatic:
                self.console.print(plain(f"  {event.call.name}: allowed without asking", "dim"))
            if event.decision.approved:
                self._spin(f"running {clean(event.call.name)}…")
        elif isinstance(event, CallFinished):
            self._stop_spin()
            record = event.record
            self.stats.tools.append((record.name, record.status.value, record.duration))
            self.console.print(result_panel(record.name, record.status.value, record.duration, record.output))
            self.on_change()
            self.stream.waiting()
        elif isinstance(event, RoundDone):
            self.stats.rounds.append((event.usage, event.seconds))
            self.on_change()
        elif isinstance(event, TurnError):
            self.stream.end()
            self.console.print(plain(f"error: {event.message}", "bold red"))

    def _spin(self, message: str) -> None:
        self.status = self.console.status(Text(message, style="dim"))
        self.status.start()

    def _stop_spin(self) -> None:
        if self.status is not None:
            self.status.stop()
            self.status = None

    def stop(self) -> None:
        self._stop_spin()
        self.stream.end()


class Chat:
    def __init__(self, env: Environment, settings: Settings, registry: Registry, backend: Backend,
                 options: ChatOptions, console: Console,
                 reload: Callable[[str | None, str | None], tuple[Settings, Backend]]) -> None:
        self.env, self.settings, self.all_tools, self.backend = env, settings, registry, backend
        self.options, self.console, self.reload = options, console, reload
        self.denied: set[str] = set(settings.deny)
        self.stats = Stats()
        self.folder = project_folder(env.data_dir, settings.project_dir)
        self.display = ChatDisplay(console, lambda: self.engine.registry, self.stats, self._save)
        self.engine = Engine(
            backend, registry.without(self.denied), approve=self._approve,
            on_event=traced(self.display, lambda: self.engine.backend, settings, env.environ, lambda: self.store.id,
                            lambda name: self.engine.registry.get(name)),
            policy=Policy(options.approve_all, set(settings.allow)),
            tool_options=ToolOptions(settings.project_dir, settings.tool_timeout, settings.max_output_chars),
            system=settings.system, max_rounds=settings.max_rounds,
            temperature=settings.temperature, max_tokens=settings.max_tokens)
        self.approver = ReplApprover(console)
        self.store = self._open_store()

    # -- sessions ---------------------------------------------------------------------------------
    def _open_store(self) -> SessionStore:
        path: Path | None = None
        if self.options.session:
            path = SessionStore.new(self.folder, self.options.session).path
        elif self.options.resume:
            found = sessions_in(self.folder)
            if not found:
                self.console.print(plain("no earlier session in this project; starting a new one", "yellow"))
            path = found[-1] if found else None
        store = SessionStore(path) if path else SessionStore.new(self.folder)
        existing = 0
        if store.path.exists():
            loaded = load(store.path)
            if loaded.skipped:
                self.console.print(plain(f"warning: skipped {loaded.skipped} corrupt line(s) in {store.path}", "yellow"))
            if loaded.messages:
                self.engine.messages = loaded.messages
                existing = len(loaded.messages)
                self.console.print(plain(f"resumed session {store.id}: {existing} messages", "green"))
        store.open({"project": str(self.settings.project_dir), "backend": self.settings.backend,
                    "model": self.settings.model, "created": time.strftime("%Y-%m-%dT%H:%M:%S")}, existing)
        store.sync(self.engine.messages)
        if store.problem:
            self.console.print(plain(f"warning: {store.problem}", "yellow"))
        return store

    def _save(self) -> None:
        self.store.sync(self.engine.messages)

    def new_session(self) -> None:
        self.store.close()
        self.store = SessionStore.new(self.folder)
        self.store.open({"project": str(self.settings.project_dir), "backend": self.settings.backend,
                         "model": self.settings.model, "created": time.strftime("%Y-%m-%dT%H:%M:%S")})

    # -- a turn -----------------------------------------------------------------------------------
    def _approve(self, pending: Any) -> Any:
        self.display.stream.end()
        return self.approver(pending)

    def turn(self, text: str) -> TurnResult:
        self.stats.turns += 1
        self.display.stream.waiting()
        try:
            result = self.engine.run_turn(text, self.options.tool_choice)
        finally:
            self.display.stop()
            self._save()
        if result.stopped == "interrupted":
            self.console.print(plain("[interrupted — the conversation so far is kept]", "yellow"))
        elif result.stopped == "max_rounds":
            self.console.print(plain(f"stopped after {self.engine.max_rounds} model calls (max_rounds)", "yellow"))
        return result

    def toolbar(self) -> str:
        mode = "approve all" if self.engine.policy.approve_all else "ask"
        allowed = sorted(self.engine.policy.allow)
        if allowed and not self.engine.policy.approve_all:
            mode += f" (allowed: {', '.join(allowed)})"
        return clean(f" {self.settings.profile or 'default'} · {self.settings.backend} · "
                     f"{self.backend.model} · approval: {mode} · Esc Enter: new line · /help")
