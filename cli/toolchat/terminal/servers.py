"""MCP servers while the REPL runs: as each server becomes ready its tools join the REPL's tools
(the toolbar, `/tools`, `/allow NAME`, Tab completion see them before any turn); one that fails is
said when it fails, on one line above the prompt, never inside the line being typed."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from toolchat.mcp.wiring import source_of, sync
from toolchat.safety import one_line


class ServerWatch:
    """Keeps a REPL's registry in step with its MCP servers. Everything that lists tools runs on the
    main thread: the MCP thread only says that something changed."""

    def __init__(self, registry: Any, session: Any, notify: Callable[[str], None]) -> None:
        self.registry, self.session, self.notify = registry, session, notify
        source = source_of(registry)
        if source is not None:
            source.on_change = self._changed

    def catch_up(self) -> list[str]:
        """Between prompts (no input line to keep): take in what changed; the lines saying what failed."""
        return sync(self.registry)

    def say(self, lines: list[str]) -> None:
        for line in lines:  # one line each (it may wrap), whatever a server's error says
            self.notify(one_line(line))

    def _changed(self) -> None:
        """On the MCP thread: have the prompt's event loop catch up, if a prompt is up; if none is,
        the REPL catches up before the next one (or the turn that waits says what failed)."""
        app = self.session.app
        loop, context = app.loop, app.context
        if not app.is_running or loop is None or context is None:
            return
        try:  # in the prompt's own context, so run_in_terminal finds the prompt to step around
            loop.call_soon_threadsafe(self._at_prompt, context=context.copy())
        except RuntimeError:  # that prompt's loop has just closed: caught up before the next
            pass

    def _at_prompt(self) -> None:
        from prompt_toolkit.application import run_in_terminal

        app = self.session.app
        lines = sync(self.registry)
        if lines and app.is_running:  # the input line is hidden, the lines printed, the line drawn again
            run_in_terminal(lambda: self.say(lines))
        else:
            self.say(lines)
        app.invalidate()  # the toolbar's counts
