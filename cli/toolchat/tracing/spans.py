"""Engine events as spans, following the OpenTelemetry GenAI semantic conventions: one
`invoke_agent toolchat` per turn, a `chat {model}` per model call, an `execute_tool {name}` per
call the model made. Content (messages, arguments, results, the system prompt) only when opted
in; every string that could carry one passes the Redactor first.

The sink wrapper records, then hands each event on; a failure of its own is swallowed, so
tracing never changes a turn."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import Span, SpanKind, Status, StatusCode

from toolchat.backends.base import TextDelta, Usage, summed
from toolchat.engine import (
    CallDecided,
    CallFinished,
    CallRequested,
    CallStarted,
    Compacted,
    RoundDone,
    RoundStarted,
    TurnEnded,
    TurnError,
    TurnStarted,
)
from toolchat.tracing.calls import CallSpans

AGENT = "toolchat"
MAX_ERROR = 500  # characters of an error message kept on a span
PROVIDERS = {"openai": "openai", "local": "llama_cpp"}  # backend name -> gen_ai.provider.name when it says none
STOPPED = {"error": None, "interrupted": "cancelled", "max_rounds": "max_rounds"}  # None: the TurnError's type


class TraceSink:
    def __init__(
        self,
        inner: Callable[[Any], None],
        tracer: trace.Tracer,
        backend: Callable[[], Any],
        conversation: Callable[[], str | None],
        *,
        content: bool,
        redactor: Any,
        tools: Callable[[str], Any] | None = None,
    ) -> None:
        self.inner, self.tracer, self.backend, self.conversation = inner, tracer, backend, conversation
        self.tools = tools or (lambda name: None)
        self.content, self.redactor = content, redactor
        self._agent: Span | None = None
        self._agent_token: Any = None
        self._agent_model = ""
        self._usage: list[Usage] = []  # the turn's rounds
        self._error_type: str | None = None
        self._chat: Span | None = None
        self._chat_done: int | None = None  # when RoundDone came; the span ends once the reply is known
        self._chat_model = ""
        self._round: tuple[RoundStarted, float] | None = None
        self._sent = 0  # messages the open model call was given
        self._finish: str | None = None
        self._first_chunk: float | None = None
        self._text: list[str] = []
        self.calls = CallSpans(tracer, self._parent, self.tools, content, self._json, self._short)

    def __call__(self, event: Any) -> None:
        try:
            self._record(event)
        except Exception:  # noqa: BLE001 - tracing never harms the chat
            pass
        self.inner(event)

    # -- dispatch ----------------------------------------------------------------------------
    def _record(self, event: Any) -> None:
        self.calls.release()  # the context of a call that was starting is the call's, not the turn's
        if isinstance(event, TextDelta):
            if self._chat is not None and self._round is not None and event.text:
                if self._first_chunk is None:
                    self._first_chunk = time.monotonic() - self._round[1]
                self._text.append(event.text)
        elif isinstance(event, TurnStarted):
            self._turn_started(event)
        elif isinstance(event, RoundStarted):
            self._end_chat()
            self._round_started(event)
        elif isinstance(event, RoundDone):
            self._round_done(event)
        elif isinstance(event, CallRequested):
            self._end_chat()
            self.calls.requested(event)
        elif isinstance(event, CallDecided):
            self.calls.decided(event)
        elif isinstance(event, CallStarted):
            self.calls.started(event)
        elif isinstance(event, CallFinished):
            self._end_chat()
            self.calls.finished(event.record)
        elif isinstance(event, TurnError):
            self._error_type = getattr(event, "error_type", None) or error_type(event.message)
            self._end_chat(self._error_type, event.message)
        elif isinstance(event, TurnEnded):
            self._turn_ended(event)
        elif isinstance(event, Compacted):
            self._compacted(event)

    def _compacted(self, event: Compacted) -> None:
        """One span per compaction stage, under the turn; a summary's lasts its own model call."""
        end = time.time_ns()
        attributes: dict[str, Any] = {
            "toolchat.compaction.stage": event.stage,
            "toolchat.compaction.tokens_before": event.before,
            "toolchat.compaction.tokens_after": event.after,
            "toolchat.context_window": event.window,
        }
        if event.usage is not None:
            attributes.update(event.usage.measured())
        start = end - int(event.seconds * 1e9)
        span = self.tracer.start_span(
            f"compact {event.stage}", attributes=attributes, context=self._parent(), start_time=start
        )
        span.end(end_time=end)

    # -- the turn ----------------------------------------------------------------------------
    def _facts(self) -> dict[str, Any]:
        backend = self.backend()
        name = getattr(backend, "name", None) or "unknown"
        provider = getattr(backend, "provider", None) or PROVIDERS.get(name, name)
        facts: dict[str, Any] = {"gen_ai.provider.name": provider}
        model = getattr(backend, "model", None)
        if model:
            facts["gen_ai.request.model"] = str(model)
        address, port = getattr(backend, "server_address", None), getattr(backend, "server_port", None)
        if address is None and getattr(backend, "base_url", None):
            parts = urlsplit(str(backend.base_url))
            address, port = parts.hostname, parts.port or (443 if parts.scheme == "https" else 80)
        if address:
            facts["server.address"] = str(address)
            if port:
                facts["server.port"] = int(port)
        conversation = self.conversation()
        if conversation:
            facts["gen_ai.conversation.id"] = str(conversation)
        return facts

    def _turn_started(self, event: TurnStarted) -> None:
        self._close_turn()
        self._usage, self._error_type = [], None
        attributes = {"gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": AGENT, **self._facts()}
        if self.content and event.text:
            attributes["gen_ai.input.messages"] = self._json([_message("user", [_text(event.text)])])
        self._agent_model = attributes.get("gen_ai.request.model", "")
        self._agent = self.tracer.start_span(f"invoke_agent {AGENT}", kind=SpanKind.INTERNAL, attributes=attributes)
        self._agent_token = otel_context.attach(trace.set_span_in_context(self._agent))

    def _turn_ended(self, event: TurnEnded) -> None:
        result = event.result
        self.calls.end_all()
        self._end_chat("cancelled" if result.stopped == "interrupted" else None, "interrupted")
        agent = self._agent
        if agent is None:
            return
        agent.set_attributes(summed(self._usage).measured() if self._usage else {})  # unknown: not set
        model = getattr(self.backend(), "model", None)
        if model and not self._agent_model:  # a model the backend chose on its first call
            agent.set_attribute("gen_ai.request.model", str(model))
        agent.set_attributes(
            {
                "toolchat.turn.stopped": result.stopped,
                "toolchat.turn.rounds": len(result.rounds),
                "toolchat.turn.tool_calls": len(result.calls),
            }
        )
        if self.content and result.answer:
            agent.set_attribute("gen_ai.output.messages", self._json([_message("assistant", [_text(result.answer)])]))
        if result.stopped in STOPPED:
            error_type = STOPPED[result.stopped] or self._error_type or "_OTHER"
            agent.set_attribute("error.type", error_type)
            agent.set_status(Status(StatusCode.ERROR, self._short(result.error or error_type)))
        self._close_turn()

    def _close_turn(self) -> None:
        self.calls.end_all()
        self._end_chat("cancelled", "interrupted")
        if self._agent_token is not None:
            otel_context.detach(self._agent_token)
            self._agent_token = None
        if self._agent is not None:
            self._agent.end()
            self._agent = None

    # -- model calls -------------------------------------------------------------------------
    def _round_started(self, event: RoundStarted) -> None:
        request = event.request
        facts = self._facts()
        self._chat_model = facts.get("gen_ai.request.model", "")
        attributes: dict[str, Any] = {"gen_ai.operation.name": "chat", **facts}
        if request.temperature is not None:
            attributes["gen_ai.request.temperature"] = float(request.temperature)
        if request.max_tokens is not None:
            attributes["gen_ai.request.max_tokens"] = int(request.max_tokens)
        stream = getattr(self.backend(), "stream", None)
        if isinstance(stream, bool):
            attributes["gen_ai.request.stream"] = stream
        if self.content:
            system = [m for m in request.messages if m.get("role") in ("system", "developer")]
            if system and self._agent is not None:
                self._agent.set_attribute(
                    "gen_ai.system_instructions", self._json([_text(str(m.get("content") or "")) for m in system])
                )
            attributes["gen_ai.input.messages"] = self._json([_convert(m) for m in request.messages])
        kind = SpanKind.CLIENT if "server.address" in facts else SpanKind.INTERNAL
        self._chat = self.tracer.start_span(
            self._chat_name(self._chat_model), kind=kind, attributes=attributes, context=self._parent()
        )
        self._round, self._sent = (event, time.monotonic()), len(request.messages)
        self._chat_done, self._finish, self._first_chunk, self._text = None, None, None, []

    def _round_done(self, event: RoundDone) -> None:
        chat = self._chat
        if chat is None:
            return
        usage = event.usage
        chat.set_attributes(usage.measured())  # a count the server did not report is not set
        if usage.reasoning_tokens is not None:
            chat.set_attribute(REASONING_TOKENS, usage.reasoning_tokens)
        self._usage.append(usage)
        self._finish = event.finish_reason
        if event.finish_reason:
            chat.set_attribute("gen_ai.response.finish_reasons", [event.finish_reason])
        if self._first_chunk is not None:
            chat.set_attribute("gen_ai.response.time_to_first_chunk", round(self._first_chunk, 6))
        model = getattr(self.backend(), "model", None)
        if model and not self._chat_model:  # a model the backend chose on its first call
            chat.update_name(self._chat_name(str(model)))
            chat.set_attribute("gen_ai.request.model", str(model))
        self._chat_done = None if event.interrupted else time.time_ns()  # cut short: ends as cancelled

    def _end_chat(self, error_type: str | None = None, message: str = "") -> None:
        """Close the open model-call span: after RoundDone, with the reply as the engine kept it;
        before it (an error or Ctrl-C), as failed."""
        chat, self._chat = self._chat, None
        if chat is None:
            return
        if self._chat_done is None:
            if error_type:
                chat.set_attribute("error.type", error_type)
                chat.set_status(Status(StatusCode.ERROR, self._short(message)))
            chat.end()
            return
        if self.content and self._round is not None:
            chat.set_attribute("gen_ai.output.messages", self._json([self._reply()]))
        chat.end(end_time=self._chat_done)

    def _reply(self) -> dict[str, Any]:
        """The model's reply: the assistant message the engine appended to the very list the
        request carried (tool calls included), else the streamed text."""
        started, _ = self._round  # type: ignore[misc]
        messages, sent = started.request.messages, self._sent
        if len(messages) > sent and messages[sent].get("role") == "assistant":
            reply = _convert(messages[sent])
        else:
            reply = _message("assistant", [_text("".join(self._text))])
        reply["finish_reason"] = self._finish or "stop"
        return reply

    # -- helpers -----------------------------------------------------------------------------
    def _parent(self) -> Any:
        return trace.set_span_in_context(self._agent) if self._agent is not None else None

    @staticmethod
    def _chat_name(model: str) -> str:
        return f"chat {model}" if model else "chat"

    def _json(self, value: Any) -> str:
        text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
        return self.redactor.redact(text)

    def _short(self, message: str) -> str:
        message = self.redactor.redact(" ".join(str(message).split()))
        return message if len(message) <= MAX_ERROR else message[: MAX_ERROR - 1] + "…"


