"""The native tool-call formats: detection from the chat template and one parser per family."""

from __future__ import annotations

import ast
import json
import re
from collections.abc import Callable
from typing import Any

from toolchat.backends.parsers.base import (
    Marker,
    MarkerParser,
    ParsedCall,
    StreamParser,
    as_arguments,
    dump,
    loads_lenient,
)
from toolchat.backends.parsers.harmony import HarmonyParser
from toolchat.backends.parsers.leading import LeadingParser
from toolchat.backends.parsers.xml import xml_calls

Tools = dict[str, dict[str, Any]]  # name -> parameters schema
Region = tuple[list[ParsedCall], str]  # the calls, and the text after them that is content


def _call_from_object(value: Any, tools: Tools | None = None) -> ParsedCall | None:
    if isinstance(value, dict) and isinstance(value.get("function"), dict) and "name" not in value:
        value = value["function"]  # {"type": "function", "function": {"name": ..., "arguments": ...}}
    if not isinstance(value, dict) or not isinstance(value.get("name"), str) or not value["name"].strip():
        return None
    if tools is not None and value["name"] not in tools:
        return None
    arguments = as_arguments(value.get("arguments", value.get("parameters", {})))
    return None if arguments is None else ParsedCall(value["name"], arguments)


_SEPARATORS = " \n\t\r;,"


def _json_calls(text: str, tools: Tools | None = None, closed: bool = True) -> Region | None:
    """One object, a list of objects, or objects joined by `;` (Llama 3.x); then, maybe, prose.
    An item that is not a call is dropped and its siblings kept."""
    items, rest = _json_values(text)
    if not items:
        value = loads_lenient(text) if text.lstrip().startswith(("{", "[")) else None
        if value is None:
            return None
        items, rest = [value], ""
    flat = [i for item in items for i in (item if isinstance(item, list) else [item])]
    calls = [c for c in (_call_from_object(item, tools) for item in flat) if c is not None]
    return (calls, rest) if calls else None


def _json_values(text: str) -> tuple[list[Any], str]:
    """The JSON values at the start of `text`, and what follows them."""
    decoder = json.JSONDecoder(parse_constant=_not_json)
    values: list[Any] = []
    at = len(text) - len(text.lstrip())
    while at < len(text) and text[at] in "{[":
        try:
            value, end = decoder.raw_decode(text, at)
        except (ValueError, RecursionError):
            break
        values.append(value)
        at = end
        while at < len(text) and text[at] in _SEPARATORS:
            at += 1
    if not values:
        return [], text
    return values, text[at:]


def _not_json(name: str) -> Any:
    raise ValueError(name)


# Hermes / Qwen 2.5 / Qwen 3 JSON, and Qwen3-Coder XML, share <tool_call> ... </tool_call>;
# Qwen3-Coder models also drop the wrapper and write <function=...>...</function> bare.
def _tool_call_region(tools: Tools) -> Callable[[str, bool], Region | None]:
    def parse(region: str, closed: bool) -> Region | None:
        if region.lstrip().startswith("<function="):
            return xml_calls(region, tools, closed)
        return _json_calls(region, closed=closed)

    return parse


def _bare_function(tools: Tools) -> Callable[[str, bool], Region | None]:
    def parse(region: str, closed: bool) -> Region | None:
        return xml_calls("<function=" + region + ("</function>" if closed else ""), tools, closed)

    return parse


# Mistral: [TOOL_CALLS][{...}] (v0.3, Nemo) | [TOOL_CALLS]f{...} (v11) | [TOOL_CALLS]f[ARGS]{...}
_CALL_ID = re.compile(r"\[CALL_ID\]\s*[\w-]*")


def _mistral_region(region: str, closed: bool) -> Region | None:
    if region.lstrip().startswith("["):
        return _json_calls(region, closed=closed)
    calls: list[ParsedCall] = []
    rest = ""
    for piece in region.split("[TOOL_CALLS]"):
        if not piece.strip():
            continue
        name, sep, arguments = piece.partition("[ARGS]")
        if not sep:
            brace = piece.find("{")
            if brace <= 0:
                return None
            name, arguments = piece[:brace], piece[brace:]
        name = _CALL_ID.sub("", name).strip()
        values, rest = _json_values(arguments)
        value = values[0] if len(values) == 1 else (loads_lenient(arguments) if not values else None)
        if not values:
            rest = ""
        text = dump(value) if isinstance(value, dict) else None
        if text is None or not re.fullmatch(r"[\w.-]+", name):
            return None
        calls.append(ParsedCall(name, text))
    return (calls, rest) if calls else None


# FunctionGemma: call:f{city:<escape>NYC<escape>,n:3}
_ESCAPED = re.compile(r"<escape>(.*?)<escape>", re.DOTALL)
_BARE_KEY = re.compile(r"([{,]\s*)([A-Za-z_][\w.-]*)\s*:")


def _function_gemma_region(region: str, closed: bool) -> Region | None:
    match = re.match(r"\s*call:([\w.-]+)\s*(\{.*)", region, re.DOTALL)
    if not match:
        return None
    strings: list[str] = []

    def hide(found: re.Match[str]) -> str:
        strings.append(found.group(1))
        return f"\x00{len(strings) - 1}\x00"

    raw = match.group(2).replace("\x00", "")
    body = _ESCAPED.sub(hide, raw.strip())
    if "<escape>" in body:
        return None  # an escaped string that never ends
    body = _BARE_KEY.sub(lambda m: f'{m.group(1)}"{m.group(2)}":', body)
    body = re.sub(r"\x00(\d+)\x00", lambda m: json.dumps(strings[int(m.group(1))]), body)
    values, rest = _json_values(body)
    value = values[0] if values else (None if closed else loads_lenient(body))
    text = dump(value) if isinstance(value, dict) else None
    if text is None:
        return None
    return [ParsedCall(match.group(1), text)], rest if values else ""


