"""Neutralising text toolchat did not write itself (from a server, model, tool, plugin or file):
before it reaches a terminal (`clean`), and before it is sent as UTF-8 (`scrub`). No Rich here,
so `ask` can use it without importing Rich."""

from __future__ import annotations

import json
import math
import re
from typing import Any

# C0 controls but tab and newline, DEL, the C1 range (which includes the 8-bit CSI), and the
# Unicode bidi controls, which reorder what is shown (a "Trojan Source" line reads as other code),
# and the Unicode line and paragraph separators (no terminal breaks the line; Rich counts no width),
# and lone surrogates (the bytes of a file name that is not UTF-8, which no terminal should get raw)
_CONTROLS = "\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069\ud800-\udfff"
_UNSAFE = re.compile(f"[{_CONTROLS}]")
_UNSAFE_IN_A_LINE = re.compile(f"[\t\n{_CONTROLS}]")


def _escaped(match: re.Match[str]) -> str:
    code = ord(match.group())
    return "\\x%02x" % code if code <= 0xFF else "\\u%04x" % code


def clean(text: str) -> str:
    """`text` with every control character made visible, so none reaches the terminal raw."""
    return _UNSAFE.sub(_escaped, text)


def one_line(text: str) -> str:
    """`clean`, and tab and newline made visible too: for what must stay one line (a log entry,
    a table cell), which a `\\n` in someone's text would otherwise forge a second line of."""
    return _UNSAFE_IN_A_LINE.sub(_escaped, text)


def _not_a_number(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")  # Python's json reads NaN and Infinity; JSON has neither


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"{text} is too large for a number")
    return value


def strict_json(data: str | bytes) -> Any:
    """`json.loads`, refusing what JSON has not (NaN, Infinity) and numbers too large for a float
    (`1e999`, which Python would read as infinity): a ValueError, as for any text not JSON."""
    return json.loads(data, parse_constant=_not_a_number, parse_float=_finite)


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
