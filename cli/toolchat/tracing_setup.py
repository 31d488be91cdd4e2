"""The OpenTelemetry SDK, set up once per process: a tracer provider, the OTLP/HTTP exporter
and/or a JSON-lines file, the bounded flush at exit. Imported only when tracing is on."""

from __future__ import annotations

import contextlib
import logging
import os
import threading
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping, Sequence

from opentelemetry import context as otel_context
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import (BatchSpanProcessor, SimpleSpanProcessor, SpanExporter,
                                            SpanExportResult)
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from toolchat import __version__
from toolchat.tracing import private_file
from toolchat.tracing_spans import TraceSink

SCOPE = "toolchat"


class JsonLinesExporter(SpanExporter):
    """Each finished span as one line of JSON (the SDK's own span form), appended to a private
    file; `toolchat trace show FILE` reads it back."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd = private_file(path)
        self._lock = threading.Lock()

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        data = "".join(span.to_json(indent=None) + "\n" for span in spans).encode("utf-8")
        with self._lock:
            if self._fd < 0:
                return SpanExportResult.FAILURE
            os.write(self._fd, data)  # OSError: logged by the processor, told at exit
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        with self._lock:
            if self._fd >= 0:
                os.close(self._fd)
                self._fd = -1


class Problems(logging.Handler):
    """The SDK's own log lines (an export that failed, a span dropped), kept to be told once at
    exit instead of printed over the chat."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.first: str | None = None

    def emit(self, record: logging.LogRecord) -> None:
        if self.first is None:
            try:
                self.first = record.getMessage()
            except Exception:  # a malformed log call must not break anything
                self.first = record.msg if isinstance(record.msg, str) else "an export failed"


class Tracing:
    """The process's tracer and where its spans go."""

    def __init__(self, provider: TracerProvider, *, content: bool, redactor: Any, destination: str,
                 problems: Problems, warn: Callable[[str], None]) -> None:
        self.provider, self.content, self.redactor = provider, content, redactor
        self.destination, self.problems, self.warn = destination, problems, warn
        self.tracer = provider.get_tracer(SCOPE, __version__)
        self._pid = os.getpid()
        self._closed = False

    @classmethod
    def configure(cls, *, file: Path | None, endpoint: str | None, content: bool, redactor: Any, service: str,
                  warn: Callable[[str], None], exporters: Sequence[SpanExporter] = ()) -> Tracing:
        problems = Problems()
        otel_logger = logging.getLogger("opentelemetry")
        otel_logger.addHandler(problems)
        otel_logger.propagate = False  # nothing the SDK logs reaches the terminal
        resource = Resource.create({"service.name": service, "service.version": __version__})
        provider = TracerProvider(resource=resource, shutdown_on_exit=False)  # our own bounded flush instead
        where: list[str] = []
        for exporter in exporters:
            provider.add_span_processor(SimpleSpanProcessor(exporter))
        if file is not None:
            try:
                provider.add_span_processor(SimpleSpanProcessor(JsonLinesExporter(file)))
                where.append(str(file))
            except OSError as exc:
                warn(f"cannot write the trace file {file}: {exc.strerror or exc}; going on without it")
        if endpoint is not None:
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

            provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))  # the OTEL_* variables
            where.append(endpoint)
        return cls(provider, content=content, redactor=redactor, destination=", ".join(where) or "memory",
                   problems=problems, warn=warn)

    def make_global(self) -> None:
        from opentelemetry import trace

        trace.set_tracer_provider(self.provider)

    def wrap(self, sink: Callable[[Any], None], backend: Any = None,
             conversation: Callable[[], str | None] | str | None = None,
             tools: Callable[[str], Any] | None = None) -> TraceSink:
        facts = backend if callable(backend) and not hasattr(backend, "complete") else (lambda: backend)
        ask = conversation if callable(conversation) else (lambda: conversation)
        return TraceSink(sink, self.tracer, facts, ask, content=self.content, redactor=self.redactor, tools=tools)

    @contextlib.contextmanager
    def remote_parent(self, headers: Mapping[str, str]) -> Iterator[None]:
        """The client's W3C `traceparent` (and `tracestate`) as the parent of what runs inside."""
        carrier = {str(key).lower(): str(value) for key, value in headers.items()}
        token = otel_context.attach(TraceContextTextMapPropagator().extract(carrier))
        try:
            yield
        finally:
            otel_context.detach(token)

    def close(self, bound: float) -> bool:
        """Send what is left, waiting at most `bound` seconds; one warning line if spans were not
        delivered. True when everything left in time. A forked child (a tool) does nothing."""
        if self._closed or os.getpid() != self._pid:
            return True
        self._closed = True
        done = threading.Event()

        def shut() -> None:
            try:
                self.provider.shutdown()
            finally:
                done.set()

        threading.Thread(target=shut, name="toolchat-trace-flush", daemon=True).start()
        try:
            finished = done.wait(bound)
        except KeyboardInterrupt:  # a second Ctrl-C or SIGTERM while flushing: leave now
            finished = False
        if not finished:
            self.warn(f"traces not delivered to {self.destination} within {bound:g} s; dropped")
        elif self.problems.first:
            reason = self.redactor.redact(" ".join(self.problems.first.split()))[:200]
            self.warn(f"traces not delivered to {self.destination}: {reason}")
        return finished and not self.problems.first
