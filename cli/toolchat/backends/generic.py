"""Tool calls for models with no native format (base models, Gemma 3): the prompt describes the
tools, and a grammar built from their JSON schemas constrains the output to either
{"tool_call": {"name": ..., "arguments": {...}}} or {"response": "..."} (llama.cpp's "Generic")."""

from __future__ import annotations

import json
import re
from typing import Any

from toolchat.backends.parsers.base import ParsedCall


def instructions(tools: list[dict[str, Any]]) -> str:
    listed = "\n".join(json.dumps(t["function"], ensure_ascii=False) for t in tools)
    return (
        "You can call tools. To call one, reply with only this JSON: "
        '{"tool_call": {"name": "<tool name>", "arguments": {<arguments>}}}. '
        'To answer the user, reply with only {"response": "<your answer>"}. '
        "After a tool result, answer the user with it.\n"
        f"Tools:\n{listed}"
    )


def output_schema(tools: list[dict[str, Any]], tool_choice: Any) -> dict[str, Any]:
    """The JSON schema of an allowed reply, for the grammar."""
    names = [t["function"]["name"] for t in tools]
    if isinstance(tool_choice, dict):
        names = [tool_choice["function"]["name"]]
    calls = [_call_schema(t["function"]) for t in tools if t["function"]["name"] in names]
    response = {"type": "object", "properties": {"response": {"type": "string"}}, "required": ["response"]}
    if tool_choice == "none":
        return response
    options = calls if (tool_choice == "required" or isinstance(tool_choice, dict)) else [*calls, response]
    return options[0] if len(options) == 1 else {"anyOf": options}


def _call_schema(function: dict[str, Any]) -> dict[str, Any]:
    parameters = function.get("parameters") or {"type": "object", "properties": {}}
    return {
        "type": "object",
        "properties": {
            "tool_call": {
                "type": "object",
                "properties": {"name": {"const": function["name"]}, "arguments": parameters},
                "required": ["name", "arguments"],
            }
        },
        "required": ["tool_call"],
    }


def json_gbnf(schema: dict[str, Any]) -> str:
    """llama.cpp's grammar for a JSON schema, with strings kept to valid JSON: its own lets raw
    control characters (newlines) into strings, where a small model then rambles on for pages."""
    from llama_cpp.llama_grammar import json_schema_to_gbnf

    return json_schema_to_gbnf(json.dumps(schema)).replace('char ::= [^"\\\\] |', 'char ::= [^"\\\\\\x00-\\x1F\\x7F] |')


def parse_output(text: str) -> tuple[str, list[ParsedCall]]:
    try:
        value = json.loads(text, strict=False)  # raw newlines in strings, as some grammars allow
    except ValueError:
        return text, []  # cut off by max_tokens: keep what was written
    if isinstance(value, dict) and isinstance(value.get("tool_call"), dict):
        call = value["tool_call"]
        return "", [ParsedCall(str(call.get("name", "")), json.dumps(call.get("arguments", {}), ensure_ascii=False))]
    if isinstance(value, dict) and isinstance(value.get("response"), str):
        return value["response"], []
    return text, []


def render_call(name: str, arguments: str) -> str:
    """An earlier call as the model would have written it, for the transcript."""
    try:
        parsed: Any = json.loads(arguments) if arguments else {}
    except ValueError:
        parsed = arguments
    return json.dumps({"tool_call": {"name": name, "arguments": parsed}}, ensure_ascii=False)


_OPENING = re.compile(r'^\s*\{\s*"response"\s*:\s*"')
_ESCAPES = {'"': '"', "\\": "\\", "/": "/", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t"}


class ResponseStreamer:
    """Streams the string inside {"response": "..."} as it is generated, decoding JSON escapes
    and holding back an escape split across tokens."""

    def __init__(self) -> None:
        self.raw = ""
        self.position: int | None = None  # where the string's characters start in raw
        self.done = False

    def feed(self, text: str) -> str:
        self.raw += text
        if self.done:
            return ""
        if self.position is None:
            match = _OPENING.match(self.raw)
            if not match:
                return ""
            self.position = match.end()
        out: list[str] = []
        while self.position < len(self.raw):
            char = self.raw[self.position]
            if char == '"':
                self.done = True
                break
            if char != "\\":
                out.append(char)
                self.position += 1
                continue
            escape = self.raw[self.position + 1 : self.position + 2]
            if not escape:
                break
            if escape == "u":
                digits = self.raw[self.position + 2 : self.position + 6]
                if len(digits) < 4:
                    break
                out.append(chr(int(digits, 16)) if re.fullmatch(r"[0-9a-fA-F]{4}", digits) else "")
                self.position += 6
                continue
            out.append(_ESCAPES.get(escape, escape))
            self.position += 2
        return "".join(out)
