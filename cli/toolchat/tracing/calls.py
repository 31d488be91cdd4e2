"""The `execute_tool {name}` spans of a turn: one per call the model made, several open at once while
the calls of one reply run together. Each span starts once its call is decided (it measures the run,
not the wait for the user) and is a child of the turn's span.

While a call starts, its span is the current context of the engine's thread, so what the call runs
in (its thread's copy of the context, an MCP request) nests under it; that is undone at the next
event, before anything else is recorded (contexts are attached and detached in turn)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import Span, SpanKind, Status, StatusCode

from toolchat.backends.base import ToolCall
from toolchat.engine import CallDecided, CallRecord, CallRequested, CallStarted
from toolchat.tools.model import ToolStatus

# a tool's outcome -> error.type; a denied call or one not run is not an error
ERRORS = {
    ToolStatus.ERROR: "tool_error",
    ToolStatus.INVALID: "invalid_arguments",
    ToolStatus.TIMEOUT: "timeout",
    ToolStatus.UNKNOWN: "unknown_tool",
    ToolStatus.CANCELLED: "cancelled",
}


@dataclass
class _Call:
    name: str
    attributes: dict[str, Any]
    requested: int  # ns
    span: Span | None = None
    approved: bool | None = None


class CallSpans:
    def __init__(
        self,
        tracer: trace.Tracer,
        parent: Callable[[], Any],
        tools: Callable[[str], Any],
        content: bool,
        json: Callable[[Any], str],
        short: Callable[[str], str],
    ) -> None:
        self.tracer, self.parent, self.tools, self.content = tracer, parent, tools, content
        self.json, self.short = json, short
        self.open: dict[str, _Call] = {}  # call id -> its span, in the order requested
        self._token: Any = None  # the context attached for the call starting now

    def release(self) -> None:
        """The engine's thread leaves the context of the call that was starting."""
        if self._token is not None:
            otel_context.detach(self._token)
            self._token = None

    def requested(self, event: CallRequested) -> None:
        call = event.call
        name = self.short(call.name)  # the model chose it (the server the id): either may echo a secret
        attributes: dict[str, Any] = {
            "gen_ai.operation.name": "execute_tool",
            "gen_ai.tool.name": name,
            "gen_ai.tool.call.id": self.short(call.id),
            "gen_ai.tool.type": "function",
        }
        tool = self.tools(call.name)
        if tool is not None:  # an MCP tool runs in its server: an extension, in the conventions' words
            origin = str(getattr(tool, "origin", "") or "")
            attributes["gen_ai.tool.type"] = "extension" if origin.startswith("mcp ") else "function"
            if origin:
                attributes["toolchat.tool.origin"] = origin
            if getattr(tool, "summary", ""):
                attributes["gen_ai.tool.description"] = str(tool.summary)
        if self.content:
            arguments = event.arguments if event.arguments is not None else call.arguments
            attributes["gen_ai.tool.call.arguments"] = self.json(arguments)
        self.end(call.id, ToolStatus.CANCELLED)  # the same id asked again: the first never finished
        self.open[call.id] = _Call(f"execute_tool {name}", attributes, time.time_ns())

    def _span(self, call_id: str) -> Span | None:
        """The call's span, from now on, with the time the approval took as an attribute."""
        entry = self.open.get(call_id)
        if entry is None:
            return None
        if entry.span is None:
            waited = (time.time_ns() - entry.requested) / 1e9
            attributes = {**entry.attributes, "toolchat.tool.approval_wait_seconds": round(waited, 6)}
            entry.span = self.tracer.start_span(
                entry.name, kind=SpanKind.INTERNAL, attributes=attributes, context=self.parent()
            )
        return entry.span

    def decided(self, event: CallDecided) -> None:
        span = self._span(event.call.id)
        if span is None:
            return
        self.open[event.call.id].approved = bool(event.decision.approved)
        span.set_attributes(
            {
                "toolchat.tool.approval": "allowed" if event.automatic else "asked",
                "toolchat.tool.approved": bool(event.decision.approved),
            }
        )
        if event.decision.approved:  # until the next event: what the approval's sink traces nests under it
            self._token = otel_context.attach(trace.set_span_in_context(span))

    def started(self, event: CallStarted) -> None:
        span = self._span(event.call.id)
        if span is not None:  # MCP clients and anything the tool's caller traces nest under it
            self._token = otel_context.attach(trace.set_span_in_context(span))

    def finished(self, record: CallRecord) -> None:
        if record.id not in self.open:
            self.requested(CallRequested(ToolCall(record.id, record.name, record.arguments), None))
        span = self._span(record.id)
        assert span is not None
        if self.content:
            span.set_attribute("gen_ai.tool.call.result", self.json(record.output))
        span.set_attribute("toolchat.tool.seconds", round(record.duration, 6))
        self.end(record.id, record.status, record.output)

    def end_all(self) -> None:
        """Every call still open ends cancelled (a call stopped at the question still has its span)."""
        for call_id in list(self.open):
            self.end(call_id, ToolStatus.CANCELLED)

    def end(self, call_id: str, status: ToolStatus, output: str = "") -> None:
        span = self._span(call_id)
        entry = self.open.pop(call_id, None)
        if span is None or entry is None:
            return
        outcome = status.value
        if status is ToolStatus.DENIED:
            outcome = "denied" if entry.approved is False else "not_run"
        span.set_attribute("toolchat.tool.outcome", outcome)
        if status in ERRORS:
            span.set_attribute("error.type", ERRORS[status])
            span.set_status(Status(StatusCode.ERROR, outcome if not self.content else self.short(output or outcome)))
        span.end()
