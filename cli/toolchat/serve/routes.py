"""The ASGI app of `toolchat serve` (Starlette): /v1/models, /v1/chat/completions, /health.

Each completion is a Turn in a thread of its own. Admission is per backend kind: the
OpenAI-compatible backend serves many turns at once, the local one (a single Llama) one at a
time; a full queue answers 429 with Retry-After. A client that goes away cancels its turn."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from starlette import responses
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import Route

from toolchat.redact import Redactor
from toolchat.safety import strict_json
from toolchat.serve.access import AccessLog, note
from toolchat.serve.api import ApiError, Outcome, Reply, dumps, event, parse_request, usage_body
from toolchat.serve.guard import Guard
from toolchat.serve.turn import Profile, Turn
from toolchat.tools import Registry

RETRY_AFTER = 2  # seconds a client told "busy" waits before asking again


class JSONResponse(responses.JSONResponse):
    def render(self, content: Any) -> bytes:
        return dumps(content).encode("utf-8")


@dataclass
class Limits:
    max_body: int = 10 * 1024 * 1024
    max_queue: int = 8
    workers: int = 64  # turns at once on an OpenAI-compatible backend
    time_limit: float = 600.0  # seconds one request may take in all


class Admission:
    """`capacity` turns at once, `max_queue` more waiting; beyond that, 429."""

    def __init__(self, capacity: int, max_queue: int) -> None:
        self.slots = asyncio.Semaphore(capacity)
        self.max_queue = max_queue
        self.waiting = 0

    async def enter(self) -> None:
        if self.slots.locked() and self.waiting >= self.max_queue:
            raise ApiError(
                429,
                f"the server is busy ({self.waiting} requests queued); try again shortly",
                kind="rate_limit_error",
                code="queue_full",
                retry_after=RETRY_AFTER,
            )
        self.waiting += 1
        try:
            await self.slots.acquire()
        finally:
            self.waiting -= 1

    def leave(self) -> None:
        self.slots.release()


class Gone(Exception):
    """The client disconnected."""


@dataclass
class Server:
    profiles: dict[str, Profile]  # model id -> profile; the default first
    registry: Registry
    limits: Limits
    redactor: Redactor
    api_key: str | None = None
    say: Callable[[str], None] = lambda line: None  # the access log's lines
    turns: set[Turn] = field(default_factory=set)
    _admission: dict[str, Admission] = field(default_factory=dict)

    def admission(self, profile: Profile) -> Admission:
        kind = profile.backend.name
        if kind not in self._admission:
            capacity = 1 if kind == "local" else self.limits.workers
            self._admission[kind] = Admission(capacity, self.limits.max_queue)
        return self._admission[kind]

    def pick(self, model: str | None) -> Profile:
        if not model:
            return next(iter(self.profiles.values()))
        if model not in self.profiles:
            raise ApiError(
                404,
                f"the model '{model}' does not exist here; models: {', '.join(self.profiles)}",
                param="model",
                code="model_not_found",
            )
        return self.profiles[model]


def build_app(server: Server) -> Starlette:
    async def models(request: Request) -> Response:
        data = [{"id": name, "object": "model", "created": 0, "owned_by": "toolchat"} for name in server.profiles]
        return JSONResponse({"object": "list", "data": data})

    async def health(request: Request) -> Response:
        return JSONResponse({"status": "ok", "running": len(server.turns)})

    async def completions(request: Request) -> Response:
        return await _completions(server, request)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        for turn in list(server.turns):  # nothing a tool started outlives the server
            turn.cancel()
        for turn in list(server.turns):
            await asyncio.to_thread(turn.join, 2.0)

    def redacted_error(request: Request | None, exc: Exception) -> Response:
        return _api_error(request, exc, server.redactor)

    app = Starlette(
        routes=[
            Route("/v1/models", models),
            Route("/models", models),
            Route("/health", health),
            Route("/v1/chat/completions", completions, methods=["POST"]),
            Route("/chat/completions", completions, methods=["POST"]),
        ],
        exception_handlers={HTTPException: _http_error, ApiError: redacted_error},
        lifespan=lifespan,
    )
    return AccessLog(Guard(app, server.api_key, lambda error: redacted_error(None, error)), server.say, server.redactor)


def _api_error(request: Request | None, exc: Exception, redactor: Redactor | None = None) -> Response:
    """`exc` as OpenAI's error body; with `redactor`, which one that quotes the client's own
    values (a 400 naming the field, a 404 its path) passes, as every body this server sends."""
    assert isinstance(exc, ApiError)
    body = redactor.redact_all(exc.body()) if redactor is not None else exc.body()
    return JSONResponse(body, exc.status, headers=exc.headers())


def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if exc.status_code == 404:
        error = ApiError(404, f"no such route: {request.method} {request.url.path}", code="not_found")
    elif exc.status_code == 405:
        error = ApiError(405, f"{request.method} is not allowed on {request.url.path}", code="method_not_allowed")
    else:
        error = ApiError(exc.status_code, str(exc.detail))
    return _api_error(request, error)


async def read_json(request: Request, limit: int) -> Any:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise ApiError(413, f"the request body is larger than {limit} bytes", code="body_too_large")
    body = bytearray()
    try:
        async for part in request.stream():
            body += part
            if len(body) > limit:
                raise ApiError(413, f"the request body is larger than {limit} bytes", code="body_too_large")
    except ClientDisconnect:
        note(request.scope, gone="before its request was whole")
        raise Gone from None
    try:
        value = strict_json(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ApiError(400, f"the request body is not valid JSON: {exc}", code="invalid_json") from None
    except RecursionError:
        value = None
    if value is None or too_deep(value, MAX_DEPTH):
        raise ApiError(
            400, f"the request body is nested too deeply (more than {MAX_DEPTH} levels)", code="invalid_json"
        ) from None
    return value


MAX_DEPTH = 100  # levels of lists and objects a request may nest: what is passed on stays far from the recursion limit


def too_deep(value: Any, limit: int) -> bool:
    """Whether `value` nests lists and objects more than `limit` deep (a walk, not a recursion)."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        children = item.values() if isinstance(item, dict) else item if isinstance(item, list) else ()
        for child in children:
            if isinstance(child, (dict, list)):
                if depth >= limit:
                    return True
                stack.append((child, depth + 1))
    return False


