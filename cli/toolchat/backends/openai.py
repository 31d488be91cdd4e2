"""The OpenAI-compatible backend (OpenAI, vLLM, llama-server, Ollama, LM Studio); the only
module that imports the `openai` SDK. The SDK retries 429, 5xx and failed connections with
backoff (honouring Retry-After); this module turns what is left into one clear line."""

from __future__ import annotations

import json
from typing import Any, Iterator

from toolchat.backends.accumulate import ToolCallAccumulator
from toolchat.backends.base import BackendEvent, Reply, Request, TextDelta, ToolCall, Usage, new_call_id
from toolchat.config import Settings
from toolchat.errors import BackendError, UsageError

OPENAI_URL = "https://api.openai.com/v1"
DUMMY_KEY = "not-needed"  # custom endpoints need no key, but the SDK wants one


class OpenAIBackend:
    name = "openai"

    def __init__(self, settings: Settings, environ: dict[str, str] | Any, max_retries: int = 3) -> None:
        import openai

        self._openai = openai
        self.base_url = (settings.base_url or OPENAI_URL).rstrip("/")
        key = settings.api_key or environ.get("OPENAI_API_KEY") or None
        if key is None and self.base_url == OPENAI_URL:
            raise UsageError("no API key for OpenAI", "set OPENAI_API_KEY, or use --base-url for another endpoint")
        self._key = key or DUMMY_KEY
        # a custom endpoint with no model named: the first one it lists, asked on first use
        self.model: str = settings.model or ("gpt-4o-mini" if self.base_url == OPENAI_URL else "")
        self.stream = settings.stream
        self.timeout = settings.request_timeout
        self._usage_in_stream = True
        self.client = openai.OpenAI(base_url=self.base_url, api_key=self._key, timeout=self.timeout,
                                    max_retries=max_retries)

    def complete(self, request: Request) -> Iterator[BackendEvent]:
        if not self.model:
            served = self.list_models()
            if not served:
                raise BackendError(f"{self.base_url} lists no models", "name one with --model")
            self.model = served[0]
        try:
            if self.stream:
                yield from self._streamed(request)
            else:
                reply = self._whole(request)
                if reply.text:
                    yield TextDelta(reply.text)
                yield reply
        except self._openai.APIError as exc:
            raise self._explain(exc) from None

    def list_models(self) -> list[str]:
        try:
            return sorted(model.id for model in self.client.models.list())
        except self._openai.APIError as exc:
            raise self._explain(exc, listing=True) from None

    def _arguments(self, request: Request, stream: bool) -> dict[str, Any]:
        kwargs: dict[str, Any] = {"model": self.model, "messages": request.messages, "stream": stream}
        if request.tools:
            kwargs["tools"] = request.tools
            if request.tool_choice is not None:
                kwargs["tool_choice"] = request.tool_choice
        if request.temperature is not None:
            kwargs["temperature"] = request.temperature
        if request.max_tokens is not None:
            kwargs["max_tokens"] = request.max_tokens
        if stream and self._usage_in_stream:
            kwargs["stream_options"] = {"include_usage": True}
        return kwargs

    def _open_stream(self, request: Request) -> Any:
        try:
            return self.client.chat.completions.create(**self._arguments(request, True))
        except self._openai.BadRequestError as exc:
            if not (self._usage_in_stream and "stream_options" in str(exc)):
                raise
            self._usage_in_stream = False  # a server that does not know stream_options
            return self.client.chat.completions.create(**self._arguments(request, True))

    def _streamed(self, request: Request) -> Iterator[BackendEvent]:
        stream = self._open_stream(request)
        text: list[str] = []
        calls = ToolCallAccumulator()
        usage: Usage | None = None
        finish: str | None = None
        try:
            for chunk in stream:
                if getattr(chunk, "usage", None):
                    usage = _usage(chunk.usage)
                for choice in chunk.choices or []:
                    delta = choice.delta
                    finish = choice.finish_reason or finish
                    if delta is None:
                        continue
                    if delta.content:
                        text.append(delta.content)
                        yield TextDelta(delta.content)
                    for tool_delta in delta.tool_calls or []:
                        calls.add(_tool_delta(tool_delta))
        except Exception as exc:  # the SDK's connection error, httpx read errors, a half-sent chunk
            what = "mid-tool-call" if calls.calls() else "mid-answer"
            detail = _redact(_server_message(exc), self._key) if isinstance(exc, self._openai.APIStatusError) else ""
            raise BackendError(f"the stream from {self.base_url} broke off {what}"
                               + (f": {detail}" if detail else f" ({type(exc).__name__})"), "try again") from None
        finally:
            close = getattr(stream, "close", None)
            if close:
                close()
        yield Reply("".join(text), calls.calls(), usage, finish)

    def _whole(self, request: Request) -> Reply:
        response = self.client.chat.completions.create(**self._arguments(request, False))
        if not response.choices:
            raise BackendError(f"{self.base_url} answered with no choices")
        message = response.choices[0].message
        calls = [_whole_call(tc) for tc in message.tool_calls or []]
        usage = _usage(response.usage) if response.usage else None
        return Reply(message.content or "", calls, usage, response.choices[0].finish_reason)

    def _explain(self, exc: Exception, listing: bool = False) -> BackendError:
        """One line for the user, never the key."""
        openai = self._openai
        status = getattr(exc, "status_code", None)
        detail = _redact(_server_message(exc), self._key)
        where = self.base_url
        if isinstance(exc, openai.APITimeoutError):
            message = f"no answer from {where} within {self.timeout:g} s"
            hint = "is the server overloaded? raise request_timeout in the config"
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
        elif status is not None and status >= 500:
            message = f"{where} failed with a server error (HTTP {status}) after retries: {detail}"
            hint = "start llama-server with --jinja to use tools" if "--jinja" in detail else "try again later"
        elif status is not None:
            message = f"{where} rejected the request (HTTP {status}): {detail}"
            hint = None
        else:
            message = f"the stream from {where} broke off: {detail}"
            hint = "try again"
        return BackendError(message, hint)


def _tool_delta(delta: Any) -> dict[str, Any]:
    function = getattr(delta, "function", None)
    return {
        "index": getattr(delta, "index", None),
        "id": getattr(delta, "id", None),
        "function": {"name": getattr(function, "name", None), "arguments": getattr(function, "arguments", None)}
        if function is not None else {},
    }


def _whole_call(call: Any) -> ToolCall:
    function = call.function
    arguments = function.arguments
    if isinstance(arguments, (dict, list)):
        arguments = json.dumps(arguments, ensure_ascii=False)
    return ToolCall(call.id or new_call_id(), function.name or "", arguments or "")


def _usage(usage: Any) -> Usage:
    details = getattr(usage, "prompt_tokens_details", None)
    cached = getattr(details, "cached_tokens", None) if details is not None else None
    if isinstance(details, dict):
        cached = details.get("cached_tokens")
    return Usage(usage.prompt_tokens or 0, usage.completion_tokens or 0, cached or 0)


def _server_message(exc: Exception) -> str:
    body = getattr(exc, "body", None)
    if isinstance(body, dict):
        error = body.get("error", body)
        if isinstance(error, dict) and error.get("message"):
            return str(error["message"])
        if isinstance(error, str):
            return error
    return str(getattr(exc, "message", "") or exc)


def _redact(text: str, key: str) -> str:
    if key and key != DUMMY_KEY and key in text:
        text = text.replace(key, "***")
    return " ".join(text.split())[:300]
