"""The native tool-call formats: detection from the chat template and one parser per family."""

from __future__ import annotations

import ast
import json
import re
from collections.abc import Callable
from typing import Any

from toolchat.backends.parsers.base import MarkerParser, ParsedCall, StreamParser, as_arguments, loads_lenient
from toolchat.backends.parsers.harmony import HarmonyParser
from toolchat.backends.parsers.leading import LeadingParser

Tools = dict[str, dict[str, Any]]  # name -> parameters schema


def _call_from_object(value: Any, tools: Tools | None = None) -> ParsedCall | None:
    if not isinstance(value, dict) or not isinstance(value.get("name"), str):
        return None
    if tools is not None and value["name"] not in tools:
        return None
    arguments = value.get("arguments", value.get("parameters", {}))
    return ParsedCall(value["name"], as_arguments(arguments))


def _json_calls(text: str, tools: Tools | None = None) -> list[ParsedCall] | None:
    """One object, a list of objects, or objects joined by `;` (Llama 3.x)."""
    value = loads_lenient(text)
    if value is None:
        value, decoder, at = [], json.JSONDecoder(), 0
        text = text.strip()
        while at < len(text):
            try:
                item, end = decoder.raw_decode(text, at)
            except ValueError:
                return None
            value.append(item)
            at = end
            while at < len(text) and text[at] in " \n\t;,":
                at += 1
    items = value if isinstance(value, list) else [value]
    calls = [_call_from_object(item, tools) for item in items]
    if not calls or any(c is None for c in calls):
        return None
    return calls  # type: ignore[return-value]


# Hermes / Qwen 2.5 / Qwen 3 JSON, and Qwen3-Coder XML, share <tool_call> ... </tool_call>
_FUNCTION = re.compile(r"<function=([^>\s]+)>(.*?)(?:</function>|$)", re.DOTALL)
_PARAMETER = re.compile(r"<parameter=([^>\s]+)>\n?(.*?)\n?(?:</parameter>|(?=<parameter=)|$)", re.DOTALL)


def _tool_call_region(tools: Tools) -> Callable[[str, bool], list[ParsedCall] | None]:
    def parse(region: str, closed: bool) -> list[ParsedCall] | None:
        if "<function=" in region:
            return _xml_calls(region, tools)
        return _json_calls(region)

    return parse


def _xml_calls(region: str, tools: Tools) -> list[ParsedCall] | None:
    calls = []
    for name, body in _FUNCTION.findall(region):
        schema = tools.get(name, {}).get("properties", {})
        arguments = {key: _cast(value, schema.get(key, {})) for key, value in _PARAMETER.findall(body)}
        calls.append(ParsedCall(name, json.dumps(arguments, ensure_ascii=False)))
    return calls or None


def _cast(value: str, schema: dict[str, Any]) -> Any:
    """Qwen3-Coder writes every value as text; cast it by the parameter's schema."""
    kinds = schema.get("type", "string")
    kinds = kinds if isinstance(kinds, list) else [kinds]
    stripped = value.strip()
    for kind in kinds:
        try:
            if kind == "integer":
                return int(stripped)
            if kind == "number":
                return float(stripped)
            if kind == "boolean" and stripped.lower() in ("true", "false"):
                return stripped.lower() == "true"
            if kind in ("object", "array"):
                return json.loads(stripped)
            if kind == "null" and stripped.lower() in ("null", "none"):
                return None
        except ValueError:
            continue
    return value


# Mistral: [TOOL_CALLS][{...}] (v0.3, Nemo) | [TOOL_CALLS]f{...} (v11) | [TOOL_CALLS]f[ARGS]{...}
def _mistral_region(region: str, closed: bool) -> list[ParsedCall] | None:
    region = region.strip()
    if region.startswith("["):
        return _json_calls(region)
    calls = []
    for piece in filter(None, (p.strip() for p in region.split("[TOOL_CALLS]"))):
        name, sep, arguments = piece.partition("[ARGS]")
        if not sep:
            brace = piece.find("{")
            if brace <= 0:
                return None
            name, arguments = piece[:brace], piece[brace:]
        value = loads_lenient(arguments)
        if not isinstance(value, dict) or not name.strip():
            return None
        calls.append(ParsedCall(name.strip(), json.dumps(value, ensure_ascii=False)))
    return calls or None


# FunctionGemma: call:f{city:<escape>NYC<escape>,n:3}
_ESCAPED = re.compile(r"<escape>(.*?)<escape>", re.DOTALL)
_BARE_KEY = re.compile(r"([{,]\s*)([A-Za-z_][\w.-]*)\s*:")