async def _completions(server: Server, request: Request) -> Response:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + server.limits.time_limit  # the body's arrival counts too: a trickled one is cut
    try:
        async with asyncio.timeout_at(deadline):
            body = await read_json(request, server.limits.max_body)
    except Gone:
        return Response(status_code=499)  # nobody is listening
    except TimeoutError:
        late = "the request body did not arrive within this server's time limit"
        raise ApiError(408, late, code="time_limit") from None
    chat = parse_request(body, server.registry.names())
    profile = server.pick(chat.model)
    note(request.scope, model=profile.id)
    gone = asyncio.ensure_future(_disconnected(request))
    admission = server.admission(profile)
    try:
        await _race(admission.enter(), gone, deadline)
    except Gone:
        note(request.scope, gone="while it waited its turn")
        return Response(status_code=499)  # nobody is listening
    except asyncio.CancelledError:  # the server stops before this request's turn came
        gone.cancel()
        return _api_error(request, SHUTTING_DOWN)
    except BaseException:
        gone.cancel()
        raise
    turn = Turn(profile, server.registry, chat, request.headers, server.redactor, loop, on_done=lambda: _done())
    late = _watch(turn, gone, deadline)

    def _done() -> None:
        late.cancel()
        server.turns.discard(turn)
        admission.leave()

    server.turns.add(turn)
    turn.start()
    reply = Reply(profile.id, chat.include_usage, server.redactor)
    try:
        first = await turn.take()
        if first[0][0] == "end" and first[0][1].error is not None:  # nothing sent yet: a real status
            gone.cancel()
            return _api_error(request, first[0][1].error)
        if chat.stream:
            return EventStream(_stream(turn, reply, first, gone, request), deadline + SLOW_READER_GRACE)
        outcome = await _outcome(turn, first)
    except Gone:
        note(request.scope, gone="before its answer began")
        turn.cancel()
        return Response(status_code=499)
    except asyncio.CancelledError:  # the server stops (SIGTERM, Ctrl-C) before the reply began
        turn.cancel()
        gone.cancel()
        return _api_error(request, SHUTTING_DOWN)
    except BaseException:
        turn.cancel()
        gone.cancel()
        raise
    gone.cancel()
    _note_tokens(request, outcome)
    if outcome.error is not None:
        return _api_error(request, outcome.error)
    return JSONResponse(reply.completion(outcome))


