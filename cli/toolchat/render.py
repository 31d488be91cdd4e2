"""Rich rendering shared by the faces. Text that toolchat did not write itself (tool output, model
text, plugin docstrings) goes through `clean` and is shown as Text, never parsed as markup."""

from __future__ import annotations

import re
from typing import IO

from rich.console import Console
from rich.text import Text

# C0 controls but tab and newline, DEL, and the C1 range (which includes the 8-bit CSI)
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def clean(text: str) -> str:
    """`text` with every control character made visible, so none reaches the terminal raw."""
    return _CONTROL.sub(lambda m: "\\x%02x" % ord(m.group()), text)


def plain(text: str, style: str = "") -> Text:
    """Untrusted text as a Rich Text: no markup is interpreted, no escape sequence survives."""
    return Text(clean(text), style=style)


def console_for(stream: IO[str], *, stderr: bool = False) -> Console:
    return Console(file=stream, stderr=stderr, highlight=False, soft_wrap=False)
