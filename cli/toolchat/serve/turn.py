"""One request's turn: the engine run in a thread of its own, its events carried to the event
loop in batches (one wake-up of the loop for all that arrived meanwhile, not one per delta),
cancelled (tools included) when the client goes away or the time limit passes.

The request's messages are the whole conversation; the server runs its own tools under its own
policy, and a call to one of the client's tools ends the turn with that call for the client."""

from __future__ import annotations

import asyncio
import contextvars
import re
import threading
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import urlsplit

from toolchat.backends.base import Backend, BackendEvent, ReasoningDelta, Reply, Request, TextDelta, ToolCall
from toolchat.backends.refusal import refused
from toolchat.config.settings import Settings
from toolchat.conversation import Conversation
from toolchat.engine import (
    CallDecided,
    CallFinished,
    CallRequested,
    CallsRunning,
    CallStarted,
    Decision,
    Engine,
    Event,
    PendingCall,
    RoundDone,
    RoundStarted,
    TurnResult,
)
from toolchat.errors import BackendError, ContextOverflow
from toolchat.redact import Redactor, StreamRedactor
from toolchat.serve.api import ApiError, ChatRequest, Outcome, ServerCall
from toolchat.tools import Registry
from toolchat.tracing.control import serve_turn


@dataclass
class Profile:
    """A model id the server offers: the settings of one profile and its backend."""

    id: str
    settings: Settings
    backend: Backend
    approve_all: bool
    environ: Mapping[str, str]  # for tracing's standard variables


def build_engine(
    profile: Profile, registry: Registry, chat: ChatRequest, backend: Backend, on_event: Callable[[Event], None]
) -> Engine:
    """The one place a request becomes an engine: the profile's settings, the request's
    temperature and max_tokens over them, and the request's messages as the conversation (the
    server's system prompt first when the request brings none)."""
    settings = profile.settings
    engine = Engine.from_settings(
        settings,
        backend,
        registry,
        approve=decline,
        on_event=on_event,
        approve_all=profile.approve_all,
        conversation=Conversation.of(_with_system(settings.system, chat.messages)),
        keep_system=True,  # the request's own system prompt stays; the server's is only a default
    )
    engine.compaction.protected = len(engine.messages)  # the client's messages are the client's: only its rounds here
    if chat.temperature is not None:
        engine.temperature = chat.temperature
    if chat.max_tokens is not None:
        engine.max_tokens = chat.max_tokens
    return engine


