"""The approved calls of one reply, run at once: at most `most` together, each in a thread of its own
that only runs the call (`work`), while every event is said from the engine's own thread (`start`,
`done`, `tick`), so the sinks (the terminal, tracing, serve) never see two threads.

Each call's thread runs in a copy of the context as it was just after its start was said, so what
the sinks set then (tracing's `execute_tool` span) is the call's. Ctrl-C (or a cancel point raising
KeyboardInterrupt) stops every running call through its source (`stop`, asked again until the call's
thread ends, within STOP_WAIT), and says which ran and which never started."""

from __future__ import annotations

import contextvars
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from toolchat.backends.base import ToolCall
from toolchat.engine.events import CallRecord
from toolchat.tools import Tool, ToolResult, ToolStatus

TICK = 0.25  # seconds between `tick`s while calls run: serve's cancel point, and the display's clock
STOP_WAIT = 5.0  # seconds the stopped calls get to end before their threads are left behind


@dataclass
class Ready:
    """An approved call, about to run."""

    call: ToolCall
    tool: Tool
    arguments: dict[str, Any]
    edited: bool = False


@dataclass
class Interrupted:
    """How far the batch got when it was interrupted."""

    error: KeyboardInterrupt
    stopped: dict[int, float] = field(default_factory=dict)  # index -> when it started: it was running
    unstarted: list[int] = field(default_factory=list)  # indexes that never started
    finished: dict[int, ToolResult] = field(default_factory=dict)  # index -> its outcome: it ended first


@dataclass
class Hooks:
    start: Callable[[Ready], None]  # say it starts (the engine's thread)
    work: Callable[[Ready], ToolResult]  # run it (its own thread)
    stop: Callable[[Ready, int], None]  # stop the call running on this thread (ident), from another thread
    done: Callable[[int, Ready, ToolResult, float], None]  # say it finished (the engine's thread)
    tick: Callable[[int], None]  # calls are still running (how many)


class InOrder:
    """Answers given to the model in its own order (`feed`: each once every answer before it is in)
    and said as they come (`say`), in that order: a Ctrl-C while one is said leaves the conversation whole."""

    def __init__(self, count: int, say: Callable[[Any], None], feed: Callable[[Any], None]) -> None:
        self.say, self.feed = say, feed
        self.slots: list[Any] = [None] * count
        self.fed = 0

    def put(self, index: int, record: Any) -> None:
        self.slots[index] = record
        self._feed_ready()
        self.say(record)

    def settle(self, records: dict[int, Any]) -> None:
        """The answers of an interrupted reply, for every call not answered yet: all given to the model
        first, then said; a second Ctrl-C while they are said changes nothing, each is said."""
        left = {index: record for index, record in records.items() if self.slots[index] is None}
        for index, record in left.items():
            self.slots[index] = record
        self._feed_ready()
        for index in sorted(left):
            try:
                self.say(left[index])
            except KeyboardInterrupt:
                continue

    def _feed_ready(self) -> None:
        while self.fed < len(self.slots) and self.slots[self.fed] is not None:
            self.feed(self.slots[self.fed])
            self.fed += 1


class Batch:
    def __init__(self, most: int, hooks: Hooks) -> None:
        self.most, self.hooks = max(1, most), hooks
        self._finished: queue.Queue[tuple[int, ToolResult | Exception]] = queue.Queue()
        self._threads: dict[int, int] = {}  # index -> ident, once its thread runs
        self._launched: dict[int, float] = {}  # index -> when it started
        self._outcomes: dict[int, ToolResult | Exception] = {}
        self._stopped: set[int] = set()  # indexes stopped while running

    def run(self, items: list[tuple[int, Ready]]) -> Interrupted | None:
        """Run every item (index, call); None when all finished, else what the interruption left."""
        waiting = list(items)
        ready = dict(items)
        reported: set[int] = set()
        try:
            while waiting or len(reported) < len(self._launched):
                while waiting and len(self._launched) - len(reported) < self.most:
                    self._launch(*waiting.pop(0))
                index = self._next(len(self._launched) - len(reported))
                if index is None:
                    continue
                outcome = self._outcomes[index]
                if isinstance(outcome, Exception):  # a source's own bug: stop the rest, then let it surface
                    self._stop(ready, reported | {index})
                    raise outcome
                reported.add(index)  # (a Ctrl-C while it is said: the engine answers it from `finished`)
                self.hooks.done(index, ready[index], outcome, self._launched[index])
        except KeyboardInterrupt as exc:
            return self._interrupted(exc, ready, reported, [index for index, _ in waiting])
        return None

    def _launch(self, index: int, item: Ready) -> None:
        self.hooks.start(item)
        context = contextvars.copy_context()  # what the sinks set as it started (its span) is the call's
        self._launched[index] = time.monotonic()
        threading.Thread(
            target=self._body, args=(index, item, context), name=f"toolchat-call-{index}", daemon=True
        ).start()

    def _body(self, index: int, item: Ready, context: contextvars.Context) -> None:
        self._threads[index] = threading.get_ident()
        try:
            outcome: ToolResult | Exception = context.run(self.hooks.work, item)
        except Exception as exc:  # noqa: BLE001 - carried to the engine's thread, which raises it
            outcome = exc
        self._finished.put((index, outcome))

    def _next(self, running: int) -> int | None:
        try:
            index, outcome = self._finished.get(timeout=TICK)
        except queue.Empty:
            self.hooks.tick(running)
            return None
        self._outcomes[index] = outcome
        return index

    def _interrupted(
        self, exc: KeyboardInterrupt, ready: dict[int, Ready], reported: set[int], waiting: list[int]
    ) -> Interrupted:
        self._stop(ready, reported)
        result = Interrupted(
            exc, unstarted=waiting + [i for i in ready if i not in self._launched and i not in waiting]
        )
        for index, started in self._launched.items():
            outcome = self._outcomes.get(index)
            if isinstance(outcome, ToolResult) and index not in self._stopped:  # it ended before the stop
                result.finished[index] = outcome
            else:
                result.stopped[index] = started
        return result

    def _stop(self, ready: dict[int, Ready], reported: set[int]) -> None:
        """Stop every call still running, asking again until its thread ends (a call may not yet have
        reached its source when first asked); a second Ctrl-C meanwhile changes nothing."""
        self._stopped = {i for i in self._launched if i not in reported and i not in self._outcomes}
        pending = set(self._stopped)
        deadline = time.monotonic() + STOP_WAIT
        while pending and time.monotonic() < deadline:
            try:
                for index in pending:
                    thread = self._threads.get(index)
                    if thread is not None:
                        self.hooks.stop(ready[index], thread)
                index, outcome = self._finished.get(timeout=0.1)
                self._outcomes[index] = outcome
                pending.discard(index)
            except queue.Empty:
                continue
            except KeyboardInterrupt:
                continue


def record_of(ready: Ready, outcome: ToolResult) -> CallRecord:
    call = ready.call
    return CallRecord(
        call.id, call.name, ready.arguments, outcome.status, outcome.output, outcome.duration, ready.edited
    )


def cancelled(
    call: ToolCall, text: str, seconds: float = 0.0, arguments: dict[str, Any] | str | None = None
) -> CallRecord:
    """The answer of a call the interruption stopped or kept from running."""
    shown = call.arguments if arguments is None else arguments
    return CallRecord(call.id, call.name, shown, ToolStatus.CANCELLED, text, seconds)


def signal_name(number: int) -> str:
    import signal

    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"
