"""A REPL session's state and every operation on it: the engine, the session log, which tools are
allowed or denied, the profile in force. slash.py parses commands and prints; this does them."""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.cells import cell_len
from rich.console import Console

from toolchat.backends.base import Backend
from toolchat.config.settings import Settings
from toolchat.conversation import Conversation
from toolchat.engine import Engine, Stopped, TurnResult
from toolchat.env import Environment
from toolchat.errors import ToolchatError, UsageError
from toolchat.files import open_private, private_folder
from toolchat.process import INTERRUPTED, stop_notice
from toolchat.redact import redactor_for
from toolchat.sessions import SessionBusy, SessionLog, load, project_folder, sessions_in, to_markdown
from toolchat.terminal.approval import ReplApprover
from toolchat.terminal.display import ChatDisplay, Stats
from toolchat.terminal.render import clean, plain
from toolchat.tools import Registry
from toolchat.tracing.control import traced


@dataclass
class Reload:
    """What /model and /profile call, in two steps: the settings another profile or model brings
    (the same files and flags, read afresh), then the backend those settings name, built."""

    settings: Callable[[str | None, str | None], Settings]
    backend: Callable[[Settings], Backend]


@dataclass
class ReplOptions:
    resume: bool = False
    session: str | None = None
    tool_choice: str | None = None
    approve_all: bool = False


def reloader(
    env: Environment, config_path: Path | None, overrides: dict[str, Any], notify: Callable[[str], None]
) -> Reload:
    """What /model and /profile call: the same files and flags, another profile or model, read
    afresh; the backend it names, built."""
    from toolchat.backends.factory import create_backend
    from toolchat.config import settings as config_module

    def settings(profile: str | None, model: str | None) -> Settings:
        changed = {**overrides, "profile": profile or overrides.get("profile"), "model": model}
        # the question of trust was asked once, at start
        return config_module.load_in(env, config_path, changed, notify=notify, on_untrusted=lambda config: False)

    return Reload(settings, lambda chosen: create_backend(chosen, env, notify))


ANSWER_KEYS = "ynae?YNAE"  # the approval question's keys, typed too early


