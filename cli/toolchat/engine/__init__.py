"""The engine: one conversation's loop (`loop`), the approved calls of one reply run at once (`batch`),
and what it reports and decides (`events`).

Pure logic: it talks to a Backend, asks an approver, runs tools and reports events to a sink; it never
touches the terminal.
"""

from toolchat.backends.base import ReasoningDelta, TextDelta
from toolchat.engine.events import (
    Approver,
    CallDecided,
    CallFinished,
    CallRecord,
    CallRequested,
    CallsRunning,
    CallStarted,
    Compacted,
    ContextNote,
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
    arguments_text,
    decision_help,
    reasoning_tokens,
    total_usage,
)
from toolchat.engine.loop import EDITED_NOTE, Engine

__all__ = [
    "EDITED_NOTE",
    "Approver",
    "CallDecided",
    "CallFinished",
    "CallRecord",
    "CallRequested",
    "CallStarted",
    "CallsRunning",
    "Compacted",
    "ContextNote",
    "Decision",
    "Engine",
    "Event",
    "PendingCall",
    "Policy",
    "ReasoningDelta",
    "RoundDone",
    "RoundStarted",
    "Stopped",
    "TextDelta",
    "TurnEnded",
    "TurnError",
    "TurnResult",
    "TurnStarted",
    "arguments_text",
    "decision_help",
    "reasoning_tokens",
    "total_usage",
]
