"""What the engine reports and decides: the events a sink receives, the records of calls and turns, the
approval policy, and the usage sums over rounds."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Union

from toolchat.backends.base import ReasoningDelta, Request, TextDelta, ToolCall, Usage, summed
from toolchat.tools import Tool, ToolStatus
from toolchat.tools.registry import matches


@dataclass
class Decision:
    approved: bool
    reason: str | None = None  # why it was denied, for the model
    always: bool = False  # approve this tool for the rest of the session
    arguments: dict[str, Any] | None = None  # edited arguments, validated again before running


@dataclass
class PendingCall:
    call: ToolCall
    tool: Tool
    arguments: dict[str, Any]


Approver = Callable[[PendingCall], Decision]


def decision_help(scope: str, edit: str, interrupt: str) -> str:
    """What each answer key of an approval question does, for its `?`: the same five keys wherever
    toolchat asks, `scope` saying how long `a` lasts, `edit` how arguments are typed, `interrupt`
    what Ctrl-C stops."""
    return (
        "y  run it\n"
        "n  don't run it; you may give a reason, which the model sees\n"
        f"a  run it, and run this tool without asking for the rest of the {scope}\n"
        f"e  edit the arguments ({edit}), then run\n"
        "?  this help\n"
        f"Ctrl-C {interrupt}"
    )


@dataclass
class CallRecord:
    id: str
    name: str
    arguments: dict[str, Any] | str
    status: ToolStatus
    output: str
    duration: float = 0.0
    edited: bool = False  # the user edited the arguments before it ran
    source: str = ""  # where the tool comes from: "bundled", "plugins/x.py", "mcp time"

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "arguments": self.arguments,
            "status": self.status.value,
            "output": self.output,
            "source": self.source,
            **({"edited": True} if self.edited else {}),
        }


# Events for the sink
@dataclass
class CallRequested:
    call: ToolCall
    arguments: dict[str, Any] | None
    place: tuple[int, int] = (1, 1)  # the call's place in its reply: (n, of how many)


@dataclass
class CallDecided:
    call: ToolCall
    decision: Decision
    automatic: bool  # allowed by policy, not asked


@dataclass
class CallStarted:
    """An approved call begins to run (with the arguments it runs with); `together`: how many calls
    of its reply run at once with it (1: it runs alone, as with `tools.parallel: 1`)."""

    call: ToolCall
    arguments: dict[str, Any]
    together: int = 1


@dataclass
class CallsRunning:
    """Calls of one reply are still running together (said every quarter second while they do)."""

    running: int


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
    interrupted: bool = False  # cut short by Ctrl-C: `usage` is what the backend counted (local: always)


@dataclass
class Compacted:
    """One stage of compaction done (said once, in one line): `stage` is "reasoning", "outputs" or
    "summary"; `before` and `after` the estimated prompt tokens; a summary's own call in `usage`."""

    stage: str
    line: str
    before: int
    after: int
    window: int
    seconds: float = 0.0
    usage: Usage | None = None


@dataclass
class ContextNote:
    """Something about the context window the user should know (a server that cut the conversation)."""

    text: str


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


Event = Union[
    TextDelta,
    ReasoningDelta,
    TurnStarted,
    RoundStarted,
    CallRequested,
    CallDecided,
    CallStarted,
    CallsRunning,
    CallFinished,
    RoundDone,
    TurnError,
    TurnEnded,
    Compacted,
    ContextNote,
]


@dataclass
class Policy:
    approve_all: bool = False
    allow: set[str] = field(default_factory=set)

    def allows(self, name: str) -> bool:
        return self.approve_all or matches(name, self.allow)  # `git__*` allows every tool of server git


class Stopped(str, Enum):
    """How a turn ended."""

    ANSWER = "answer"
    MAX_TOKENS = "max_tokens"  # an answer, cut at the token limit
    MAX_ROUNDS = "max_rounds"
    ERROR = "error"
    INTERRUPTED = "interrupted"

    # compare, hash and print as the plain string, so "answer" == Stopped.ANSWER works as a key too
    __hash__ = str.__hash__

    def __str__(self) -> str:
        return self.value


@dataclass
class TurnResult:
    answer: str
    stopped: Stopped
    calls: list[CallRecord] = field(default_factory=list)
    rounds: list[Usage] = field(default_factory=list)
    error: str | None = None
    signal: int | None = None  # interrupted by this signal (TERM, HUP, QUIT) rather than Ctrl-C


def total_usage(rounds: Iterable[Usage]) -> dict[str, Any]:
    """The turn's counts for --json: null where a round's server reported none (never 0)."""
    rounds = list(rounds)
    total = summed(rounds)
    return {**total.as_dict(), "reasoning_tokens": total.reasoning_tokens, "rounds": [r.as_dict() for r in rounds]}


def reasoning_tokens(rounds: Iterable[Usage]) -> int | None:
    """The reasoning tokens of these rounds, None when no server said (unknown is not zero)."""
    return summed(rounds).reasoning_tokens


def arguments_text(arguments: dict[str, Any] | str) -> str:
    return arguments if isinstance(arguments, str) else json.dumps(arguments, ensure_ascii=False)
