"""The conversation loop: pure logic. It talks to a Backend, asks an approver, runs tools, and
reports events to a sink; it never touches the terminal.

Every call the model makes is answered with a tool message that says what happened; only a
backend failure ends a turn early.
"""

from __future__ import annotations

import inspect
import json
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from toolchat import defaults
from toolchat.backends.base import Backend, ReasoningDelta, Reply, Request, TextDelta, ToolCall, Usage
from toolchat.conversation import Conversation
from toolchat.errors import BackendError, ContextOverflow, UsageError
from toolchat.tools import Registry, Tool, ToolStatus
from toolchat.tools.sources import RunLimits
from toolchat.tools.validate import InvalidArguments, parse_arguments, validate_arguments

if TYPE_CHECKING:
    from toolchat.config.settings import Settings


from toolchat.engine.batch import Batch, Hooks, InOrder, Interrupted, Ready, cancelled, record_of, signal_name
from toolchat.engine.compaction import Compaction
from toolchat.engine.events import (
    Approver,
    CallDecided,
    CallFinished,
    CallRecord,
    CallRequested,
    CallsRunning,
    CallStarted,
    Compacted,
    Decision,
    Event,
    PendingCall,
    Policy,
    RoundDone,
    RoundStarted,
    Stopped,
    TurnEnded,
    TurnError,
    TurnResult,
    TurnStarted,
)