SHUTTING_DOWN = ApiError(503, "the server is shutting down; try again", kind="server_error", code="shutting_down")


def _watch(turn: Turn, gone: asyncio.Future[None], deadline: float) -> asyncio.TimerHandle:
    """The turn's `take` raises Gone once the client goes away, and the time limit's 504 once it
    passes: one callback and one timer per request (cancelled when the turn ends), none per item."""
    gone.add_done_callback(lambda future: None if future.cancelled() else turn.stop(Gone()))
    return asyncio.get_running_loop().call_at(deadline, turn.stop, _time_limit())


def _time_limit() -> ApiError:
    return ApiError(504, "the request took longer than this server's time limit", kind="timeout", code="time_limit")


async def _outcome(turn: Turn, items: list[tuple[str, Any]]) -> Outcome:
    while items[-1][0] != "end":
        items = await turn.take()
    return items[-1][1]


def _note_tokens(request: Request, outcome: Outcome) -> None:
    if outcome.rounds:
        usage = usage_body(outcome.rounds)
        note(request.scope, tokens=(usage["prompt_tokens"], usage["completion_tokens"]))


KIND = {"text": "content", "reasoning": "reasoning_content"}  # a turn's item -> the delta's field
SLOW_READER_GRACE = 1.0  # seconds past the time limit a stream may still take to be read


class Cut(Exception):
    """A stream cut off because its client stopped reading (server.py keeps it out of the log)."""


class EventStream:
    """A text/event-stream response, each piece of `body` one write, bounded in time: a client that
    stops reading holds its connection no longer than the time limit (Starlette's would wait on it
    for ever), and is then cut off."""

    HEADERS = [
        (b"content-type", b"text/event-stream; charset=utf-8"),
        (b"cache-control", b"no-cache"),
        (b"x-accel-buffering", b"no"),
    ]

    def __init__(self, body: AsyncGenerator[str, None], deadline: float) -> None:
        self.body, self.deadline = body, deadline

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        try:
            await send({"type": "http.response.start", "status": 200, "headers": self.HEADERS})
            async with asyncio.timeout_at(self.deadline):
                async for text in self.body:
                    await send({"type": "http.response.body", "body": text.encode("utf-8"), "more_body": True})
        except TimeoutError:
            note(scope, status=504, cut="its client read too slowly: cut at the time limit")
            raise Cut from None
        finally:
            await self.body.aclose()  # its turn is cancelled, whatever ended the stream
        await send({"type": "http.response.body", "body": b"", "more_body": False})


async def _stream(
    turn: Turn, reply: Reply, items: list[tuple[str, Any]], gone: asyncio.Future[None], request: Request
) -> AsyncGenerator[str, None]:
    """The response's body: each batch of items the turn hands over is one write."""
    try:
        yield reply.chunk({"role": "assistant", "content": ""})
        while True:
            if text := "".join(reply.text_chunk(KIND[item[0]], item[1]) for item in items if item[0] != "end"):
                yield text
            if items[-1][0] == "end":
                break
            items = await turn.take()
        outcome: Outcome = items[-1][1]
        _note_tokens(request, outcome)
        if outcome.error is not None:
            note(request.scope, status=outcome.error.status, cut="the model server failed mid-stream")
            yield event(reply.redactor.redact_all(outcome.error.body()))
            return
        yield "".join(reply.final_chunks(outcome))
    except ApiError as exc:  # the time limit
        note(request.scope, status=exc.status, cut="the time limit passed mid-stream")
        yield event(exc.body())
    except Gone:
        note(request.scope, gone="mid-stream")
    finally:
        turn.cancel()  # a no-op once the turn has ended
        gone.cancel()


async def _race(awaitable: Awaitable[Any], gone: asyncio.Future[None], deadline: float) -> Any:
    """`awaitable`'s result, unless the client goes away (Gone) or the time limit passes first."""
    task = asyncio.ensure_future(awaitable)
    loop = asyncio.get_running_loop()
    try:
        done, _ = await asyncio.wait(
            {task, gone}, timeout=max(0.0, deadline - loop.time()), return_when=asyncio.FIRST_COMPLETED
        )
    except BaseException:
        task.cancel()
        raise
    if task in done:
        return task.result()
    task.cancel()
    if gone in done:
        raise Gone
    raise _time_limit()


async def _disconnected(request: Request) -> None:
    while (await request.receive())["type"] != "http.disconnect":
        pass