class ReplSession:
    """One REPL session: its engine, session log, tool policy and profile."""

    def __init__(
        self,
        env: Environment,
        settings: Settings,
        registry: Registry,
        backend: Backend,
        options: ReplOptions,
        console: Console,
        reload: Reload,
    ) -> None:
        self.env, self.settings, self.all_tools, self.backend = env, settings, registry, backend
        self.options, self.console, self.reload = options, console, reload
        self.denied: set[str] = set(settings.deny)
        self.stats = Stats()
        self.folder = project_folder(env.data_dir, settings.project_dir)
        self.redactor = redactor_for(settings, env.environ)
        self.display = ChatDisplay(console, lambda: self.engine.registry, self.stats, self.redactor)
        self.display.thought.live = settings.show_reasoning
        on_event = traced(
            self.display,
            lambda: self.engine.backend,
            settings,
            env.environ,
            lambda: self.log.id,
            lambda name: self.engine.registry.get(name),
        )
        self.engine = Engine.from_settings(
            settings, backend, registry, approve=self._approve, on_event=on_event, approve_all=options.approve_all
        )
        self.engine.check_tool_choice(options.tool_choice)  # a bad --tool-choice: exit 2 before the REPL opens
        self.approver = ReplApprover(console, lambda: self.engine.limits.sandbox)
        self.notices: list[str] = []
        self.typed_ahead: list[str] = []  # text typed while the model streamed: the next prompt's input
        self.drain_input: Callable[[], str] = lambda: ""
        self.log = self._open_log()

    # -- the session log ---------------------------------------------------------------------------
    def _header(self) -> dict[str, Any]:
        return {
            "project": str(self.settings.project_dir),
            "backend": self.settings.backend,
            "model": self.backend.model,
            "created": time.strftime("%Y-%m-%dT%H:%M:%S"),
        }

    def _new_log(self, name: str | None = None) -> SessionLog:
        log = SessionLog.new(self.folder, self._header(), name, self.redactor.redact)
        problem = log.check()
        if problem and problem not in self.notices:
            self.notices.append(f"warning: {problem}")
        return log

    def _open_log(self) -> SessionLog:
        """A named session, this project's last one (--continue) or a new one; a session another
        toolchat is writing is left alone and a new one started."""
        path: Path | None = None
        if self.options.session:
            path = self._new_log(self.options.session).path
        elif self.options.resume:
            # the newest session that has a message (an empty one is never worth resuming)
            path = next((p for p in reversed(sessions_in(self.folder)) if load(p).messages), None)
            if path is None:
                self.notices.append("no earlier session in this project; starting a new one")
        if path is None:
            log = self._new_log()
            self.engine.conversation.start_log(log)
            return log
        log = SessionLog(path, self._header(), self.redactor.redact)
        try:
            log.claim()
        except (SessionBusy, OSError) as exc:  # busy, or a symlink or other non-file in its place
            why = str(exc) if isinstance(exc, SessionBusy) else f"cannot use session {log.id} ({exc.strerror or exc})"
            self.notices.append(f"{why}; starting a new session")
            log = self._new_log()
            self.engine.conversation.start_log(log)
            return log
        loaded = load(path)
        if loaded.skipped:
            self.notices.append(f"warning: skipped {loaded.skipped} corrupt line(s) in {path}")
        if loaded.messages:
            self.engine.conversation.restore(loaded.messages, log)
            self.notices.append(f"resumed session {log.id}: {len(self.engine.messages)} messages")
        else:
            self.engine.conversation.start_log(log)
        return log

    @property
    def problem(self) -> str | None:
        return self.log.problem

    # -- a turn ------------------------------------------------------------------------------------
    def _approve(self, pending: Any) -> Any:
        self.display.stream.end()
        early = self.drain_input()  # keys typed earlier must not answer the question
        if early.strip(ANSWER_KEYS + " "):  # a message typed ahead waits at the next prompt; answer keys go
            self.typed_ahead.append(early)
        return self.approver(pending)

    def turn(self, text: str) -> TurnResult:
        self.stats.turns += 1
        self.display.stream.waiting()
        try:
            result = self.engine.run_turn(text, self.options.tool_choice)
        finally:
            self.display.stop()
        notice = stop_notice(result, self.engine.max_rounds, self.engine.max_tokens)
        if notice:
            self.console.print(plain(f"[{notice}]" if notice == INTERRUPTED else notice, "yellow"))
        warning = f"warning: {self.log.problem}"
        if self.log.problem and warning not in self.notices:
            self.notices.append(warning)
            self.console.print(plain(warning, "yellow"))
        return result

    # -- operations (slash commands) ---------------------------------------------------------------
    def known_tool(self, name: str) -> None:
        if not name:
            raise UsageError("name a tool", "tools: " + (", ".join(self.all_tools.names()) or "none"))
        if self.all_tools.get(name) is None:
            import difflib

            from toolchat.mcp.wiring import starting_server_for

            server = starting_server_for(self.all_tools, name)
            if server is not None:
                raise UsageError(
                    f"no tool named '{clean(name)}' yet: mcp {clean(server)} is still starting",
                    "its tools join when it is ready (the toolbar says so); try again then",
                )

            close = difflib.get_close_matches(name, self.all_tools.names(), n=1)
            raise UsageError(f"no tool named '{clean(name)}'" + (f"; did you mean '{close[0]}'?" if close else ""))

    def allow(self, name: str) -> str:
        self.known_tool(name)
        self.denied.discard(name)
        self.engine.registry = self.all_tools.without(self.denied)
        self.engine.policy.allow.add(name)
        return f"{name} now runs without asking"

    def deny(self, name: str) -> str:
        self.known_tool(name)
        self.denied.add(name)
        self.engine.policy.allow.discard(name)
        self.engine.registry = self.all_tools.without(self.denied)
        if self.options.tool_choice == name:
            self.options.tool_choice = None
            return f"{name} is no longer offered (and no longer forced by --tool-choice)"
        return f"{name} is no longer offered"

    def switch(self, profile: str | None, model: str | None) -> str:
        """Bring another profile (`model` None: its own model, sampling, limits and system prompt)
        or another model (the system prompt in force stays, one set with /system too) into force.
        A switch that fails or is interrupted (Ctrl-C while a model loads) leaves everything as it
        was: the new backend is built first and the old one closed only then, but for one local
        model after another, which may not fit in memory side by side: the old one is freed first,
        and loaded again when the new one does not come."""
        try:
            settings = self.reload.settings(profile, model)
            freed = _both_local(self.settings, settings)
            backend = self._build(settings) if freed else self.reload.backend(settings)
        except ToolchatError as exc:
            raise UsageError(f"{exc}; {self.still_using()}") from exc
        old, self.settings, self.backend = self.backend, settings, backend
        self.engine.configure(settings, backend, keep_system=True)
        if model is None:  # /profile: its system prompt, or none (not the last profile's)
            self.engine.conversation.set_system(settings.system)
        if not freed:
            old.close()
        return f"now using {settings.backend}: {backend.model}"

    def _build(self, settings: Settings) -> Backend:
        """A local model in place of a local model: the old one's memory freed before the new one
        loads; when the new one fails or Ctrl-C stops it, the old one is loaded again."""
        self.backend.close()
        try:
            return self.reload.backend(settings)
        except (ToolchatError, KeyboardInterrupt):
            self.backend = self.reload.backend(self.settings)
            self.engine.backend = self.backend
            raise

    def still_using(self) -> str:
        return f"still using {self.settings.backend}: {self.backend.model}"

    def set_system(self, text: str) -> None:
        self.engine.conversation.set_system(text)

    def reset(self) -> None:
        """A new conversation in a new session file (created with its first message)."""
        system = self.engine.conversation.system
        self.log.close()
        self.log = self._new_log()
        self.engine.conversation = Conversation(system)
        self.engine.conversation.start_log(self.log)

    def undo(self) -> str | None:
        """Remove the last user message and everything after it; its text, or None."""
        conversation = self.engine.conversation
        index = conversation.last_user_index()
        if index is None:
            return None
        text = conversation.messages[index]["content"]
        conversation.truncate(index)
        return text

    def retry(self) -> TurnResult | None:
        """Ask the last question again; None when there is none. A retry that does not finish
        (Ctrl-C, a signal, the backend failing) puts the earlier exchange back in its place."""
        conversation = self.engine.conversation
        index = conversation.last_user_index()
        if index is None:
            return None
        earlier = conversation.messages[index:]
        conversation.truncate(index)
        result = self.turn(earlier[0]["content"])
        if result.stopped in (Stopped.INTERRUPTED, Stopped.ERROR):
            conversation.truncate(index)
            for message in earlier:
                conversation.append(message)
            self.console.print(plain("the retry did not finish; the earlier answer is kept", "yellow"))
        return result

    def save(self, name: str, overwrite: bool = False) -> Path:
        """Save to `name` (relative to the working folder); with no name, to this project's folder in
        the data dir, never into the user's repository."""
        if name:
            path = Path(name).expanduser()
            path = path if path.is_absolute() else self.env.cwd / path
        else:  # the session's own save: saving again brings it up to date
            path, overwrite = private_folder(self.folder / "saved") / f"toolchat-{self.log.id}.md", True
        if path.exists() and not overwrite:
            raise UsageError(f"{path} exists", f"to replace it: /save! {name or path.name}")
        messages = self.engine.messages
        text = json.dumps(messages, indent=2, ensure_ascii=False) if path.suffix == ".json" else to_markdown(messages)
        try:
            if name:
                path.write_text(self.redactor.redact(text), encoding="utf-8")
            else:
                with os.fdopen(open_private(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC), "w", encoding="utf-8") as out:
                    out.write(self.redactor.redact(text))
        except OSError as exc:
            raise UsageError(f"cannot save to {path}: {exc.strerror or exc}") from exc
        return path

    def close(self) -> None:
        self.log.close()
        self.backend.close()
        self.all_tools.close()

    def toolbar(self, extra: str = "") -> str:
        """The bottom toolbar, within the terminal's width: the key hints give way first, then the
        end of the line is cut with an ellipsis. `extra` (each MCP server's state) comes before the hints."""
        policy = self.engine.policy
        mode = "approve all" if policy.approve_all else "ask"
        allowed = sorted(policy.allow)
        if allowed and not policy.approve_all:
            mode += f" (allowed: {', '.join(allowed)})"
        facts = f" {self.settings.profile or 'default'} · {self.settings.backend} · {self.backend.model}"
        facts += f" · {self.engine.compaction.shown()} · approval: {mode}{extra}"
        return fit(clean(facts), (" · Esc Enter: new line", " · /help"), shutil.get_terminal_size().columns)


def fit(line: str, hints: tuple[str, ...], width: int) -> str:
    """`line` and as many of `hints` as fit in `width` columns, the first hint giving way first;
    a line longer alone is cut after its last whole word that fits, and ends in "…"."""
    for first in range(len(hints) + 1):
        whole = line + "".join(hints[first:])
        if cell_len(whole) < width:  # screen columns (時 takes two); the last left empty: a full row wraps
            return whole
    cut = _in_columns(line, max(1, width - 2))
    inside_a_word = len(line) > len(cut) and line[len(cut)] != " " and not cut.endswith(" ")
    if inside_a_word and " " in cut.strip():  # never "docs faile"
        cut = cut[: cut.rindex(" ")]
    return cut.rstrip(" ·") + "…"


def _in_columns(text: str, columns: int) -> str:
    """The longest start of `text` that takes at most `columns` screen columns (at least one character)."""
    used = 0
    for index, character in enumerate(text):
        used += cell_len(character)
        if used > columns:
            return text[: max(1, index)]
    return text


def _both_local(before: Settings, after: Settings) -> bool:
    return before.backend == "local" and after.backend == "local"
