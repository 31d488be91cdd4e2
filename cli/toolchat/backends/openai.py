"""The OpenAI-compatible backend (OpenAI, vLLM, llama-server, Ollama, LM Studio); the only
module that imports the `openai` SDK. The SDK retries 429, 5xx and failed connections with
backoff (honouring Retry-After) `max_retries` times, but not a 500 that refuses the request itself
(backends/refusal.py); this module turns what is left into one clear line, never showing the
key. A reply counts only when the server says why it ended (a finish_reason): a stream that ends
without one broke off, and none of its calls run."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import urlsplit

from toolchat import defaults
from toolchat.backends import bounded, refusal
from toolchat.backends.accumulate import MalformedDelta, ToolCallAccumulator
from toolchat.backends.base import (
    REASONING_CONTENT,
    REASONING_FIELD,
    BackendEvent,
    Reasoning,
    ReasoningDelta,
    Reply,
    Request,
    TextDelta,
    ToolCall,
    Usage,
)
from toolchat.backends.openai_wire import (
    Deadline,
    api_key,
    content_text,
    field,
    parseable_calls,
    scrub,
    tool_delta,
    untrusted_certificate,
    usage_of,
    whole_call,
)
from toolchat.backends.overflow import recognise
from toolchat.backends.probe import probe_window
from toolchat.backends.reasoning import ReplyReader, wire_messages
from toolchat.config.settings import Settings
from toolchat.errors import BackendError, ContextOverflow, UsageError
from toolchat.redact import Redactor

OPENAI_URL = "https://api.openai.com/v1"
DUMMY_KEY = "not-needed"  # custom endpoints need no key, but the SDK wants one
JINJA_HINT = "start llama-server with --jinja to use tools"
NOT_AN_API = ("text/html", "application/xhtml")  # a web page where the API should be


class OpenAIBackend:
    name = "openai"
    provider = "openai"  # the API spoken, whoever serves it (OpenTelemetry's gen_ai convention)

    def __init__(
        self,
        settings: Settings,
        environ: Any,
        notify: Callable[[str], None] = lambda m: None,
        *,
        resolve_model: bool = True,
        debug: bool = False,
    ) -> None:
        import httpx2
        import openai

        self._openai, self._httpx = openai, httpx2
        self.base_url = (settings.base_url or OPENAI_URL).rstrip("/")
        parts = urlsplit(self.base_url)
        self.server_address: str | None = parts.hostname
        self.server_port: int | None = parts.port or (443 if parts.scheme == "https" else 80)
        key = api_key(settings.api_key or environ.get("OPENAI_API_KEY") or None, notify)
        if key is None and self.base_url == OPENAI_URL:
            raise UsageError("no API key for OpenAI", "set OPENAI_API_KEY, or use --base-url for another endpoint")
        self._redactor = Redactor([key])
        self._notify, self._debug = notify, debug
        self.stream = settings.stream
        self.timeout = settings.request_timeout  # the longest silence
        self.response_timeout = settings.response_timeout  # the longest one model call may take
        self._usage_in_stream = True
        self.reasoning_keep = settings.reasoning_keep
        self.reasoning_effort = settings.reasoning_effort
        self.reasoning_field: str | None = None  # the field this server sends reasoning in, once seen
        self._deadline = Deadline()
        http_client = openai.DefaultHttpx2Client()
        self._deadline.bind(httpx2, http_client)
        bounded.bind(httpx2, http_client)  # a gzip bomb or an endless line is stopped at a ceiling
        refusal.bind(httpx2, http_client)  # a 500 refusing the request itself is not retried
        self.client = openai.OpenAI(
            base_url=self.base_url,
            api_key=key or DUMMY_KEY,
            max_retries=settings.max_retries,
            timeout=min(self.timeout, self.response_timeout),
            http_client=http_client,
        )
        self._http = http_client  # the probe of the window asks through it: same ceilings, TLS and proxies
        self._window: int | bool | None = False  # False: not asked yet; None: the server does not say
        self.model: str = settings.model or (defaults.OPENAI_MODEL if self.base_url == OPENAI_URL else "")
        if not self.model and resolve_model:
            try:
                self.model = self._first_served()
            except BackendError:
                pass  # a server down at start-up: asked again (and the error said) at the first model call

    # -- the protocol ---------------------------------------------------------------------------
    def complete(self, request: Request) -> Iterator[BackendEvent]:
        if not self.model:
            self.model = self._first_served()
        self._deadline.deadline = time.monotonic() + self.response_timeout
        try:
            if self.stream:
                yield from self._streamed(request)
            else:
                yield from self._as_events(self._whole_reply(self._create(request, False)[1]))
        except self._openai.APIError as exc:
            raise self._traced(self._explain(exc), exc) from exc
        except BackendError as exc:
            raise self._traced(exc, exc.__cause__)  # noqa: B904 - the same error, traced, goes on
        finally:
            self._deadline.deadline = None

    def describe(self) -> str:
        return f"{self.name} · {self.model} · {self.base_url}"

    @property
    def context_window(self) -> int | None:
        """The model's window as its server says it; asked once (backends/probe.py), then kept."""
        if self._window is False:
            ask = min(self.timeout, 5.0)
            self._window = probe_window(self._http, self.client.api_key, self.base_url, self.model, ask)
        return self._window or None

    def list_models(self) -> list[str]:
        return sorted(self._served())

    def close(self) -> None:
        self.client.close()

    # -- requests -------------------------------------------------------------------------------
    def _served(self) -> list[str]:
        self._deadline.deadline = time.monotonic() + self.response_timeout
        try:
            return [scrub(str(model.id)) for model in self.client.models.list()]
        except self._openai.APIError as exc:
            raise self._explain(exc, listing=True) from exc
        except RecursionError as exc:  # JSON nested deeper than Python parses
            raise BackendError(
                f"{self.base_url} listed its models in JSON nested too deeply to read",
                "is this an OpenAI-compatible server?",
            ) from exc
        finally:
            self._deadline.deadline = None

    def _first_served(self) -> str:
        served = self._served()
        if not served:
            raise BackendError(f"{self.base_url} lists no models", "name one with --model")
        return served[0]

    def _arguments(self, request: Request, stream: bool) -> dict[str, Any]:
        messages = parseable_calls(wire_messages(request.messages, self.reasoning_keep, self.reasoning_field))
        kwargs: dict[str, Any] = {"model": self.model, "messages": scrub(messages), "stream": stream}
        kwargs.update(self._effort())
        if request.tools:
            kwargs["tools"] = scrub(request.tools)
            if request.tool_choice is not None:
                kwargs["tool_choice"] = request.tool_choice
        if request.temperature is not None:
            kwargs["temperature"] = request.temperature
        if request.max_tokens is not None:
            kwargs["max_tokens"] = request.max_tokens
        if stream and self._usage_in_stream:
            kwargs["stream_options"] = {"include_usage": True}
        return kwargs

    def _effort(self) -> dict[str, Any]:
        """How hard to think: OpenRouter's `reasoning.effort`, else `reasoning_effort`; `none` also
        turns thinking templates off beyond OpenAI (vLLM, llama-server, SGLang: `chat_template_kwargs`)."""
        effort = self.reasoning_effort
        if effort is None:
            return {}
        if "openrouter.ai" in (self.server_address or ""):
            return {"reasoning": {"effort": effort}}  # "none" included: OpenRouter turns reasoning off
        extra: dict[str, Any] = {"reasoning_effort": effort}
        if effort == "none" and self.base_url != OPENAI_URL:
            extra["chat_template_kwargs"] = {"enable_thinking": False}
        return extra

    def _create(self, request: Request, stream: bool) -> tuple[Any, Any]:
        """(the SDK's Stream, None) for a stream of events, or (None, the JSON body) for a whole
        reply (asked for, or sent by a server that does not stream); a web page is refused."""
        try:
            raw = self._post(request, stream)
        except self._openai.BadRequestError as exc:
            if not (stream and self._usage_in_stream and "stream_options" in str(exc)):
                raise
            self._usage_in_stream = False  # a server that does not know stream_options
            raw = self._post(request, stream)
        kind = raw.headers.get("content-type", "").split(";")[0].strip().lower()
        if kind.startswith(NOT_AN_API):
            raw.close()
            raise BackendError(
                f"the server answered with {kind}, not an OpenAI-compatible reply",
                f"check the base URL {self.base_url}; it usually ends in /v1",
            )
        if stream and "json" not in kind:
            # chunks as the plain JSON they are (read with `field`): building the SDK's model of every
            # chunk was half of `toolchat serve`'s CPU time per streamed request (benchmarks/RESULTS.md)
            return self._openai.Stream(cast_to=object, response=raw, client=self.client), None
        try:
            return None, json.loads(raw.read())
        except (ValueError, RecursionError) as exc:  # not JSON, or nested deeper than Python parses
            raise BackendError(
                f"{self.base_url} answered with something that is not JSON", "is this an OpenAI-compatible server?"
            ) from exc

    def _post(self, request: Request, stream: bool) -> Any:
        """The HTTP response to one chat-completions request (its body unread when streamed). Sent
        with the SDK's `post`, which retries as `create` does, but without `create`'s walk of every
        message against the SDK's parameter types: the body is plain JSON already, and that walk
        costs a few milliseconds per request, growing with the conversation (about 120 ms over a
        30-round tool loop, benchmarks/RESULTS.md)."""
        return self.client.post(
            "/chat/completions", body=self._arguments(request, stream), cast_to=self._httpx.Response, stream=stream
        )

    def _streamed(self, request: Request) -> Iterator[BackendEvent]:
        stream, whole = self._create(request, True)
        if stream is None:  # a server that answered whole although asked to stream
            yield from self._as_events(self._whole_reply(whole))
            return
        reader = ReplyReader()
        calls = ToolCallAccumulator()
        usage: Usage | None = None
        finish: str | None = None
        try:
            for chunk in stream:
                if field(chunk, "usage"):
                    usage = usage_of(field(chunk, "usage"))
                choices = field(chunk, "choices")
                for choice in choices if isinstance(choices, list) else []:
                    finish = field(choice, "finish_reason") or finish
                    delta = field(choice, "delta")
                    yield from _events(reader.take(delta, content_text(field(delta, "content"))))
                    for part in field(delta, "tool_calls") or []:
                        calls.add(tool_delta(part))
        except (
            self._openai.APIError,
            self._httpx.HTTPError,
            self._httpx.StreamError,
            json.JSONDecodeError,
            RecursionError,
            MalformedDelta,
        ) as exc:
            # after a finish_reason only the usage or [DONE] can be lost: the reply is whole
            tail = finish is not None and isinstance(exc, (self._openai.APIConnectionError, self._httpx.TransportError))
            if not tail:
                raise self._broke_off(bool(calls.calls()), self._why(exc)) from exc
        finally:
            stream.close()
        if finish is None:
            raise self._broke_off(bool(calls.calls()), "it ended without a finish_reason")
        yield from _events(reader.finish())
        reply = Reply("".join(reader.text), self._checked(calls.calls()), usage, finish)
        reply.reasoning = self._learned(reader.result())
        yield reply

    @staticmethod
    def _as_events(reply: Reply) -> Iterator[BackendEvent]:
        if reply.reasoning is not None and reply.reasoning.text:
            yield ReasoningDelta(reply.reasoning.text)
        if reply.text:
            yield TextDelta(reply.text)
        yield reply

    def _whole_reply(self, body: Any) -> Reply:
        """A whole reply's JSON body (never trusted to have the right shapes) as a Reply."""
        error = field(body, "error")
        if error:
            detail = " ".join(self._redactor.redact(_error_text(body) or str(error)).split())[:300]
            if (overflow := recognise(body, detail)) is not None:
                raise ContextOverflow(
                    f"{self.base_url} refused the conversation as too long for the model's context window: {detail}",
                    window=overflow.window,
                    prompt_tokens=overflow.prompt_tokens,
                )
            raise BackendError(f"{self.base_url} sent an error: {detail}", "try again")
        choices = field(body, "choices")
        if not isinstance(choices, list) or not choices:
            raise BackendError(f"{self.base_url} answered with no choices", "is this an OpenAI-compatible server?")
        message = field(choices[0], "message")
        listed = field(message, "tool_calls")
        calls = [whole_call(tc) for tc in (listed if isinstance(listed, list) else [])]
        usage = usage_of(field(body, "usage")) if field(body, "usage") else None
        finish = field(choices[0], "finish_reason")  # a whole body is complete with or without one
        reader = ReplyReader()
        reader.take(message, content_text(field(message, "content")))
        reader.finish()
        reply = Reply("".join(reader.text), self._checked(calls), usage, finish if isinstance(finish, str) else "")
        reply.reasoning = self._learned(reader.result())
        return reply

    def _learned(self, reasoning: Reasoning | None) -> Reasoning | None:
        """A reply's reasoning; the field it came in is the one reasoning goes back in (a client's
        too, through `toolchat serve`: vLLM reads only `reasoning`, DeepSeek `reasoning_content`)."""
        if reasoning is not None and reasoning.field in (REASONING_FIELD, REASONING_CONTENT):
            self.reasoning_field = reasoning.field
        return reasoning

    def _checked(self, calls: list[ToolCall]) -> list[ToolCall]:
        """The calls, sendable back as UTF-8; a call without a name is the server's fault."""
        if any(not call.name for call in calls):
            raise BackendError(
                f"{self.base_url} sent a tool call without a name", "is this an OpenAI-compatible server?"
            )
        return [ToolCall(call.id, scrub(call.name), scrub(call.arguments)) for call in calls]

    # -- errors ---------------------------------------------------------------------------------
    def _broke_off(self, has_calls: bool, why: str) -> BackendError:
        what = "mid-tool-call" if has_calls else "mid-answer"
        return BackendError(f"the stream from {self.base_url} broke off {what}: {why}", "try again")

    def _why(self, exc: Exception) -> str:
        if isinstance(exc, (self._openai.APITimeoutError, self._httpx.TimeoutException)):
            if self._deadline.expired():
                return f"still unfinished after response_timeout {self.response_timeout:g} s"
            return f"no data for {self.timeout:g} s"
        if isinstance(exc, json.JSONDecodeError):
            return "a chunk that is not JSON"
        if isinstance(exc, RecursionError):
            return "a chunk of JSON nested too deeply to read"
        if isinstance(exc, (self._openai.APIConnectionError, self._httpx.TransportError)):
            return "the connection closed"
        return self._detail(exc) or type(exc).__name__

    def _traced(self, error: BackendError, cause: BaseException | None) -> BackendError:
        """With TOOLCHAT_DEBUG=1, the cause's traceback (key redacted) before the one line."""
        if self._debug and cause is not None:
            import traceback

            self._notify(
                self._redactor.redact("".join(traceback.format_exception(cause)).rstrip())
                + "\n\nThe above exception was the direct cause of: "
                + str(error)
            )
        return error

    def _detail(self, exc: Exception) -> str:
        return " ".join(self._redactor.redact(_server_message(exc)).split())[:300]

    def _explain(self, exc: Exception, listing: bool = False) -> BackendError:
        """One line for the user, never the key."""
        if (ceiling := bounded.too_large(exc)) is not None:
            return ceiling
        openai = self._openai
        status = getattr(exc, "status_code", None)
        detail = self._detail(exc)
        where = self.base_url
        if isinstance(exc, openai.APITimeoutError):
            if self._deadline.expired():
                message = f"no complete answer from {where} within response_timeout {self.response_timeout:g} s"
                hint = "raise response_timeout in the config"
            else:
                message = f"no answer from {where} within {self.timeout:g} s"
                hint = "is the server overloaded? raise request_timeout in the config"
        elif isinstance(exc, openai.APIConnectionError) and untrusted_certificate(exc):
            message = f"cannot verify the TLS certificate of {where} (or of where it redirects)"
            hint = "set SSL_CERT_FILE to a CA bundle that trusts the server's certificate"
        elif isinstance(exc, openai.APIConnectionError):
            message = f"cannot connect to {where}"
            hint = "is the server running, and is the URL right?"
        elif status in (401, 403):
            message = f"{where} refused the API key (HTTP {status})"
            hint = "check OPENAI_API_KEY or api_key in the config"
        elif status == 404:
            if not listing and "model" in detail.lower():
                message = f"model '{self.model}' not found at {where} (HTTP 404)"
                hint = "`toolchat models` lists the models it serves"
            else:
                message = f"{where} has no OpenAI-compatible API there (HTTP 404)"
                hint = "check the base URL; it usually ends in /v1"
        elif status == 429:
            message = f"{where} is rate limiting (HTTP 429), still after retries"
            hint = "wait and try again"
        elif (overflow := recognise(getattr(exc, "body", None), detail)) is not None:
            return ContextOverflow(
                f"{where} refused the conversation as too long for the model's window (HTTP {status}): {detail}",
                "start a new conversation, shorten the message, or set context_window",
                window=overflow.window,
                prompt_tokens=overflow.prompt_tokens,
            )
        elif refusal.refused(exc):
            message = f"{where} refused the request (HTTP {status}): {detail}"  # asked once: it would again
            hint = JINJA_HINT if "--jinja" in detail else None
        elif status is not None and status >= 500:
            message = f"{where} failed with a server error (HTTP {status}) after retries: {detail}"
            hint = "try again later"
        elif status is not None:
            message = f"{where} rejected the request (HTTP {status}): {detail}"
            hint = None
        else:
            message = f"{where} sent an error: {detail}"
            hint = "try again"
        return BackendError(message, hint)


def _events(parts: list[tuple[str, str]]) -> Iterator[BackendEvent]:
    for kind, text in parts:
        yield ReasoningDelta(text) if kind == "reasoning" else TextDelta(text)


def _error_text(body: Any) -> str:
    """The message of an error body ({"error": {"message": ...}}, {"error": "..."}, {"message": ...})."""
    if isinstance(body, dict):
        error = body.get("error", body)
        if isinstance(error, dict) and error.get("message"):
            return str(error["message"])
        if isinstance(error, str):
            return error
    return ""


def _server_message(exc: Exception) -> str:
    return _error_text(getattr(exc, "body", None)) or str(getattr(exc, "message", "") or exc)