def _function_gemma_region(region: str, closed: bool) -> list[ParsedCall] | None:
    match = re.match(r"\s*call:([\w.-]+)\s*(\{.*)", region, re.DOTALL)
    if not match:
        return None
    strings: list[str] = []

    def hide(found: re.Match[str]) -> str:
        strings.append(found.group(1))
        return f"\x00{len(strings) - 1}\x00"

    body = _ESCAPED.sub(hide, match.group(2).strip())
    body = _BARE_KEY.sub(lambda m: f'{m.group(1)}"{m.group(2)}":', body)
    body = re.sub(r"\x00(\d+)\x00", lambda m: json.dumps(strings[int(m.group(1))]), body)
    value = loads_lenient(body)
    if not isinstance(value, dict):
        return None
    return [ParsedCall(match.group(1), json.dumps(value, ensure_ascii=False))]


# Pythonic (Llama 3.2 alt, Llama 4, LFM2): [f(city="SF"), g(x=1)], literals only
def _pythonic_calls(text: str, tools: Tools) -> list[ParsedCall] | None:
    text = text.strip()
    for marker in ("<|python_start|>", "<|python_end|>", "<|tool_call_start|>", "<|tool_call_end|>"):
        text = text.replace(marker, "")
    try:
        tree = ast.parse(text.strip(), mode="eval").body
    except SyntaxError:
        return None
    items = tree.elts if isinstance(tree, (ast.List, ast.Tuple)) else [tree]
    calls = []
    for item in items:
        if not (isinstance(item, ast.Call) and isinstance(item.func, (ast.Name, ast.Attribute))) or item.args:
            return None
        name = ast.unparse(item.func)
        if name not in tools:
            return None
        try:
            arguments = {kw.arg: ast.literal_eval(kw.value) for kw in item.keywords if kw.arg}
        except ValueError:
            return None
        calls.append(ParsedCall(name, json.dumps(arguments, ensure_ascii=False)))
    return calls or None


def _hermes(tools: Tools) -> StreamParser:
    return MarkerParser("<tool_call>", "</tool_call>", _tool_call_region(tools))


def _mistral(tools: Tools) -> StreamParser:
    return MarkerParser("[TOOL_CALLS]", None, _mistral_region)


def _llama3(tools: Tools) -> StreamParser:
    tagged = MarkerParser("<|python_tag|>", None, lambda region, closed: _json_calls(region))
    return LeadingParser("{", lambda text: _json_calls(text, tools), tagged)


def _pythonic(tools: Tools) -> StreamParser:
    plain = MarkerParser("<|python_start|>", "<|python_end|>", lambda region, closed: _pythonic_calls(region, tools))
    return LeadingParser("[", lambda text: _pythonic_calls(text, tools), plain)


def _function_gemma(tools: Tools) -> StreamParser:
    return MarkerParser("<start_function_call>", "<end_function_call>", _function_gemma_region)


def _granite(tools: Tools) -> StreamParser:
    return MarkerParser("<|tool_call|>", None, lambda region, closed: _json_calls(region))


def _harmony(tools: Tools) -> StreamParser:
    return HarmonyParser()


FORMATS: dict[str, Callable[[Tools], StreamParser]] = {
    "hermes": _hermes,
    "qwen3_coder": _hermes,
    "mistral": _mistral,
    "llama3": _llama3,
    "pythonic": _pythonic,
    "function_gemma": _function_gemma,
    "granite": _granite,
    "harmony": _harmony,
}

# Checked in order: the first marker found in the chat template decides the format.
_DETECT = [
    ("harmony", ("<|channel|>", "to=functions.")),
    ("qwen3_coder", ("<function=",)),
    ("hermes", ("<tool_call>",)),
    ("mistral", ("[TOOL_CALLS]",)),
    ("function_gemma", ("<start_function_call>",)),
    ("granite", ("<|tool_call|>",)),
    ("pythonic", ("<|python_start|>", "[func_name1(")),
    ("llama3", ("<|python_tag|>", "ipython")),
]


def detect_format(template: str | None) -> str:
    """The native tool-call format a chat template uses, or "generic" (grammar) for none."""
    if template:
        for name, markers in _DETECT:
            if any(marker in template for marker in markers):
                return name
    return "generic"


def make_parser(fmt: str, tools: Tools) -> StreamParser:
    return FORMATS[fmt](tools)
