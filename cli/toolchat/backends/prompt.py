"""Rendering a conversation into the prompt text a local model reads: the GGUF's own chat
template in a sandboxed Jinja environment, or, for a file with none, a template chosen by
architecture. Rendering is stable (no clock in it unless the model's template asks), so each
round shares the longest possible token prefix with the last and reuses its KV cache."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from toolchat.backends import generic
from toolchat.errors import BackendError


class GemmaTurns:
    """The Gemma turn format, for gemma-family files with no template (the bundled model)."""

    stop = ["<end_of_turn>"]

    def render(self, messages: list[dict[str, Any]], add_generation_prompt: bool = True) -> str:
        parts = ["<bos>"]
        system = ""
        for message in messages:
            role, content = message["role"], message.get("content") or ""
            if role == "system":
                system = content + "\n\n"
                continue
            speaker = "model" if role == "assistant" else "user"
            if speaker == "user" and system:
                content, system = system + content, ""
            parts.append(f"<start_of_turn>{speaker}\n{content}<end_of_turn>\n")
        if add_generation_prompt:
            parts.append("<start_of_turn>model\n")
        return "".join(parts)


class ChatML:
    """The fallback for other architectures with no template."""

    stop = ["<|im_end|>"]

    def render(self, messages: list[dict[str, Any]], add_generation_prompt: bool = True) -> str:
        parts = [f"<|im_start|>{m['role']}\n{m.get('content') or ''}<|im_end|>\n" for m in messages]
        if add_generation_prompt:
            parts.append("<|im_start|>assistant\n")
        return "".join(parts)


class JinjaTemplate:
    """The model's own template, sandboxed: a GGUF is untrusted input."""

    def __init__(self, source: str, bos_token: str, eos_token: str) -> None:
        from jinja2.exceptions import TemplateError
        from jinja2.sandbox import ImmutableSandboxedEnvironment

        self._error = TemplateError
        env = ImmutableSandboxedEnvironment(
            trim_blocks=True, lstrip_blocks=True, extensions=["jinja2.ext.loopcontrols"]
        )
        env.filters["tojson"] = _tojson
        env.globals["raise_exception"] = _raise
        env.globals["strftime_now"] = lambda fmt: datetime.now().strftime(fmt)
        try:
            self.template = env.from_string(source)
        except TemplateError as exc:
            raise BackendError(f"the model's chat template does not compile: {exc}") from None
        self.bos, self.eos = bos_token, eos_token
        # the template's own end-of-turn markers too: a GGUF's EOS token is not always the one its
        # template ends turns with
        self.stop = [eos_token] if eos_token else []
        self.stop += [marker for marker in _TURN_ENDS if marker in source and marker != eos_token]

    def render(
        self,
        messages: list[dict[str, Any]],
        tools: list[dict[str, Any]] | None = None,
        add_generation_prompt: bool = True,
    ) -> str:
        try:
            return self.template.render(
                messages=_for_template(messages),
                tools=tools or None,
                add_generation_prompt=add_generation_prompt,
                bos_token=self.bos,
                eos_token=self.eos,
            )
        except self._error as exc:
            raise BackendError(f"the model's chat template failed on this conversation: {exc}") from None


_TURN_ENDS = ("<|im_end|>", "<|eot_id|>", "<|eom_id|>", "<end_of_turn>", "</s>")


def generic_messages(
    messages: list[dict[str, Any]], tools: list[dict[str, Any]], raw: dict[str, str]
) -> list[dict[str, Any]]:
    """The conversation for a model with no native tool format: tool instructions in the system
    message, earlier calls as the JSON it wrote, tool results as user turns."""
    out: list[dict[str, Any]] = []
    system = "\n\n".join(
        filter(
            None,
            [
                next((m.get("content") for m in messages if m["role"] == "system"), ""),
                generic.instructions(tools) if tools else "",
            ],
        )
    )
    if system:
        out.append({"role": "system", "content": system})
    names = {}
    for message in messages:
        role = message["role"]
        if role == "system":
            continue
        if role == "assistant" and message.get("tool_calls"):
            key = raw_key(message)
            text = raw.get(key) or "\n".join(
                generic.render_call(c["function"]["name"], c["function"]["arguments"]) for c in message["tool_calls"]
            )
            for call in message["tool_calls"]:
                names[call["id"]] = call["function"]["name"]
            out.append({"role": "assistant", "content": text})
        elif role == "tool":
            name = names.get(message.get("tool_call_id"), "the tool")
            _append_user(out, f"Result of {name}:\n{message.get('content') or ''}")
        elif role == "user":
            _append_user(out, message.get("content") or "")
        else:
            out.append({"role": role, "content": message.get("content") or ""})
    return out


def raw_key(message: dict[str, Any]) -> str:
    return json.dumps(message.get("tool_calls"), sort_keys=True)


def _append_user(out: list[dict[str, Any]], text: str) -> None:
    if out and out[-1]["role"] == "user":  # templates like Gemma's insist on alternation
        out[-1] = {"role": "user", "content": out[-1]["content"] + "\n\n" + text}
    else:
        out.append({"role": "user", "content": text})


def _for_template(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """HF templates expect tool-call arguments as objects, not JSON strings, and reasoning where
    they read it: `reasoning_content` (Qwen3, DeepSeek-R1, GLM), `thinking` (gpt-oss). Which
    earlier reasoning a prompt keeps is the template's own rule."""
    result = []
    for message in messages:
        if "reasoning" in message:
            message = dict(message)
            entry = message.pop("reasoning")
            text = entry.get("text") if isinstance(entry, dict) else None
            if isinstance(text, str) and text and message.get("role") == "assistant":
                message["reasoning_content"] = text
                message["thinking"] = text
        if message.get("tool_calls"):
            message = dict(message)
            message["tool_calls"] = [
                {**call, "function": {**call["function"], "arguments": _maybe_json(call["function"]["arguments"])}}
                for call in message["tool_calls"]
            ]
        result.append(message)
    return result


def _maybe_json(text: Any) -> Any:
    """A call's arguments as the object templates iterate (`arguments|items`): arguments that are
    no JSON object (a model's `{"city": Paris}`, answered as invalid arguments; JSON nested deeper
    than Python parses) render as {}, as they go back to a server (backends/openai_wire.py)."""
    if isinstance(text, dict):
        return text
    try:
        value = json.loads(text) if isinstance(text, str) else None
    except (ValueError, RecursionError):
        return {}
    return value if isinstance(value, dict) else {}


def _tojson(value: Any, indent: int | None = None, ensure_ascii: bool = False, sort_keys: bool = False) -> str:
    return json.dumps(value, indent=indent, ensure_ascii=ensure_ascii, sort_keys=sort_keys)


def _raise(message: str) -> None:
    from jinja2.exceptions import TemplateError

    raise TemplateError(message)
