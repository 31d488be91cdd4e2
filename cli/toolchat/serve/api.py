"""The OpenAI wire format of `toolchat serve`: a request body checked into a ChatRequest, and the
bodies sent back (a completion, stream chunks, errors), all in the shapes OpenAI's clients parse."""

from __future__ import annotations

import json
import re
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from toolchat.backends.base import ToolCall, Usage, summed
from toolchat.defaults import MAX_TOKENS
from toolchat.redact import Redactor
from toolchat.safety import one_line

ROLES = {"system", "developer", "user", "assistant", "tool"}
TOOL_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


class ApiError(Exception):
    """An error answered in OpenAI's shape: {"error": {"message", "type", "param", "code"}}."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        kind: str = "invalid_request_error",
        param: str | None = None,
        code: str | None = None,
        retry_after: int | None = None,
    ) -> None:
        super().__init__(message)
        self.status, self.message, self.kind, self.param, self.code = status, message, kind, param, code
        self.retry_after = retry_after

    def body(self) -> dict[str, Any]:
        return {"error": {"message": self.message, "type": self.kind, "param": self.param, "code": self.code}}

    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.retry_after)} if self.retry_after is not None else {}


def bad(message: str, param: str | None = None, code: str | None = None) -> ApiError:
    return ApiError(400, message, param=param, code=code)


QUOTED = 64  # characters of a client's value a 400 quotes: a name, never a 10 MB one sent back whole


def quoted(value: str) -> str:
    """A client's `value` as a message quotes it: one line, cut."""
    return one_line(value[:QUOTED]) + ("…" if len(value) > QUOTED else "")


@dataclass
class ChatRequest:
    """What one POST /v1/chat/completions asks for."""

    model: str | None
    messages: list[dict[str, Any]]
    stream: bool = False
    include_usage: bool = False
    tools: list[dict[str, Any]] = field(default_factory=list)  # the client's own tools
    tool_choice: str | dict[str, Any] | None = None
    temperature: float | None = None
    max_tokens: int | None = None

    @property
    def client_tool_names(self) -> list[str]:
        return [tool["function"]["name"] for tool in self.tools]


def parse_request(body: Any, server_tools: Iterable[str]) -> ChatRequest:
    """The body checked field by field; every problem is a 400 naming the field."""
    if not isinstance(body, dict):
        raise bad("the request body must be a JSON object")
    model = body.get("model")
    if model is not None and not isinstance(model, str):
        raise bad("'model' must be a string", "model")
    stream = _flag(body, "stream")
    options = body.get("stream_options")
    if options is not None and not isinstance(options, dict):
        raise bad("'stream_options' must be an object", "stream_options")
    if _number(body, "n", int, 1, None) not in (None, 1):  # `true` is no 1, nor 1.0 (OpenAI refuses both)
        raise bad("this server returns one choice: 'n' must be 1", "n")
    tools = _client_tools(body.get("tools"), set(server_tools))
    return ChatRequest(
        model=model,
        messages=_messages(body.get("messages")),
        stream=stream,
        include_usage=_flag(options or {}, "include_usage", "stream_options.include_usage"),
        tools=tools,
        tool_choice=_tool_choice(body.get("tool_choice"), set(server_tools) | {t["function"]["name"] for t in tools}),
        temperature=_number(body, "temperature", float, 0, 2),
        max_tokens=_number(body, "max_completion_tokens", int, 1, MAX_TOKENS)
        or _number(body, "max_tokens", int, 1, MAX_TOKENS),
    )


def _flag(body: dict[str, Any], key: str, name: str | None = None) -> bool:
    value = body.get(key)
    if value is not None and not isinstance(value, bool):
        raise bad(f"'{name or key}' must be true or false", name or key)
    return bool(value)


def _messages(value: Any) -> list[dict[str, Any]]:
    if not isinstance(value, list) or not value:
        raise bad("'messages' must be a non-empty list", "messages")
    messages = []
    for n, message in enumerate(value):
        where = f"messages[{n}]"
        if not isinstance(message, dict):
            raise bad(f"{where} must be an object", where)
        if message.get("role") not in ROLES:
            raise bad(f"{where}.role must be one of {', '.join(sorted(ROLES))}", f"{where}.role")
        content = message.get("content")
        if content is not None and not isinstance(content, (str, list)):
            raise bad(f"{where}.content must be a string or a list of parts", f"{where}.content")
        _check_fields(message, where)
        # the SDK sends back fields it parsed as null (refusal, audio...); upstreams reject some of them
        kept = {key: item for key, item in message.items() if item is not None}
        if isinstance(content, list) and content and all(_is_text(part) for part in content):
            kept["content"] = "".join(part["text"] for part in content)  # every backend reads a string
        if kept["role"] == "assistant":
            kept.setdefault("content", "")  # llama.cpp's server rejects a null content beside calls
            _take_reasoning(kept, where)
        messages.append(kept)
    return messages