def _with_system(system: str | None, messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    has_system = any(m["role"] in ("system", "developer") for m in messages)
    return ([{"role": "system", "content": system}] if system and not has_system else []) + [dict(m) for m in messages]


def decline(pending: PendingCall) -> Decision:
    """There is nobody to ask: a tool the server's policy does not allow is not run."""
    return Decision(
        False,
        f"this server runs {pending.tool.name} only when it is allowed (tools.allow, "
        "--allow or --yes), and it is not; answer without it",
    )


class ClientTools:
    """The backend as the engine sees it: the request's own tools offered beside the server's,
    the request's tool_choice on the first model call, and a reply calling a client tool turned
    into the turn's end (the engine runs none of them: the client does)."""

    def __init__(self, backend: Backend, chat: ChatRequest, cancelled: threading.Event) -> None:
        self.inner = backend
        self.tools, self.choice = chat.tools, chat.tool_choice
        self.names = set(chat.client_tool_names)
        self.cancelled = cancelled
        self.client_calls: list[ToolCall] = []
        self.error: BackendError | None = None

    def complete(self, request: Request) -> Iterator[BackendEvent]:
        if self.cancelled.is_set():
            raise KeyboardInterrupt
        request = replace(request, tools=request.tools + self.tools, tool_choice=self.choice)
        self.choice = None  # like the engine's own: the first model call of a turn only
        events = self.inner.complete(request)
        try:
            for event in events:
                if isinstance(event, Reply) and any(call.name in self.names for call in event.tool_calls):
                    # a mixed reply: the server's calls in it are not run; the model asks again
                    self.client_calls = [call for call in event.tool_calls if call.name in self.names]
                    event = Reply(event.text, [], event.usage, "tool_calls")
                yield event
        except BackendError as exc:
            self.error = exc
            raise
        finally:
            close = getattr(events, "close", None)
            if close is not None:
                close()  # a cancelled turn closes the upstream stream at once

    def __getattr__(self, name: str) -> Any:  # the rest of the Backend protocol: the real backend's
        return getattr(self.inner, name)


class Turn:
    """The engine in a thread; `take` hands over ("text" or "reasoning", str) items, then one
    ("end", Outcome); text of both kinds has passed the redactor once, as a stream."""

    def __init__(
        self,
        profile: Profile,
        registry: Registry,
        chat: ChatRequest,
        headers: Mapping[str, str],
        redactor: Redactor,
        loop: asyncio.AbstractEventLoop,
        on_done: Callable[[], None],
    ) -> None:
        self.profile, self.registry, self.chat, self.headers = profile, registry, chat, headers
        self.redactor, self.loop, self.on_done = redactor, loop, on_done
        self._items: deque[tuple[str, Any]] = deque()  # appended by the thread, taken on the loop
        self._lock = threading.Lock()
        self._woken = False  # a wake-up of the loop is on its way
        self._waiter: asyncio.Future[None] | None = None
        self._stop: BaseException | None = None  # Gone or the time limit, once either happened
        self.cancelled = threading.Event()
        self.outcome = Outcome()
        self._text: list[str] = []
        self._hold = StreamRedactor(redactor)  # a key cut across two deltas is hidden too
        self._hold_reasoning = StreamRedactor(redactor)
        self._round_of_text = 0
        self._round = 0
        self._thread = threading.Thread(
            target=contextvars.copy_context().run, args=(self._run,), daemon=True, name="toolchat-turn"
        )
        self._tid: int | None = None
        self._reaper: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._thread.start()

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    def cancel(self) -> None:
        """Stop the turn: at its next event it ends, and the tools it is running are killed.
        Called on the event loop; safe to call again and after the turn has ended."""
        self.cancelled.set()
        if self._reaper is None and self.running:
            self._reaper = self.loop.create_task(self._reap())

    async def _reap(self) -> None:
        """Until the turn's thread ends: a tool call that was starting as the turn was cancelled
        is stopped too (asked from a thread: the request to the tool worker may wait)."""
        while self.running:
            await asyncio.to_thread(stop_tools, self._tid)
            await asyncio.sleep(0.1)

    def join(self, timeout: float) -> None:
        self._thread.join(timeout)

    async def take(self) -> list[tuple[str, Any]]:
        """Every item that has arrived (at least one), waiting for the next if none has; raises
        what `stop` was given instead once the client went away or the time limit passed."""
        while True:
            if self._stop is not None:
                raise self._stop
            if self._items:
                return [self._items.popleft() for _ in range(len(self._items))]
            self._waiter = self.loop.create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None

    def stop(self, reason: BaseException) -> None:
        """On the loop: `take` raises `reason` from now on (the first reason given stays)."""
        if self._stop is None:
            self._stop = reason
        self._wake()

    def _wake(self) -> None:
        with self._lock:
            self._woken = False
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    def _put(self, item: tuple[str, Any]) -> None:
        self._items.append(item)
        with self._lock:
            if self._woken:
                return  # the loop has yet to take what came before: it takes this too
            self._woken = True
        try:
            self.loop.call_soon_threadsafe(self._wake)
        except RuntimeError:  # the event loop is gone: the server is shutting down
            pass

    def _run(self) -> None:
        self._tid = threading.get_ident()
        gate = ClientTools(self.profile.backend, self.chat, self.cancelled)
        try:
            # one trace per request, a child of the client's `traceparent` when it sends one
            with serve_turn(self.headers, self.profile.settings, self.profile.environ) as traced:
                sink = traced(self._on_event, self.profile.backend)
                engine = build_engine(self.profile, self.registry, self.chat, gate, sink)
                result = engine.run_turn(None)
            self._finish(result, gate)
        except Exception as exc:  # noqa: BLE001 - our own bug: the client gets a 500, the server keeps serving
            self.outcome.error = ApiError(
                500, f"internal error: {type(exc).__name__}: {self.redactor.redact(str(exc))}", kind="server_error"
            )
        finally:
            self._put(("end", self.outcome))
            try:
                self.loop.call_soon_threadsafe(self.on_done)
            except RuntimeError:
                pass

    def _on_event(self, event: Event) -> None:
        if self.cancelled.is_set() and isinstance(
            event, (TextDelta, ReasoningDelta, RoundStarted, CallRequested, CallDecided, CallStarted, CallsRunning)
        ):
            raise KeyboardInterrupt  # the engine ends the turn and answers the remaining calls "cancelled"
        if isinstance(event, ReasoningDelta) and event.text:
            self.outcome.reasoning += event.text
            self._say(self._hold.flush())  # what was held back of the text goes first, in order
            self._think(self._hold_reasoning.feed(event.text))
        elif isinstance(event, RoundStarted):
            self._round = event.number
        elif isinstance(event, TextDelta) and event.text:
            text = event.text
            if self._round != self._round_of_text and self._text and not self._text[-1][-1:].isspace():
                text = "\n\n" + text  # the text of a later round is a new paragraph
            self._round_of_text = self._round
            self._think(self._hold_reasoning.flush())
            self._say(self._hold.feed(text))
        elif isinstance(event, CallFinished):
            record = event.record
            self.outcome.calls.append(
                ServerCall(record.id, record.name, record.arguments, record.status.value, record.duration)
            )
        elif isinstance(event, RoundDone):
            self.outcome.finish_reason = _finish_reason(event.finish_reason)

    def _say(self, text: str) -> None:
        if text:
            self._text.append(text)
            self._put(("text", text))

    def _think(self, text: str) -> None:
        if text:
            self._put(("reasoning", text))  # streamed as reasoning_content, apart from content

    def _finish(self, result: TurnResult, gate: ClientTools) -> None:
        self._think(self._hold_reasoning.flush())
        self._say(self._hold.flush())
        outcome = self.outcome
        outcome.text, outcome.rounds, outcome.stopped = "".join(self._text), result.rounds, result.stopped
        place = {
            record.id: n for n, record in enumerate(result.calls)
        }  # said as each finished; listed in the model's order
        outcome.calls.sort(key=lambda call: place.get(call.id, len(place)))
        if gate.client_calls:
            outcome.client_calls, outcome.finish_reason, outcome.stopped = (
                gate.client_calls,
                "tool_calls",
                "client_tools",
            )
        elif result.stopped == "max_rounds":
            outcome.finish_reason = "length"
        elif result.stopped == "error":
            outcome.error = upstream_error(gate.error, result.error or "the model failed", self.profile, self.redactor)
        elif result.stopped == "interrupted":
            outcome.error = ApiError(499, "the request was cancelled", kind="cancelled")


def _finish_reason(reason: str | None) -> str:
    return reason if reason in ("stop", "length", "content_filter") else "stop"


def upstream_error(exc: BackendError | None, message: str, profile: Profile, redactor: Redactor) -> ApiError:
    """The model server's failure as the client sees it: a status it can act on, and a message
    with neither the upstream's key nor its address."""
    cause = (exc.__cause__ or exc.__context__) if exc is not None else None
    status = getattr(cause, "status_code", None)
    message = redactor.redact(hide_address(message, getattr(profile.backend, "base_url", None)))
    if isinstance(exc, ContextOverflow):  # OpenAI's own shape, which clients know to act on
        return ApiError(400, message, kind="invalid_request_error", code="context_length_exceeded")
    if type(cause).__name__ == "APITimeoutError":
        return ApiError(504, message, kind="upstream_error", code="upstream_timeout")
    if status == 429:
        return ApiError(429, message, kind="rate_limit_error", code="rate_limited", retry_after=5)
    if status in (400, 413, 422) or refused(cause):  # the upstream refused what the client sent: not to be retried
        return ApiError(400, message, kind="invalid_request_error", code="upstream_rejected")
    return ApiError(502, message, kind="upstream_error", code="upstream_failed")


def hide_address(message: str, base_url: str | None) -> str:
    """`message` without the upstream's address: any URL on its host, its host:port, and its
    host name itself (a 500 saying "failure at 127.0.0.1:32921" tells a client nothing it may know)."""
    if not base_url:
        return message
    parts = urlsplit(base_url)
    host = parts.hostname or ""
    if not host:
        return message.replace(base_url, "the model server")
    shown = re.escape(f"[{host}]" if ":" in host else host)
    message = re.sub(
        rf"[A-Za-z][A-Za-z0-9+.-]*://(?:[^@/\s]*@)?{shown}(?::\d+)?[^\s\"'<>]*", "the model server", message, flags=re.I
    )
    message = re.sub(rf"(?<![\w.-]){shown}(?::\d+)?(?![\w-])", "the model server", message, flags=re.I)
    return message


def stop_tools(thread: int | None) -> None:
    """Stop the tool call the turn's thread is waiting on, and everything that tool started."""
    if thread is not None:
        from toolchat.tools.isolation.worker import cancel_job_of

        cancel_job_of(thread)
