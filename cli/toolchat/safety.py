"""Neutralising text toolchat did not write itself (from a server, model, tool, plugin or file)
before it reaches a terminal. No Rich here, so `ask` can use it without importing Rich."""

from __future__ import annotations

import re

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
