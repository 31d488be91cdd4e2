"""gpt-oss (harmony): channels. `final` (or a message with no channel) is the answer, `analysis`
is reasoning (never content, never read for calls; kept as the reply's reasoning),
`commentary to=functions.NAME` is a call. Messages are read as they arrive: the answer and the
reasoning stream as they are written, held back only where a marker could be split across tokens;
a call is read when its message closes (or at the end of the output)."""

from __future__ import annotations

import re

from toolchat.backends.parsers.base import ParsedCall, as_arguments, loads_lenient

_BODY_END = re.compile(r"<\|(?:end|call|return|start)\|>")
_RECIPIENT = re.compile(r"to=functions\.([\w.-]+)")
_MESSAGE = "<|message|>"
_MARKERS = ("<|end|>", "<|start|>", "<|channel|>", "<|message|>", "<|call|>", "<|return|>")


def _kind(header: str) -> str:
    if _RECIPIENT.search(header):
        return "call"
    if "<|channel|>analysis" in header:
        return "analysis"
    if "<|channel|>final" in header or "<|channel|>" not in header:
        return "final"
    return "other"  # commentary to the user, a built-in tool's channel: neither shown nor run


def _held(tail: str) -> int:
    """How much of the end of `tail` could start a marker. Each marker holds one `<`, so only
    what follows the last `<` can be one."""
    at = tail.rfind("<")
    return len(tail) - at if at >= 0 and any(m.startswith(tail[at:]) for m in _MARKERS) else 0


class HarmonyParser:
    def __init__(self) -> None:
        self.text = ""
        self.at = 0  # where the message being read starts in self.text
        self.sent = 0  # characters of its body already passed on (or skipped: leading blanks)
        self.began = False  # some of its reasoning was passed on
        self.scanned = 0  # its body holds no end marker before this offset
        self.analysis: list[str] = []  # closed analysis messages, stripped
        self.pending: list[str] = []  # reasoning deltas not yet taken
        self.calls: list[ParsedCall] = []

    def feed(self, text: str) -> str:
        """The answer that is safe to show now; reasoning goes to take_reasoning()."""
        self.text += text
        shown: list[str] = []
        while self._step(shown, final=False):
            pass
        return "".join(shown)

    def _step(self, shown: list[str], final: bool) -> bool:
        """Read the current message as far as it goes; True when it closed and the next may start."""
        m = self.text.find(_MESSAGE, self.at)
        if m < 0:
            return False
        header, start = self.text[self.at : m], m + len(_MESSAGE)
        end = _BODY_END.search(self.text, max(start, self.scanned))
        self.scanned = max(start, len(self.text) - 10)  # no end marker (10 characters at most) before here
        stop = end.start() if end else len(self.text)
        if not end and not final:
            stop -= _held(self.text[max(start, stop - 10) : stop])
        kind = _kind(header)
        if kind == "final":
            shown.append(self.text[start + self.sent : stop])
            self.sent = stop - start
        elif kind == "analysis":
            self._think(start, stop)
        if (end or final) and kind in ("call", "analysis"):
            body = self.text[start:stop]
            if kind == "call":
                self._call(header, body)
            elif body.strip():
                self.analysis.append(body.strip())
        if not end:
            return False
        self.at, self.sent, self.scanned, self.began = end.end(), 0, 0, False
        return True

    def _think(self, start: int, stop: int) -> None:
        """Pass on the analysis body's fresh part, without its leading blanks and holding its trailing
        ones (the message may go on); a second message's reasoning starts a paragraph."""
        at = start + self.sent
        fresh = self.text[at:stop]
        if not self.began:
            at, fresh = at + len(fresh) - len(fresh.lstrip()), fresh.lstrip()
            self.sent = at - start
        fresh = fresh.rstrip()
        if fresh:
            self.pending.append(("\n\n" if not self.began and self.analysis else "") + fresh)
            self.began, self.sent = True, at + len(fresh) - start

    def _call(self, header: str, body: str) -> None:
        recipient = _RECIPIENT.search(header)
        assert recipient is not None
        value = loads_lenient(body)
        arguments = as_arguments(value) if isinstance(value, dict) else None
        self.calls.append(ParsedCall(recipient.group(1), body.strip() if arguments is None else arguments))

    def take_reasoning(self) -> str:
        """The reasoning streamed since the last call."""
        fresh, self.pending = "".join(self.pending), []
        return fresh

    def finish(self) -> tuple[str, list[ParsedCall]]:
        shown: list[str] = []
        while self._step(shown, final=False):
            pass
        self._step(shown, final=True)
        self.at = len(self.text)
        return "".join(shown), self.calls

    @property
    def reasoning(self) -> str:
        """The analysis channel: every closed analysis message (all of them after finish())."""
        return "\n\n".join(self.analysis)
