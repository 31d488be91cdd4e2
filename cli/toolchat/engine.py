"""The conversation loop: pure logic. It talks to a Backend, asks an approver, runs tools, and
reports events to a sink; it never touches the terminal.

Every call the model makes is answered with a tool message that says what happened; only a
backend failure ends a turn early.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Union

from toolchat.backends.base import Backend, Reply, Request, TextDelta, ToolCall, Usage
from toolchat.errors import BackendError, UsageError
from toolchat.tools import Registry, Tool, ToolResult, ToolStatus
from toolchat.tools.registry import matches
from toolchat.tools.sources import RunLimits
from toolchat.tools.validate import InvalidArguments, parse_arguments, validate_arguments


@dataclass
class Decision:
    approved: bool
    reason: str | None = None  # why it was declined, for the model
    always: bool = False  # approve this tool for the rest of the session
    arguments: dict[str, Any] | None = None  # edited arguments, validated again before running


@dataclass
class PendingCall:
    call: ToolCall
    tool: Tool
    arguments: dict[str, Any]


Approver = Callable[[PendingCall], Decision]


@dataclass
class CallRecord:
    id: str
    name: str
    arguments: dict[str, Any] | str
    status: ToolStatus
    output: str
    duration: float = 0.0
    source: str = ""  # where the tool comes from: "bundled", "plugins/x.py", "mcp time"

    def as_dict(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "arguments": self.arguments,
                "status": self.status.value, "output": self.output, "source": self.source}


# Events for the sink
@dataclass
class CallRequested:
    call: ToolCall
    arguments: dict[str, Any] | None


@dataclass
class CallDecided:
    call: ToolCall
    decision: Decision
    automatic: bool  # allowed by policy, not asked


@dataclass
class CallFinished:
    record: CallRecord


@dataclass
class RoundStarted:
    """A model call begins; `request` is exactly what the backend is given."""

    number: int
    request: Request


@dataclass
class RoundDone:
    number: int
    usage: Usage
    seconds: float
    finish_reason: str | None = None


@dataclass
class TurnStarted:
    text: str


@dataclass
class TurnError:
    message: str


@dataclass
class TurnEnded:
    """The last event of every turn, however it ended."""

    result: TurnResult


Event = Union[TextDelta, TurnStarted, RoundStarted, CallRequested, CallDecided, CallFinished, RoundDone, TurnError,
              TurnEnded]


@dataclass
class Policy:
    approve_all: bool = False
    allow: set[str] = field(default_factory=set)

    def allows(self, name: str) -> bool:
        return self.approve_all or matches(name, self.allow)  # `git__*` allows every tool of server git


@dataclass
class ToolOptions:
    cwd: Path
    timeout: float = 60.0
    max_output_chars: int = 20_000


@dataclass
class TurnResult:
    answer: str
    stopped: str  # "answer" | "max_rounds" | "error" | "interrupted"
    calls: list[CallRecord] = field(default_factory=list)
    rounds: list[Usage] = field(default_factory=list)
    error: str | None = None


class Engine:
    def __init__(self, backend: Backend, registry: Registry, *, approve: Approver,
                 on_event: Callable[[Event], None], policy: Policy, tool_options: ToolOptions,
                 system: str | None = None, max_rounds: int = 10, temperature: float | None = None,
                 max_tokens: int | None = None) -> None:
        self.backend = backend
        self.registry = registry
        self.approve = approve
        self.emit = on_event
        self.policy = policy
        self.tool_options = tool_options
        self.max_rounds = max_rounds
        self.temperature = temperature
        self.max_tokens = max_tokens
        self.messages: list[dict[str, Any]] = [{"role": "system", "content": system}] if system else []

    def run_turn(self, user_text: str | None, tool_choice: str | None = None) -> TurnResult:
        """Send one user message and loop until the model answers or the round limit is hit.
        With None, continue the conversation as it stands (it ends with a user message or tool
        results: `toolchat serve`, whose requests carry the whole conversation)."""
        result = TurnResult(answer="", stopped="max_rounds")
        try:
            return self._run_turn(user_text, tool_choice, result)
        finally:
            self.emit(TurnEnded(result))

    def _run_turn(self, user_text: str | None, tool_choice: str | None, result: TurnResult) -> TurnResult:
        if user_text is not None:
            self.messages.append({"role": "user", "content": user_text})
        self.emit(TurnStarted(user_text or ""))
        choice = self._tool_choice(tool_choice)
        for number in range(1, self.max_rounds + 1):
            self._partial: list[str] = []
            try:
                reply = self._call_model(number, choice, result)
            except BackendError as exc:
                result.stopped, result.error = "error", str(exc)
                self.emit(TurnError(str(exc)))
                return result
            except KeyboardInterrupt:  # keep what arrived, marked, and the turn ends
                result.answer, result.stopped = "".join(self._partial), "interrupted"
                self.messages.append({"role": "assistant", "content": (result.answer + " [interrupted]").strip()})
                return result
            choice = None  # tool_choice applies to the first model call of a turn only
            self.messages.append(_assistant_message(reply))
            if not reply.tool_calls:
                result.answer, result.stopped = reply.text, "answer"
                return result
            last_round = number == self.max_rounds
            for index, call in enumerate(reply.tool_calls):
                try:
                    record = self._not_run(call) if last_round else self._handle(call)
                except KeyboardInterrupt:  # the tool was stopped; every call still gets its answer
                    self._cancel(reply.tool_calls[index:], result)
                    result.stopped = "interrupted"
                    return result
                self._answer(record, result)
        return result

    def _answer(self, record: CallRecord, result: TurnResult) -> None:
        tool = self.registry.get(record.name)
        record.source = tool.origin if tool is not None else ""
        result.calls.append(record)
        self.messages.append({"role": "tool", "tool_call_id": record.id, "content": _tool_content(record)})
        self.emit(CallFinished(record))

    def _cancel(self, calls: list[ToolCall], result: TurnResult) -> None:
        for n, call in enumerate(calls):
            output = ("Cancelled: the user pressed Ctrl-C and the tool was stopped." if n == 0
                      else "Not run: the user interrupted the turn.")
            self._answer(CallRecord(call.id, call.name, call.arguments, ToolStatus.CANCELLED, output), result)

    def _tool_choice(self, choice: str | None) -> str | dict[str, Any] | None:
        if choice in (None, "auto", "required", "none"):
            return choice
        if self.registry.get(choice) is None:
            raise UsageError(f"--tool-choice names '{choice}', which is not an offered tool",
                             f"tools: {', '.join(self.registry.names()) or 'none'}")
        return {"type": "function", "function": {"name": choice}}

    def _call_model(self, number: int, choice: Any, result: TurnResult) -> Reply:
        started = time.monotonic()
        self.registry.refresh()  # a source's tools may change between model calls (MCP list_changed)
        request = Request(self.messages, self.registry.definitions(), choice, self.temperature, self.max_tokens)
        self.emit(RoundStarted(number, request))
        reply: Reply | None = None
        for event in self.backend.complete(request):
            if isinstance(event, TextDelta):
                self._partial.append(event.text)
                self.emit(event)
            else:
                reply = event
        if reply is None:
            raise BackendError("the backend ended without a reply")
        usage = reply.usage or Usage()
        result.rounds.append(usage)
        self.emit(RoundDone(number, usage, time.monotonic() - started, reply.finish_reason))
        return reply

    def _handle(self, call: ToolCall) -> CallRecord:
        tool = self.registry.get(call.name)
        if tool is None:
            self.emit(CallRequested(call, None))
            names = ", ".join(self.registry.names()) or "none"
            return CallRecord(call.id, call.name, call.arguments, ToolStatus.UNKNOWN,
                              f"Error: there is no tool named '{call.name}'. Available tools: {names}.")
        try:
            arguments = parse_arguments(call.arguments)
            validate_arguments(tool, arguments)
        except InvalidArguments as exc:
            self.emit(CallRequested(call, None))
            return CallRecord(call.id, call.name, call.arguments, ToolStatus.INVALID,
                              f"Error: invalid arguments for {call.name}: {exc}. "
                              "Call it again with arguments that match its schema.")
        self.emit(CallRequested(call, arguments))
        return self._decide_and_run(call, tool, arguments)

    def _decide_and_run(self, call: ToolCall, tool: Tool, arguments: dict[str, Any]) -> CallRecord:
        automatic = self.policy.allows(tool.name)
        decision = Decision(True) if automatic else self.approve(PendingCall(call, tool, arguments))
        self.emit(CallDecided(call, decision, automatic))
        if not decision.approved:
            reason = f" Their reason: {decision.reason}" if decision.reason else ""
            return CallRecord(call.id, call.name, arguments, ToolStatus.DENIED,
                              f"The user declined this call; it was not run.{reason}")
        if decision.always:
            self.policy.allow.add(tool.name)
        if decision.arguments is not None:
            try:
                validate_arguments(tool, decision.arguments)
            except InvalidArguments as exc:
                return CallRecord(call.id, call.name, decision.arguments, ToolStatus.INVALID,
                                  f"Error: the edited arguments are invalid: {exc}")
            arguments = decision.arguments
        options = self.tool_options
        outcome: ToolResult = self.registry.run(tool, arguments,
                                                RunLimits(options.cwd, options.timeout, options.max_output_chars))
        return CallRecord(call.id, call.name, arguments, outcome.status, outcome.output, outcome.duration)

    def _not_run(self, call: ToolCall) -> CallRecord:
        self.emit(CallRequested(call, None))
        return CallRecord(call.id, call.name, call.arguments, ToolStatus.DENIED,
                          f"Not run: this turn reached its limit of {self.max_rounds} model calls.")


def _assistant_message(reply: Reply) -> dict[str, Any]:
    # content is "" rather than null beside calls: llama-cpp-python's server rejects null
    message: dict[str, Any] = {"role": "assistant", "content": reply.text}
    if reply.tool_calls:
        message["tool_calls"] = [call.message_part() for call in reply.tool_calls]
    return message


def _tool_content(record: CallRecord) -> str:
    if record.status is ToolStatus.OK:
        return record.output if record.output else "(the tool returned nothing)"
    return record.output


def total_usage(rounds: Iterable[Usage]) -> dict[str, Any]:
    rounds = list(rounds)
    return {
        "prompt_tokens": sum(r.prompt_tokens for r in rounds),
        "completion_tokens": sum(r.completion_tokens for r in rounds),
        "cached_tokens": sum(r.cached_tokens for r in rounds),
        "rounds": [r.as_dict() for r in rounds],
    }


def arguments_text(arguments: dict[str, Any] | str) -> str:
    return arguments if isinstance(arguments, str) else json.dumps(arguments, ensure_ascii=False)