def _check_fields(message: dict[str, Any], where: str) -> None:
    """The fields toolchat reads of a message (its calls, whose answer a tool message is), of the
    types they must have: a wrong one failed later, deep in the turn, as a 500."""
    for key in ("tool_call_id", "name"):
        if not _null_or(message.get(key), str):
            raise bad(f"{where}.{key} must be a string", f"{where}.{key}")
    calls = message.get("tool_calls")
    if not _null_or(calls, list):
        raise bad(f"{where}.tool_calls must be a list", f"{where}.tool_calls")
    for n, call in enumerate(calls or []):
        function = call.get("function") if isinstance(call, dict) else None
        if not (
            isinstance(function, dict)
            and isinstance(function.get("name"), str)
            and _null_or(call.get("id"), str)
            and _null_or(function.get("arguments"), (str, dict))
        ):
            shape = '{"id": ..., "type": "function", "function": {"name": ..., "arguments": ...}}'
            raise bad(f"{where}.tool_calls[{n}] must be {shape}", f"{where}.tool_calls[{n}]")


def _null_or(value: Any, kinds: type | tuple[type, ...]) -> bool:
    return value is None or isinstance(value, kinds)


def _take_reasoning(message: dict[str, Any], where: str) -> None:
    """A client's assistant message with its reasoning (`reasoning_content`, `reasoning`,
    `reasoning_details`) as toolchat's reasoning entry, passed back upstream in that field."""
    from toolchat.backends.base import REASONING_CONTENT, REASONING_FIELD, Reasoning

    raw = {key: message.pop(key) for key in (REASONING_CONTENT, REASONING_FIELD, "reasoning_details") if key in message}
    if not raw:
        return
    text = raw.get(REASONING_CONTENT, raw.get(REASONING_FIELD, ""))
    details = raw.get("reasoning_details")
    if not isinstance(text, str) or (details is not None and not isinstance(details, list)):
        raise bad(f"{where}: reasoning must be a string and reasoning_details a list", where)
    field = REASONING_CONTENT if REASONING_CONTENT in raw else REASONING_FIELD
    message["reasoning"] = Reasoning(text, field, details=details).as_entry()


def _is_text(part: Any) -> bool:
    return isinstance(part, dict) and part.get("type") == "text" and isinstance(part.get("text"), str)


def _client_tools(value: Any, server_tools: set[str]) -> list[dict[str, Any]]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise bad("'tools' must be a list", "tools")
    seen: set[str] = set()
    tools = []
    for n, tool in enumerate(value):
        function = tool.get("function") if isinstance(tool, dict) else None
        name = function.get("name") if isinstance(function, dict) else None
        if not isinstance(tool, dict) or tool.get("type", "function") != "function" or not isinstance(name, str):
            raise bad(f'tools[{n}] must be {{"type": "function", "function": {{"name": ...}}}}', f"tools[{n}]")
        if not TOOL_NAME.match(name):
            raise bad(
                f"tools[{n}]: the name '{quoted(name)}' must be 1-64 letters, digits, _ or -",
                f"tools[{n}].function.name",
            )
        if name in server_tools:
            raise bad(
                f"tools[{n}]: '{name}' is the name of a tool this server runs itself; rename yours",
                f"tools[{n}].function.name",
                "tool_name_conflict",
            )
        if name in seen:
            raise bad(f"tools[{n}]: two tools are named '{name}'", f"tools[{n}].function.name")
        seen.add(name)
        parameters = function.get("parameters") or {"type": "object", "properties": {}}
        if not isinstance(parameters, dict):
            raise bad(f"tools[{n}].function.parameters must be an object", f"tools[{n}].function.parameters")
        spec = {"name": name, "description": str(function.get("description") or ""), "parameters": parameters}
        tools.append({"type": "function", "function": spec})
    return tools


def _tool_choice(value: Any, offered: set[str]) -> str | dict[str, Any] | None:
    if value is None or value in ("auto", "none", "required"):
        return value
    function = value.get("function") if isinstance(value, dict) else None
    name = function.get("name") if isinstance(function, dict) else None
    if not isinstance(name, str):
        raise bad(
            '\'tool_choice\' must be auto, none, required or {"type": "function", "function": {"name": ...}}',
            "tool_choice",
        )
    if name not in offered:
        raise bad(f"'tool_choice' names '{quoted(name)}', which is not an offered tool", "tool_choice")
    return {"type": "function", "function": {"name": name}}


def _number(body: dict[str, Any], key: str, kind: type, low: float, high: float | None) -> Any:
    value = body.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or (kind is int and not isinstance(value, int)):
        raise bad(f"'{key}' must be {'an integer' if kind is int else 'a number'}", key)
    if value < low or (high is not None and value > high):
        raise bad(f"'{key}' must be at least {low}" + (f" and at most {high}" if high is not None else ""), key)
    return kind(value)


