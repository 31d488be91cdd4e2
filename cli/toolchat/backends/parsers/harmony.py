"""gpt-oss (harmony): channels. `final` is the answer, `analysis` is reasoning (not shown as
content; kept as the reply's reasoning),
`commentary to=functions.NAME` is a call. Parsed at the end of the output; the final channel is
streamed once its header has been seen."""

from __future__ import annotations

import re

from toolchat.backends.parsers.base import ParsedCall, as_arguments, loads_lenient, partial_suffix

_SEGMENT_END = re.compile(r"<\|(?:end|call|return)\|>")
_RECIPIENT = re.compile(r"to=functions\.([\w.-]+)")
_FINAL = "<|channel|>final<|message|>"


class HarmonyParser:
    def __init__(self) -> None:
        self.text = ""
        self.streamed = 0  # characters of the final channel already shown
        self.reasoning = ""  # the analysis channel, set by finish()

    def feed(self, text: str) -> str:
        self.text += text
        at = self.text.find(_FINAL)
        if at < 0:
            return ""
        body_start = at + len(_FINAL)
        end = _SEGMENT_END.search(self.text, body_start)
        body = self.text[body_start : end.start() if end else len(self.text)]
        if not end:
            hold = max(partial_suffix(body, marker) for marker in ("<|end|>", "<|return|>", "<|call|>", "<|start|>"))
            body = body[: len(body) - hold]
        fresh, self.streamed = body[self.streamed :], max(self.streamed, len(body))
        return fresh

    def finish(self) -> tuple[str, list[ParsedCall]]:
        calls: list[ParsedCall] = []
        content: list[str] = []
        analysis: list[str] = []
        for segment in re.split(r"<\|start\|>", self.text):
            header, sep, body = segment.partition("<|message|>")
            if not sep:
                continue
            end = _SEGMENT_END.search(body)
            body = body[: end.start()] if end else body
            recipient = _RECIPIENT.search(header)
            if recipient:
                value = loads_lenient(body)
                arguments = as_arguments(value) if isinstance(value, dict) else None
                calls.append(ParsedCall(recipient.group(1), body.strip() if arguments is None else arguments))
            elif "<|channel|>analysis" in header:
                analysis.append(body.strip())
            elif "<|channel|>final" in header or "<|channel|>" not in header:
                content.append(body)
        self.reasoning = "\n\n".join(a for a in analysis if a)
        whole = "".join(content)
        return whole[self.streamed :], calls
