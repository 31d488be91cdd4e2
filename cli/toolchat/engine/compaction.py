"""The one compaction policy, for every backend: keep the conversation inside the context window.

Before each model call the conversation is counted (engine/context.py); past the threshold
(85 % of the window by default, `compact_at` in the config, `off` for never) it is compacted in
stages, each said once in one line and written to the session log as an operation:
1. the reasoning of earlier turns goes;
2. the oldest tool outputs are replaced by a short note (the call and its answer stay, so every
   call keeps its answer and the ids still match), never the latest round's;
3. the turns before the current question are summarized by the model into one message.
Never touched: the system prompt, the current question, the current turn's latest calls and answers.
A refusal for overflow teaches the window and compacts once more; when even that cannot fit, a
ContextOverflow says how many tokens, the window and what to do."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from toolchat.backends.base import Backend, Reply, Usage
from toolchat.conversation import Conversation
from toolchat.engine.context import Meter, size_of
from toolchat.engine.events import Compacted, ContextNote, Event
from toolchat.engine.summary import SUMMARY_MARK, summarize

DEFAULT_THRESHOLD = 85
TARGET = 0.6  # compacting aims at this share of the window, so it does not run every round
NOTE = (
    "[output compacted to fit the context window: {chars:,} characters of {name}'s output were here;"
    " call it again if they are needed]"
)
NOTE_START = "[output compacted to fit the context window"
SHORT = 400  # tool outputs this short are kept: a note saves nothing


def compacted(message: dict[str, Any]) -> bool:
    """Whether compaction wrote this message (a summary, or a tool output replaced by a note)."""
    content = message.get("content")
    return isinstance(content, str) and (content.startswith(NOTE_START) or content.startswith(SUMMARY_MARK))


class Compaction:
    """The window, the count and the stages for one engine's conversation."""

    def __init__(self, backend: Backend, emit: Callable[[Event], None]) -> None:
        self.backend, self.emit = backend, emit
        self.meter = Meter()
        self.configured: int | None = None  # context_window from the config
        self.learned: int | None = None  # from a refusal or a server that cut the conversation
        self.threshold: int | None = DEFAULT_THRESHOLD  # None: never automatically
        self.reserve: int | None = None  # max_tokens: room kept for the answer
        self.seen: int | None = None  # the backend's window, once asked
        self.protected = 0  # messages before this index are never compacted (a serve client's own)

    def configure(self, window: int | None, threshold: int | None, reserve: int | None, backend: Backend) -> None:
        if backend is not self.backend:
            self.backend, self.learned = backend, None
            self.meter.forget()
        self.configured, self.threshold, self.reserve = window, threshold, reserve

    @property
    def window(self) -> int | None:
        """The context window in tokens: learned, else configured, else what the backend knows
        (a remote one asks its server, once); None: unknown."""
        if self.learned is not None:
            return self.learned
        if self.configured is not None:
            return self.configured
        self.seen = getattr(self.backend, "context_window", None)
        return self.seen

    def shown(self) -> str:
        """Context used / window for the toolbar and /stats, never asking a server (it may be slow)."""
        window = self.learned or self.configured or self.seen
        used = f"{self.meter.used:,}" if self.meter.used else "0"
        return f"context {used}/{window:,}" if window else f"context {used}/unknown"

    def room(self, window: int) -> int:
        """The prompt tokens that fit, leaving room for the answer."""
        return window - min(self.reserve or window // 10, window // 2)

    # -- the engine's hooks ------------------------------------------------------------------------
    def before_call(self, conversation: Conversation, tools: list[dict[str, Any]]) -> None:
        """Compact when the request about to be sent is past the threshold (or would not fit)."""
        count = self.meter.estimate(conversation.messages, tools)
        window = self.window if self.threshold is not None else None
        if window is None:
            return
        limit = min(window * self.threshold // 100, self.room(window)) if self.threshold else self.room(window)
        if count > limit:
            self.compact(conversation, tools, summarize_past=limit)

    def after_round(self, reply: Reply, conversation: Conversation, tools: list[dict[str, Any]]) -> None:
        """Learn from the usage; a count pinned while messages grew, or at the window, is said once."""
        usage = reply.usage
        pinned = self.meter.observe(usage, size_of(conversation.messages, tools))
        window = self.window
        full = usage is not None and window is not None and (usage.prompt_tokens or 0) >= window
        if (pinned or full) and usage is not None and usage.prompt_tokens is not None:
            self.learned = min(usage.prompt_tokens, window or usage.prompt_tokens)
            self.emit(
                ContextNote(
                    f"the server counted {usage.prompt_tokens:,} prompt tokens although the conversation grew: it "
                    "cut the conversation to fit its context window (Ollama does so past num_ctx), so the answer "
                    f"may miss part of it; toolchat now keeps it within {self.learned:,} tokens (set context_window, "
                    "or raise the server's num_ctx, and ask again)"
                )
            )

    def after_overflow(
        self, window: int | None, prompt: int | None, conversation: Conversation, tools: list[dict[str, Any]]
    ) -> bool:
        """A refusal for overflow: learn the window (or shrink the one believed), compact; False
        when nothing could be compacted (the caller says it cannot fit)."""
        before = self.meter.estimate(conversation.messages, tools)
        if prompt is not None and prompt > before:
            self.meter.observe(Usage(prompt_tokens=prompt), size_of(conversation.messages, tools))
        known = self.window
        self.learned = window or (min(known, prompt) if known and prompt else None) or known or int(before * 0.9)
        self.meter.estimate(conversation.messages, tools)
        return bool(self.compact(conversation, tools, summarize_past=0))

    # -- the stages --------------------------------------------------------------------------------
    def compact(
        self, conversation: Conversation, tools: list[dict[str, Any]], keep: str | None = None, summarize_past: int = 0
    ) -> list[Compacted]:
        """Run the stages until the count is under the target; the summary only while still past
        `summarize_past` tokens (0: whenever there are earlier turns, as `/compact` asks). The
        stages done, each also emitted."""
        window = self.window or self.meter.estimate(conversation.messages, tools)
        target = int(window * TARGET)
        done: list[Compacted] = []
        for stage, name in ((self._reasoning, "reasoning"), (self._outputs, "outputs")):
            before = self.meter.estimate(conversation.messages, tools)
            if before <= target and keep is None:
                break
            line = stage(conversation, tools, target)
            if line:
                done.append(self._said(Compacted(name, line, before, 0, window), conversation, tools))
        count = self.meter.estimate(conversation.messages, tools)
        if keep is not None or count > summarize_past:
            started = time.monotonic()
            line, usage = self._summary(conversation, keep, window, between_turns=keep is not None)
            if line:
                event = Compacted("summary", line, count, 0, window, time.monotonic() - started, usage)
                done.append(self._said(event, conversation, tools))
        return done

    def _said(self, event: Compacted, conversation: Conversation, tools: list[dict[str, Any]]) -> Compacted:
        event.after = self.meter.estimate(conversation.messages, tools)
        event.line += f" (context {event.before:,} -> {event.after:,} of {event.window:,} tokens)"
        self.emit(event)
        return event

    def _reasoning(self, conversation: Conversation, tools: list[dict[str, Any]], target: int) -> str:
        current = conversation.last_user_index() or len(conversation)
        turns = 0
        for index, message in enumerate(conversation.messages[:current]):
            if index >= self.protected and message.get("role") == "assistant" and "reasoning" in message:
                conversation.replace(index, {k: v for k, v in message.items() if k != "reasoning"})
                turns += 1
        return f"compacted: the reasoning of {turns} earlier model replies left out" if turns else ""

    def _outputs(self, conversation: Conversation, tools: list[dict[str, Any]], target: int) -> str:
        messages = conversation.messages
        latest = max((i for i, m in enumerate(messages) if m.get("role") == "assistant"), default=len(messages))
        names = _call_names(messages)
        replaced = 0
        for index in range(self.protected, latest):
            message = messages[index]
            content = message.get("content")
            if message.get("role") != "tool" or not isinstance(content, str) or len(content) <= SHORT:
                continue
            if content.startswith(NOTE_START):
                continue
            name = names.get(str(message.get("tool_call_id")), "the tool")
            conversation.replace(index, {**message, "content": NOTE.format(chars=len(content), name=name)})
            replaced += 1
            if self.meter.estimate(conversation.messages, tools) <= target:
                break
        return (
            f"compacted: {replaced} older tool output{'s' if replaced != 1 else ''} replaced by a note"
            if replaced
            else ""
        )

    def _summary(
        self, conversation: Conversation, keep: str | None, window: int, between_turns: bool
    ) -> tuple[str, Usage | None]:
        """The turns before the current question summarized; between turns (`/compact`), all of them."""
        messages = conversation.messages
        first = 1 if conversation.system is not None else 0
        current = len(messages) if between_turns else conversation.last_user_index()
        if current is None or current - first < 1 or self.protected:
            return "", None
        text, usage = summarize(self.backend, messages[first:current], keep, window)
        conversation.splice(first, current, {"role": "user", "content": SUMMARY_MARK + text})
        count = current - first
        return f"compacted: {count} earlier message{'s' if count != 1 else ''} summarized by the model into one", usage


def _call_names(messages: list[dict[str, Any]]) -> dict[str, str]:
    return {
        str(part.get("id")): str((part.get("function") or {}).get("name") or "the tool")
        for message in messages
        for part in message.get("tool_calls") or []
        if isinstance(part, dict)
    }