# Pythonic (Llama 3.2 alt, Llama 4, LFM2): [f(city="SF"), g(x=1)], literals only
_PYTHON_MARKERS = ("<|python_start|>", "<|python_end|>", "<|tool_call_start|>", "<|tool_call_end|>")
_JSON_NAMES = {"true": True, "false": False, "null": None}


def _pythonic_calls(text: str, tools: Tools) -> Region | None:
    """A list of calls, then maybe prose. A call that cannot be read (a syntax error, a value
    with no JSON form, an unknown tool) is dropped and its siblings are kept."""
    for marker in _PYTHON_MARKERS:
        text = text.replace(marker, "")
    text = text.strip()
    if not text:
        return None
    pieces, rest = _top_level(text) if text.startswith("[") else ([text], "")
    if pieces is None:
        return None
    calls = [c for c in (_pythonic_call(p, tools) for p in pieces) if c is not None]
    return (calls, rest) if calls else None


def _top_level(text: str) -> tuple[list[str] | None, str]:
    """The comma-separated items of the list `text` opens, and the text after it."""
    depth, quote, at, start = 0, "", 0, 1
    pieces: list[str] = []
    while at < len(text):
        char = text[at]
        if quote:
            if char == "\\":
                at += 1
            elif text.startswith(quote, at):
                at += len(quote) - 1
                quote = ""
        elif char in "'\"":
            quote = char * 3 if text.startswith(char * 3, at) else char
            at += len(quote) - 1
        elif char in "([{":
            depth += 1
        elif char in ")]}":
            depth -= 1
            if depth == 0:
                pieces.append(text[start:at])
                return [p for p in pieces if p.strip()], text[at + 1 :]
        elif char == "," and depth == 1:
            pieces.append(text[start:at])
            start = at + 1
        at += 1
    pieces.append(text[start:])  # an unterminated list: its items so far
    return [p for p in pieces if p.strip()], ""


def _pythonic_call(text: str, tools: Tools) -> ParsedCall | None:
    try:
        item = ast.parse(text.strip(), mode="eval").body
    except (SyntaxError, ValueError, MemoryError, RecursionError):
        return None
    if not (isinstance(item, ast.Call) and isinstance(item.func, (ast.Name, ast.Attribute))) or item.args:
        return None
    name = ast.unparse(item.func)
    if name not in tools or any(kw.arg is None for kw in item.keywords):
        return None
    try:
        arguments = {kw.arg: _literal(kw.value) for kw in item.keywords}
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return None
    text_arguments = dump(arguments)
    return None if text_arguments is None else ParsedCall(name, text_arguments)


def _literal(node: ast.expr) -> Any:
    """A Python literal, and the JSON words true/false/null that models write in Python calls."""
    if isinstance(node, ast.Name) and node.id in _JSON_NAMES:
        return _JSON_NAMES[node.id]
    if isinstance(node, ast.List):
        return [_literal(e) for e in node.elts]
    if isinstance(node, ast.Dict):
        return {_literal(k) if k is not None else None: _literal(v) for k, v in zip(node.keys, node.values)}
    return ast.literal_eval(node)


def _hermes(tools: Tools) -> StreamParser:
    return MarkerParser(
        [
            Marker("<tool_call>", "</tool_call>", _tool_call_region(tools)),
            Marker("<function=", "</function>", _bare_function(tools)),
        ]
    )


def _mistral(tools: Tools) -> StreamParser:
    return MarkerParser("[TOOL_CALLS]", None, _mistral_region)


def _llama3(tools: Tools) -> StreamParser:
    """<|python_tag|>{...}, a bare {...} that is the whole output, or one after prose (then only
    for a tool that exists: an answer that shows JSON is not a call)."""
    tagged = MarkerParser(
        [
            Marker("<|python_tag|>", None, lambda region, closed: _json_calls(region, closed=closed)),
            Marker('{"name"', None, lambda region, closed: _json_calls('{"name"' + region, tools, closed)),
        ]
    )
    return LeadingParser("{", lambda text: _json_calls(text, tools), tagged)


def _pythonic(tools: Tools) -> StreamParser:
    plain = MarkerParser("<|python_start|>", "<|python_end|>", lambda region, closed: _pythonic_calls(region, tools))
    return LeadingParser("[", lambda text: _pythonic_calls(text, tools), plain)


def _function_gemma(tools: Tools) -> StreamParser:
    return MarkerParser("<start_function_call>", "<end_function_call>", _function_gemma_region)


def _granite_region(region: str, closed: bool) -> Region | None:
    """Granite 3.0 <|tool_call|>[...], Granite 3.1 <tool_call>[...] (an end tag is optional)."""
    parsed = _json_calls(region, closed=closed)
    if parsed is None:
        return None
    calls, rest = parsed
    stripped = rest.lstrip()
    return calls, stripped[len("</tool_call>") :] if stripped.startswith("</tool_call>") else rest


def _granite(tools: Tools) -> StreamParser:
    tagged = MarkerParser(
        [Marker("<|tool_call|>", None, _granite_region), Marker("<tool_call>", None, _granite_region)]
    )
    return LeadingParser("[", lambda text: _json_calls(text, tools), tagged)  # the tag is optional


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
