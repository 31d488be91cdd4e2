"""Tracing installed for one test, its spans caught in memory, and an `ask` turn run in-process
against a loopback model server: what the tracing tests share."""

from __future__ import annotations

import io
from pathlib import Path

from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from tests.support.fakeserver import FakeServer
from toolchat.ask import AskOptions, run_ask
from toolchat.config.settings import resolve
from toolchat.env import Environment
from toolchat.redact import Redactor
from toolchat.tools.registry import load
from toolchat.tracing.setup import Tracing

REPO = Path(__file__).resolve().parents[2]
KEY = "sk-test-9f8e7d6c5b4a39281706"


class Caught:
    """A process tracing installed for one test, its finished spans in memory."""

    def __init__(self, content: bool) -> None:
        self.exporter = InMemorySpanExporter()
        self.tracing = Tracing.configure(
            file=None,
            endpoint=None,
            content=content,
            redactor=Redactor([KEY]),
            service="toolchat",
            warn=lambda message: None,
            exporters=[self.exporter],
        )

    def spans(self) -> dict[str, object]:
        return {span.name: span for span in self.exporter.get_finished_spans()}


def ask(server: FakeServer, tmp_path: Path, *words: str, **settings: object) -> tuple[int, str, str]:
    overrides = {
        "base_url": server.url,
        "api_key": KEY,
        "tool_paths": [REPO / "tools"],
        "allow": ["get_weather"],
        **settings,
    }
    resolved = resolve([], overrides, tmp_path, environ={})
    out, err = io.StringIO(), io.StringIO()
    env = Environment(stdin=io.StringIO(""), stdout=out, stderr=err, environ={}, cwd=tmp_path)
    registry = load(resolved.tool_paths, False, tmp_path / "cache")
    code = run_ask(resolved, registry, AskOptions(list(words)), env, approve_all=False)
    return code, out.getvalue(), err.getvalue()