@dataclass
class ServerCall:
    """A call the server ran (or denied), for the `toolchat` extension field."""

    id: str
    name: str
    arguments: Any
    status: str
    seconds: float

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "arguments": self.arguments,
            "status": self.status,
            "seconds": round(self.seconds, 3),
        }


@dataclass
class Outcome:
    """How a request's turn ended: everything the final response or chunk says."""

    text: str = ""
    finish_reason: str = "stop"
    client_calls: list[ToolCall] = field(default_factory=list)
    calls: list[ServerCall] = field(default_factory=list)
    rounds: list[Usage] = field(default_factory=list)
    stopped: str = "answer"
    error: ApiError | None = None
    reasoning: str = ""  # every round's reasoning, streamed and sent as reasoning_content

    def extension(self) -> dict[str, Any]:
        return {"calls": [call.as_dict() for call in self.calls], "rounds": len(self.rounds), "stopped": self.stopped}


def usage_body(rounds: list[Usage]) -> dict[str, Any]:
    """OpenAI's usage object; a count the backend's server did not report is null, never 0."""
    total = summed(rounds)
    prompt, completion = total.prompt_tokens, total.completion_tokens
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": None if prompt is None or completion is None else prompt + completion,
        "prompt_tokens_details": {"cached_tokens": total.cached_tokens},
    }


class Reply:
    """The bodies of one response; every chunk shares its id, time and model."""

    def __init__(self, model: str, include_usage: bool = False, redactor: Redactor | None = None) -> None:
        self.redactor = redactor or Redactor()  # every body sent passes it: no secret leaves the server
        self.id = "chatcmpl-" + uuid.uuid4().hex[:24]
        self.created = int(time.time())
        self.model = model
        self.include_usage = include_usage  # then every chunk says "usage": null but the last
        # a text chunk is written around its text: the rest of it, redacted once, is the same in each
        head = dumps(self.redactor.redact_all(self._head("chat.completion.chunk")))
        self._before = f'data: {head[:-1]}, "choices": [{{"index": 0, "delta": {{'
        self._after = '}, "finish_reason": null, "logprobs": null}]' + (', "usage": null' if include_usage else "")

    def _head(self, kind: str) -> dict[str, Any]:
        return {"id": self.id, "object": kind, "created": self.created, "model": self.model}

    def completion(self, outcome: Outcome) -> dict[str, Any]:
        message: dict[str, Any] = {"role": "assistant", "content": outcome.text or None}
        if outcome.client_calls:
            message["tool_calls"] = [call.message_part() for call in outcome.client_calls]
        elif message["content"] is None:
            message["content"] = ""
        if outcome.reasoning:
            message["reasoning_content"] = outcome.reasoning
        choice = {"index": 0, "message": message, "finish_reason": outcome.finish_reason, "logprobs": None}
        body = {
            **self._head("chat.completion"),
            "choices": [choice],
            "usage": usage_body(outcome.rounds),
            "toolchat": outcome.extension(),
        }
        return self.redactor.redact_all(body)

    def chunk(self, delta: dict[str, Any], finish: str | None = None, **extra: Any) -> str:
        body = {
            **self._head("chat.completion.chunk"),
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}],
            **extra,
        }
        if self.include_usage:
            body["usage"] = None
        return event(self.redactor.redact_all(body))

    def text_chunk(self, kind: str, text: str) -> str:
        """The chunk of one piece of streamed text (`kind` "content" or "reasoning_content"), as
        `chunk` would write it; the text has passed the redactor already, as a stream (turn.py)."""
        return f'{self._before}"{kind}": {dumps(text)}{self._after}}}\n\n'

    def final_chunks(self, outcome: Outcome) -> list[str]:
        chunks = []
        if outcome.client_calls:
            parts = [{"index": n, **call.message_part()} for n, call in enumerate(outcome.client_calls)]
            chunks.append(self.chunk({"tool_calls": parts}))
        chunks.append(self.chunk({}, outcome.finish_reason, toolchat=outcome.extension()))
        if self.include_usage:
            chunks.append(
                event({**self._head("chat.completion.chunk"), "choices": [], "usage": usage_body(outcome.rounds)})
            )
        return chunks + [DONE]


DONE = "data: [DONE]\n\n"


def event(body: dict[str, Any]) -> str:
    return f"data: {dumps(body)}\n\n"


_SURROGATE = re.compile("[\ud800-\udfff]")


def dumps(body: Any) -> str:
    """JSON that is always valid UTF-8: a lone surrogate (from a model's or a tool's broken text,
    or the client's own) becomes U+FFFD instead of failing the response half-way."""
    return _SURROGATE.sub("\ufffd", json.dumps(body, ensure_ascii=False))
