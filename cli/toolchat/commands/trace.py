"""`toolchat trace show FILE`: the spans of a --trace file as trees, with durations, tokens and
tool outcomes. Reads the file only; everything it prints passes `clean` first."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from rich.console import Console

from toolchat.errors import UsageError
from toolchat.terminal.render import plain


@dataclass
class Span:
    name: str
    trace_id: str
    span_id: str
    parent_id: str | None
    start: datetime
    end: datetime
    attributes: dict[str, Any]
    status: str
    children: list[Span] = field(default_factory=list)

    @property
    def seconds(self) -> float:
        return (self.end - self.start).total_seconds()


def read_spans(path: Path) -> tuple[list[Span], int]:
    """The spans in a JSON-lines trace file, and how many lines were not spans."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        raise UsageError(f"no trace file at {path}", "write one with --trace FILE or config `trace: FILE`") from None
    except (IsADirectoryError, PermissionError) as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror}") from None
    spans, skipped = [], 0
    for line in text.splitlines():
        if not line.strip():
            continue
        try:
            spans.append(_span(json.loads(line)))
        except (ValueError, TypeError, KeyError, AttributeError):
            skipped += 1
    return spans, skipped


def _span(data: dict[str, Any]) -> Span:
    context = data["context"]
    attributes = data.get("attributes") or {}
    status = (data.get("status") or {}).get("status_code") or "UNSET"
    return Span(
        str(data["name"]),
        str(context["trace_id"]),
        str(context["span_id"]),
        data.get("parent_id"),
        _time(data["start_time"]),
        _time(data["end_time"]),
        dict(attributes),
        str(status),
    )


def _time(text: str) -> datetime:
    return datetime.fromisoformat(str(text).replace("Z", "+00:00"))


def trees(spans: list[Span]) -> list[Span]:
    """Root spans, oldest first, each with its children in order; a span whose parent is not in
    the file (a client's trace, a lost line) is a root."""
    by_id = {(s.trace_id, s.span_id): s for s in spans}
    roots = []
    for span in sorted(spans, key=lambda s: s.start):
        parent = by_id.get((span.trace_id, span.parent_id)) if span.parent_id else None
        (parent.children if parent is not None and parent is not span else roots).append(span)
    return roots


def describe(span: Span) -> str:
    """One span on one line: name, duration, then what matters for its kind."""
    a = span.attributes
    parts = [span.name, _seconds(span.seconds)]
    if "gen_ai.usage.input_tokens" in a or "gen_ai.usage.output_tokens" in a:
        tokens = f"{a.get('gen_ai.usage.input_tokens', 0)} in / {a.get('gen_ai.usage.output_tokens', 0)} out tokens"
        if a.get("gen_ai.usage.cache_read.input_tokens"):
            tokens += f" ({a['gen_ai.usage.cache_read.input_tokens']} cached)"
        parts.append(tokens)
    if "gen_ai.response.time_to_first_chunk" in a:
        parts.append(f"first chunk {_seconds(float(a['gen_ai.response.time_to_first_chunk']))}")
    if a.get("gen_ai.response.finish_reasons"):
        parts.append("finish " + ",".join(str(r) for r in a["gen_ai.response.finish_reasons"]))
    if "toolchat.tool.outcome" in a:
        parts.append(
            str(a["toolchat.tool.outcome"])
            + (f", {a['toolchat.tool.approval']}" if "toolchat.tool.approval" in a else "")
        )
    if "toolchat.turn.stopped" in a:
        parts.append(f"stopped: {a['toolchat.turn.stopped']}")
    if "error.type" in a and "toolchat.tool.outcome" not in a:
        parts.append(f"error: {a['error.type']}")
    return "  ".join(parts)


def lines(root: Span) -> list[str]:
    out = [describe(root)]

    def walk(span: Span, prefix: str) -> None:
        for n, child in enumerate(span.children):
            last = n == len(span.children) - 1
            out.append(prefix + ("└─ " if last else "├─ ") + describe(child))
            walk(child, prefix + ("   " if last else "│  "))

    walk(root, "")
    return out


def show(path: Path, last: int, out: Console) -> None:
    spans, skipped = read_spans(path)
    roots = trees(spans)
    if last:
        roots = roots[-last:]
    if not roots:
        out.print(plain(f"no spans in {path}"))
    for n, root in enumerate(roots):
        if n:
            out.print()
        header = f"trace {root.trace_id.removeprefix('0x')}  {root.start.astimezone():%Y-%m-%d %H:%M:%S}"
        conversation = root.attributes.get("gen_ai.conversation.id")
        out.print(plain(header + (f"  session {conversation}" if conversation else ""), "dim"))
        for line in lines(root):
            out.print(plain(line), soft_wrap=True)
    if skipped:
        out.print(plain(f"skipped {skipped} line(s) that are not spans", "yellow"))


def _seconds(value: float) -> str:
    return f"{value * 1000:.0f} ms" if value < 1 else f"{value:.2f} s"
