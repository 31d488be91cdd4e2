"""Google-style docstring parsing: the description and one description per argument."""

from __future__ import annotations

import ast
import inspect
import json
import re
from dataclasses import dataclass, field
from typing import Any

_SECTION = re.compile(
    r"^(Args|Arguments|Parameters|Params|Keyword Args|Returns?|Yields?|Raises|Examples?|Notes?|"
    r"Attributes|See Also|Todo|Warnings?):\s*$"
)
_ARG_SECTIONS = {"Args", "Arguments", "Parameters", "Params", "Keyword Args"}
_ARG_LINE = re.compile(r"^(\*{0,2}\w+)\s*(?:\([^)]*\))?\s*:\s*(.*)$")
_CHOICES = re.compile(r"\(choices:\s*(.*?)\)\s*$", re.IGNORECASE | re.DOTALL)


@dataclass
class Docstring:
    description: str = ""
    args: dict[str, str] = field(default_factory=dict)
    choices: dict[str, list[Any]] = field(default_factory=dict)


def parse_docstring(doc: str | None) -> Docstring:
    """Split a Google-style docstring into its description and its `Args:` entries."""
    if not doc:
        return Docstring()
    lines = inspect.cleandoc(doc).splitlines()
    result = Docstring()
    description: list[str] = []
    section: str | None = None
    current: str | None = None
    arg_indent: int | None = None
    for line in lines:
        header = _SECTION.match(line)
        if header:
            section, current, arg_indent = header.group(1), None, None
            continue
        if section is None:
            description.append(line)
        elif section in _ARG_SECTIONS:
            current, arg_indent = _arg_line(result, line, current, arg_indent)
    result.description = "\n".join(description).strip()
    for name, text in list(result.args.items()):
        match = _CHOICES.search(text)
        if match:
            values = _literal_list(match.group(1))
            if values is not None:
                result.choices[name] = values
                result.args[name] = text[: match.start()].strip()
    return result


def _arg_line(
    result: Docstring, line: str, current: str | None, arg_indent: int | None
) -> tuple[str | None, int | None]:
    """Read one line of an Args section: a new argument or a continuation of the last one."""
    if not line.strip():
        return current, arg_indent
    indent = len(line) - len(line.lstrip())
    match = _ARG_LINE.match(line.strip())
    if match and (arg_indent is None or indent <= arg_indent):
        name = match.group(1).lstrip("*")
        result.args[name] = match.group(2).strip()
        return name, indent
    if current is not None:
        result.args[current] = f"{result.args[current]} {line.strip()}".strip()
    return current, arg_indent


def _literal_list(text: str) -> list[Any] | None:
    for parse in (json.loads, ast.literal_eval):
        try:
            value = parse(text)
        except (ValueError, SyntaxError):
            continue
        if isinstance(value, (list, tuple)):
            return list(value)
    return None
