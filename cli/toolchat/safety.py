"""Neutralising text toolchat did not write itself (model output, tool output, plugin docstrings)
before it reaches a terminal. No Rich here, so `ask` can use it without importing Rich."""

from __future__ import annotations

import re

# C0 controls but tab and newline, DEL, and the C1 range (which includes the 8-bit CSI)
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def clean(text: str) -> str:
    """`text` with every control character made visible, so none reaches the terminal raw."""
    return _CONTROL.sub(lambda m: "\\x%02x" % ord(m.group()), text)