def _text(content: str) -> dict[str, Any]:
    return {"type": "text", "content": content}


def _message(role: str, parts: list[dict[str, Any]]) -> dict[str, Any]:
    return {"role": role, "parts": parts}


REASONING_TOKENS = "gen_ai.usage.reasoning.output_tokens"  # of output_tokens (the GenAI conventions' name)


def _convert(message: dict[str, Any]) -> dict[str, Any]:
    """A chat-completions message in the conventions' parts form."""
    role = str(message.get("role") or "user")
    content = message.get("content")
    if role == "tool":
        return _message(
            "tool", [{"type": "tool_call_response", "id": message.get("tool_call_id"), "response": content}]
        )
    parts: list[dict[str, Any]] = []
    thought = message.get("reasoning")
    if isinstance(thought, dict) and thought.get("text"):  # the conventions' reasoning part
        parts.append({"type": "reasoning", "content": str(thought["text"])})
    if isinstance(content, str) and content:
        parts.append(_text(content))
    elif isinstance(content, list):
        parts += [_text(str(p.get("text", ""))) for p in content if isinstance(p, dict) and p.get("type") == "text"]
    for call in message.get("tool_calls") or []:
        function = call.get("function") or {}
        arguments: Any = function.get("arguments")
        try:
            arguments = json.loads(arguments) if isinstance(arguments, str) else arguments
        except ValueError:
            pass
        parts.append({"type": "tool_call", "id": call.get("id"), "name": function.get("name"), "arguments": arguments})
    return _message(role, parts)


def error_type(message: str) -> str:
    """A backend failure as a low-cardinality `error.type`: the HTTP status, `timeout`,
    `connection_error`, else the conventions' `_OTHER`."""
    status = re.search(r"\(HTTP (\d{3})\)", message)
    if status:
        return status.group(1)
    if message.startswith("no answer from "):
        return "timeout"
    if message.startswith("cannot connect to "):
        return "connection_error"
    return "_OTHER"