class Engine:
    """One conversation's loop. The conversation, the backend and every setting of a profile are
    the engine's; the REPL, `ask` and `serve` change them through `configure` and the conversation's operations."""

    def __init__(
        self,
        backend: Backend,
        registry: Registry,
        *,
        approve: Approver,
        on_event: Callable[[Event], None],
        policy: Policy,
        limits: RunLimits,  # where tools run, how long, how much output the model reads
        system: str | None = None,
        max_rounds: int = defaults.MAX_ROUNDS,
        temperature: float | None = None,
        max_tokens: int | None = None,
        conversation: Conversation | None = None,
        parallel: int = defaults.TOOL_PARALLEL,  # approved calls of one reply that run at once
    ) -> None:
        self.backend = backend
        self.parallel = parallel
        self.registry = registry
        self.approve = approve
        self.emit = on_event
        self.policy = policy
        self.limits = limits
        self.max_rounds = max_rounds
        self.temperature = temperature
        self.max_tokens = max_tokens
        self.conversation = conversation if conversation is not None else Conversation(system)
        self.compaction = Compaction(backend, on_event)  # keeps the conversation inside the window

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        backend: Backend,
        registry: Registry,
        *,
        approve: Approver,
        on_event: Callable[[Event], None],
        approve_all: bool = False,
        conversation: Conversation | None = None,
        keep_system: bool = False,
    ) -> Engine:
        """The engine `ask`, the REPL and `serve` build: every setting of the profile in force
        (`keep_system`: the conversation's own system prompt stays, as a request's does in serve)."""
        engine = cls(
            backend,
            registry.without(settings.deny),
            approve=approve,
            on_event=on_event,
            policy=Policy(approve_all, set(settings.allow)),
            limits=RunLimits(settings.project_dir),
            conversation=conversation,
        )
        engine.configure(settings, backend, keep_system=keep_system)
        return engine

    def configure(self, settings: Settings, backend: Backend | None = None, keep_system: bool = False) -> None:
        """Bring a profile's settings into force: sampling, limits, tool limits, system prompt."""
        if backend is not None:
            self.backend = backend
        self.temperature, self.max_tokens = settings.temperature, settings.max_tokens
        self.max_rounds, self.parallel = settings.max_rounds, settings.tool_parallel
        self.limits = RunLimits(
            settings.project_dir, settings.tool_timeout, settings.max_output_chars, sandbox=settings.sandbox
        )
        if settings.system and not keep_system:
            self.conversation.set_system(settings.system)
        threshold = None if settings.compact_at == "off" else int(settings.compact_at)
        self.compaction.configure(settings.context_window, threshold, settings.max_tokens, self.backend)

    def compact(self, keep: str | None = None) -> list[Compacted]:
        """Compact the conversation now (`/compact [what to keep]`): every stage, the summary too."""
        return self.compaction.compact(self.conversation, self.registry.definitions(), keep or "")

    @property
    def messages(self) -> list[dict[str, Any]]:
        return self.conversation.messages

    def check_tool_choice(self, choice: str | None) -> str | dict[str, Any] | None:
        """The request form of a --tool-choice; UsageError (before any turn starts) for a tool
        that is not offered."""
        if choice in (None, "auto", "required", "none"):
            return choice
        if self.registry.get(choice) is None:
            raise UsageError(
                f"--tool-choice names '{choice}', which is not an offered tool",
                f"tools: {', '.join(self.registry.names()) or 'none'}",
            )
        return {"type": "function", "function": {"name": choice}}

    def run_turn(self, user_text: str | None, tool_choice: str | None = None) -> TurnResult:
        """Send one user message and loop until the model answers or the round limit is hit.
        With None, continue the conversation as it stands (it ends with a user message or tool
        results: `toolchat serve`, whose requests carry the whole conversation)."""
        choice = self.check_tool_choice(tool_choice)  # before the question is recorded
        result = TurnResult(answer="", stopped=Stopped.MAX_ROUNDS)
        try:
            return self._run_turn(user_text, choice, result)
        finally:
            self.emit(TurnEnded(result))

    def _run_turn(self, user_text: str | None, choice: Any, result: TurnResult) -> TurnResult:
        if user_text is not None:
            self.conversation.append({"role": "user", "content": user_text})
        self.emit(TurnStarted(user_text or ""))
        for number in range(1, self.max_rounds + 1):
            self._partial: list[str] = []
            try:
                reply = self._call_model(number, choice, result)
            except BackendError as exc:
                result.stopped, result.error = Stopped.ERROR, str(exc)
                self.emit(TurnError(str(exc)))
                return result
            except KeyboardInterrupt as exc:  # keep what arrived, marked, and the turn ends
                result.answer, result.stopped = "".join(self._partial), Stopped.INTERRUPTED
                result.signal = getattr(exc, "signum", None)
                self.conversation.append({"role": "assistant", "content": (result.answer + " [interrupted]").strip()})
                return result
            choice = None  # tool_choice applies to the first model call of a turn only
            self.conversation.append(_assistant_message(reply))  # on disk before any call runs
            if not reply.tool_calls:
                result.answer = reply.text
                result.stopped = Stopped.MAX_TOKENS if reply.finish_reason == "length" else Stopped.ANSWER
                return result
            self._answer_calls(reply, number == self.max_rounds, result)
            if result.stopped is Stopped.INTERRUPTED:
                return result
        return result

    def _answer_calls(self, reply: Reply, last_round: bool, result: TurnResult) -> None:
        if last_round or self.parallel <= 1 or len(reply.tool_calls) < 2:
            self._answer_in_turn(reply, last_round, result)
        else:
            self._answer_together(reply.tool_calls, result)

    def _answer_in_turn(self, reply: Reply, last_round: bool, result: TurnResult) -> None:
        """Each call asked about, run and answered before the next (`tools.parallel: 1`)."""
        for index, call in enumerate(reply.tool_calls):
            self._running_since: float | None = None
            try:
                place = (index + 1, len(reply.tool_calls))
                record = self._not_run(call, place) if last_round else self._handle(call, place)
            except KeyboardInterrupt as exc:  # the tool was stopped; every call still gets its answer
                self._cancel(reply.tool_calls[index:], result, self._interrupt(exc, result))
                return
            self._answer(record, result)

    def _answer_together(self, calls: list[ToolCall], result: TurnResult) -> None:
        """Every call asked about in the model's order, then the approved ones run at once (at most
        `parallel`), each said as it finishes; the model reads the answers in its own order."""
        answers = InOrder(len(calls), self._said, lambda record: self._feed(record, result))
        ready: list[tuple[int, Ready]] = []
        for index, call in enumerate(calls):
            try:
                prepared = self._prepare(call, (index + 1, len(calls)))
            except KeyboardInterrupt as exc:  # at a question: nothing has run yet
                why = self._interrupt(exc, result)
                unasked = {
                    n: cancelled(left, "Not run: the user interrupted the turn.") for n, left in enumerate(calls)
                }
                unasked[index] = cancelled(call, f"Not run: {why} before approving this call.")
                for n, item in ready:
                    unasked[n] = cancelled(item.call, "Not run: the user interrupted the turn.", 0.0, item.arguments)
                answers.settle(unasked)
                return
            if isinstance(prepared, Ready):
                ready.append((index, prepared))
            else:
                answers.put(index, prepared)
        if ready:
            self._run_together(ready, answers, result)

    def _run_together(self, ready: list[tuple[int, Ready]], answers: InOrder, result: TurnResult) -> None:
        hooks = Hooks(
            start=lambda item: self.emit(CallStarted(item.call, item.arguments, len(ready))),
            work=lambda item: self.registry.run(item.tool, item.arguments, self.limits),
            stop=lambda item, thread: self.registry.stop(item.tool, thread),
            done=lambda index, item, outcome, _: answers.put(index, record_of(item, outcome)),
            tick=lambda running: self.emit(CallsRunning(running)),
        )
        stopped: Interrupted | None = Batch(self.parallel, hooks).run(ready)
        if stopped is None:
            return
        why, items = self._interrupt(stopped.error, result), dict(ready)
        left = {index: record_of(items[index], outcome) for index, outcome in stopped.finished.items()}
        for index, started in stopped.stopped.items():
            text, seconds = f"Cancelled: {why} and the tool was stopped.", time.monotonic() - started
            left[index] = cancelled(items[index].call, text, seconds, items[index].arguments)
        for index in stopped.unstarted:
            text = "Not run: the user interrupted the turn."
            left[index] = cancelled(items[index].call, text, 0.0, items[index].arguments)
        answers.settle(left)

    def _answer(self, record: CallRecord, result: TurnResult) -> None:
        self._feed(record, result)
        self._said(record)

    def _said(self, record: CallRecord) -> None:
        tool = self.registry.get(record.name)
        record.source = tool.origin if tool is not None else ""
        self.emit(CallFinished(record))

    def _feed(self, record: CallRecord, result: TurnResult) -> None:
        """The call's answer, to the model (and the turn's record of calls)."""
        result.calls.append(record)
        self.conversation.append({"role": "tool", "tool_call_id": record.id, "content": _tool_content(record)})

    @staticmethod
    def _interrupt(exc: KeyboardInterrupt, result: TurnResult) -> str:
        """The turn ends interrupted; why, in words for the model."""
        result.stopped, result.signal = Stopped.INTERRUPTED, getattr(exc, "signum", None)
        return (
            "the user pressed Ctrl-C" if not result.signal else f"toolchat was stopped ({signal_name(result.signal)})"
        )

    def _cancel(self, calls: list[ToolCall], result: TurnResult, why: str) -> None:
        started = self._running_since
        for n, call in enumerate(calls):
            if n == 0 and started is not None:
                output, duration = f"Cancelled: {why} and the tool was stopped.", time.monotonic() - started
            elif n == 0:
                output, duration = f"Not run: {why} before approving this call.", 0.0
            else:
                output, duration = "Not run: the user interrupted the turn.", 0.0
            self._answer(cancelled(call, output, duration), result)

    def _call_model(self, number: int, choice: Any, result: TurnResult) -> Reply:
        started = time.monotonic()
        self.registry.refresh()  # a source's tools may have changed (an MCP server's list_changed)
        tools = self.registry.definitions()
        self.compaction.before_call(self.conversation, tools)
        request = Request(self.messages, tools, choice, self.temperature, self.max_tokens)
        self.emit(RoundStarted(number, request))
        try:
            try:
                reply = self._stream(request)
            except ContextOverflow as exc:  # the first refusal teaches the window, compacts, and retries once
                if not self.compaction.after_overflow(exc.window, exc.prompt_tokens, self.conversation, tools):
                    raise
                request = Request(self.messages, tools, choice, self.temperature, self.max_tokens)
                reply = self._stream(request)
        except KeyboardInterrupt as exc:  # a round cut short counts, with what the backend could count
            usage = getattr(exc, "usage", None) or Usage()
            result.rounds.append(usage)
            self.emit(RoundDone(number, usage, time.monotonic() - started, interrupted=True))
            raise
        self.compaction.after_round(reply, self.conversation, tools)
        usage = reply.usage or Usage()
        result.rounds.append(usage)
        self.emit(RoundDone(number, usage, time.monotonic() - started, reply.finish_reason))
        return reply

    def _stream(self, request: Request) -> Reply:
        reply: Reply | None = None
        events = self.backend.complete(request)
        try:
            for event in events:
                if isinstance(event, TextDelta):
                    self._partial.append(event.text)
                    self.emit(event)
                elif isinstance(event, ReasoningDelta):
                    self.emit(event)
                else:
                    reply = event
        except KeyboardInterrupt as exc:  # Ctrl-C while showing a piece: the backend counts what it made
            if inspect.isgenerator(events) and inspect.getgeneratorstate(events) == inspect.GEN_SUSPENDED:
                events.throw(exc)
            raise
        if reply is None:
            raise BackendError("the backend ended without a reply")
        return reply

    def _handle(self, call: ToolCall, place: tuple[int, int]) -> CallRecord:
        prepared = self._prepare(call, place)
        return self._run(prepared) if isinstance(prepared, Ready) else prepared

    def _run(self, ready: Ready) -> CallRecord:
        self._running_since = time.monotonic()
        self.emit(CallStarted(ready.call, ready.arguments))
        return record_of(ready, self.registry.run(ready.tool, ready.arguments, self.limits))

    def _prepare(self, call: ToolCall, place: tuple[int, int]) -> CallRecord | Ready:
        """The call asked about: a Ready to run, or the answer it gets without running."""
        tool = self.registry.get(call.name)
        if tool is None:
            self.emit(CallRequested(call, None, place))
            names = ", ".join(self.registry.names()) or "none"
            return CallRecord(
                call.id,
                call.name,
                call.arguments,
                ToolStatus.UNKNOWN,
                f"Error: there is no tool named '{call.name}'. Available tools: {names}.",
            )
        try:
            arguments = parse_arguments(call.arguments)
            validate_arguments(tool, arguments)
        except InvalidArguments as exc:
            self.emit(CallRequested(call, None, place))
            return CallRecord(
                call.id,
                call.name,
                call.arguments,
                ToolStatus.INVALID,
                f"Error: invalid arguments for {call.name}: {exc}. Call it again with arguments that match its schema.",
            )
        self.emit(CallRequested(call, arguments, place))
        return self._decide(call, tool, arguments)

    def _decide(self, call: ToolCall, tool: Tool, arguments: dict[str, Any]) -> CallRecord | Ready:
        automatic = self.policy.allows(tool.name)
        decision = Decision(True) if automatic else self.approve(PendingCall(call, tool, arguments))
        self.emit(CallDecided(call, decision, automatic))
        if not decision.approved:
            reason = f" Their reason: {decision.reason}" if decision.reason else ""
            return CallRecord(
                call.id,
                call.name,
                arguments,
                ToolStatus.DENIED,
                f"The user denied this call; it was not run.{reason}",
            )
        if decision.always:
            self.policy.allow.add(tool.name)
        edited = False
        if decision.arguments is not None and decision.arguments != arguments:
            try:
                validate_arguments(tool, decision.arguments)
            except InvalidArguments as exc:
                return CallRecord(
                    call.id,
                    call.name,
                    decision.arguments,
                    ToolStatus.INVALID,
                    f"Error: the edited arguments are invalid: {exc}",
                )
            arguments = decision.arguments
            self._record_edit(call, arguments)
            edited = True
        return Ready(call, tool, arguments, edited)

    def _record_edit(self, call: ToolCall, arguments: dict[str, Any]) -> None:
        """The history shows the call that ran: the assistant message gets the edited arguments."""
        messages = self.messages
        for index in range(len(messages) - 1, -1, -1):
            parts = messages[index].get("tool_calls") or []
            if any(part.get("id") == call.id for part in parts):
                edited = [
                    {**part, "function": {**part["function"], "arguments": json.dumps(arguments, ensure_ascii=False)}}
                    if part.get("id") == call.id
                    else part
                    for part in parts
                ]
                self.conversation.replace(index, {**messages[index], "tool_calls": edited})
                return

    def _not_run(self, call: ToolCall, place: tuple[int, int]) -> CallRecord:
        self.emit(CallRequested(call, None, place))
        return CallRecord(
            call.id,
            call.name,
            call.arguments,
            ToolStatus.DENIED,
            f"Not run: this turn reached its limit of {self.max_rounds} model calls.",
        )


def _assistant_message(reply: Reply) -> dict[str, Any]:
    # content is "" rather than null beside calls: llama-cpp-python's server rejects null
    message: dict[str, Any] = {"role": "assistant", "content": reply.text}
    if reply.tool_calls:
        message["tool_calls"] = [call.message_part() for call in reply.tool_calls]
    if reply.reasoning is not None:
        message["reasoning"] = reply.reasoning.as_entry()  # each backend sends it back its own way
    return message


EDITED_NOTE = "(The user edited the arguments before running this call; the call above shows what ran.)\n"


def _tool_content(record: CallRecord) -> str:
    output = record.output
    if record.status is ToolStatus.OK and not output:
        output = "(the tool returned nothing)"
    return EDITED_NOTE + output if record.edited else output
