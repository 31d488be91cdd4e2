"""A forced call (`--tool-choice NAME|required`) in the model's own format: a grammar that makes
the model write the call exactly as its chat template renders one, so the native parser reads it
and the next round's prompt repeats it token for token (KV cache reused). Formats not listed
here are forced through the generic JSON grammar instead."""

from __future__ import annotations

import json
from typing import Any

from toolchat.backends.generic import json_gbnf

# format -> (text before the call, key of the arguments, wrap calls in a JSON list, text after)
_WRAPPERS: dict[str, tuple[str, str, bool, str]] = {
    "hermes": ("<tool_call>\n", "arguments", False, "\n</tool_call>"),
    "llama3": ("", "parameters", False, ""),
    "mistral": ("[TOOL_CALLS]", "arguments", True, ""),
    "granite": ("<|tool_call|>", "arguments", True, ""),
}


def supports(fmt: str) -> bool:
    return fmt in _WRAPPERS


def call_gbnf(fmt: str, tools: list[dict[str, Any]], tool_choice: Any) -> str:
    """The grammar of one forced call to the chosen tool (or any offered tool for "required")."""
    before, key, listed, after = _WRAPPERS[fmt]
    functions = [t["function"] for t in tools]
    if isinstance(tool_choice, dict):
        functions = [f for f in functions if f["name"] == tool_choice["function"]["name"]]
    options = [
        {
            "type": "object",
            "properties": {
                "name": {"const": f["name"]},
                key: f.get("parameters") or {"type": "object", "properties": {}},
            },
            "required": ["name", key],
        }
        for f in functions
    ]
    schema: dict[str, Any] = options[0] if len(options) == 1 else {"anyOf": options}
    if listed:
        schema = {"type": "array", "items": schema, "minItems": 1, "maxItems": 1}
    rules = _tojson_spacing(json_gbnf(schema)).replace("root ::=", "forced-call ::=", 1)
    root = " ".join([*([json.dumps(before)] if before else []), "forced-call", *([json.dumps(after)] if after else [])])
    return f"root ::= {root}\n{rules}"


def _tojson_spacing(gbnf: str) -> str:
    """JSON spaced as templates' `tojson` writes it ({"a": 1, "b": [2, 3]}), not llama.cpp's
    optional spaces: what the model writes is then what the next prompt renders."""
    return gbnf.replace(' ":" space', ' ": "').replace(' "," space', ' ", "').replace('space ::= " "?', 'space ::= ""')
