"""Neutralising text toolchat did not write itself (from a server, model, tool, plugin or file):
before it reaches a terminal (`clean`), and before it is sent as UTF-8 (`scrub`). No Rich here,
so `ask` can use it without importing Rich."""

from __future__ import annotations

import re
from typing import Any

# C0 controls but tab and newline, DEL, the C1 range (which includes the 8-bit CSI), and the
# Unicode bidi controls, which reorder what is shown (a "Trojan Source" line reads as other code),
# and the Unicode line and paragraph separators (no terminal breaks the line; Rich counts no width)
_UNSAFE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


def _escaped(match: re.Match[str]) -> str:
    code = ord(match.group())
    return "\\x%02x" % code if code <= 0xFF else "\\u%04x" % code


def clean(text: str) -> str:
    """`text` with every control character made visible, so none reaches the terminal raw."""
    return _UNSAFE.sub(_escaped, text)


_SURROGATE = re.compile("[\ud800-\udfff]")  # json and Python join valid pairs: any left is lone
_NO_BYTE = re.compile("[\ud800-\udc7f\udd00-\udfff]")  # lone surrogates that no surrogate escape made


def scrub(value: Any) -> Any:
    """`value` (str, or lists and dicts of them) as text that always encodes as UTF-8: the bytes
    `os` kept as surrogate escapes (a file name that is not UTF-8) decoded with U+FFFD for what
    is not UTF-8, and any other lone surrogate (from a server, a tool) as U+FFFD. Unchanged
    objects are returned as they are."""
    if isinstance(value, str):
        if not _SURROGATE.search(value):
            return value
        return _NO_BYTE.sub("\ufffd", value).encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    if isinstance(value, list):
        return [scrub(item) for item in value]
    if isinstance(value, dict):
        return {scrub(key): scrub(item) for key, item in value.items()}
    return value
