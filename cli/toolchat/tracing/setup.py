"""The OpenTelemetry SDK, set up once per process: a tracer provider, the OTLP/HTTP exporter
and/or a JSON-lines file, the bounded flush at exit. Imported only when tracing is on."""

from __future__ import annotations

import contextlib
import logging
import os
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from toolchat import __version__
from toolchat.files import private_file
from toolchat.tracing.spans import TraceSink

SCOPE = "toolchat"
MARGIN = 0.5  # waited beyond the exporter's timeout, so that it says itself what went wrong


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
    """The SDK's own log lines, kept instead of printed over the chat; the last error is the
    reason told at exit for spans that were not delivered."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.last_error: str | None = None

    def emit(self, record: logging.LogRecord) -> None:
        if record.levelno >= logging.ERROR:
            try:
                self.last_error = record.getMessage()
            except Exception:  # noqa: BLE001 - a malformed log call must not break anything
                self.last_error = record.msg if isinstance(record.msg, str) else None


class Watched(SpanExporter):
    """An exporter whose lost spans are counted, to be told once at exit."""

    def __init__(self, inner: SpanExporter, where: str) -> None:
        self.inner, self.where = inner, where
        self.lost = 0
        self.reason: str | None = None

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        try:
            result = self.inner.export(spans)
        except Exception as exc:  # noqa: BLE001 - a full disk, a closed file
            result, self.reason = SpanExportResult.FAILURE, getattr(exc, "strerror", None) or str(exc)
        if result is not SpanExportResult.SUCCESS:
            self.lost += len(spans)
        return result

    def shutdown(self) -> None:
        self.inner.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return self.inner.force_flush(timeout_millis)


class Tracing:
    """The process's tracer and where its spans go."""

    def __init__(
        self,
        provider: TracerProvider,
        *,
        content: bool,
        redactor: Any,
        watched: list[Watched],
        problems: Problems,
        warn: Callable[[str], None],
    ) -> None:
        self.provider, self.content, self.redactor = provider, content, redactor
        self.watched, self.problems, self.warn = watched, problems, warn
        self.tracer = provider.get_tracer(SCOPE, __version__)
        self._pid = os.getpid()
        self._closed = False

    @classmethod
    def configure(
        cls,
        *,
        file: Path | None,
        endpoint: str | None,
        content: bool,
        redactor: Any,
        service: str,
        warn: Callable[[str], None],
        exporters: Sequence[SpanExporter] = (),
    ) -> Tracing:
        problems = Problems()
        otel_logger = logging.getLogger("opentelemetry")
        otel_logger.addHandler(problems)
        otel_logger.propagate = False  # nothing the SDK logs reaches the terminal
        resource = Resource.create({"service.name": service, "service.version": __version__})
        provider = TracerProvider(resource=resource, shutdown_on_exit=False)  # our own bounded flush instead
        watched: list[Watched] = []
        for exporter in exporters:
            provider.add_span_processor(SimpleSpanProcessor(exporter))
        if file is not None:
            try:
                watched.append(Watched(JsonLinesExporter(file), str(file)))
                provider.add_span_processor(SimpleSpanProcessor(watched[-1]))
            except OSError as exc:
                warn(f"cannot write the trace file {file}: {exc.strerror or exc}; going on without it")
        if endpoint is not None:
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

            watched.append(Watched(OTLPSpanExporter(), endpoint))  # configured by the OTEL_* variables
            provider.add_span_processor(BatchSpanProcessor(watched[-1]))
        return cls(provider, content=content, redactor=redactor, watched=watched, problems=problems, warn=warn)

    def make_global(self) -> None:
        from opentelemetry import trace

        trace.set_tracer_provider(self.provider)

    def wrap(
        self,
        sink: Callable[[Any], None],
        backend: Any = None,
        conversation: Callable[[], str | None] | str | None = None,
        tools: Callable[[str], Any] | None = None,
    ) -> TraceSink:
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
        """Send what is left, waiting at most `bound` seconds (the exporter's timeout); one warning
        line if spans were not delivered. A collector that refuses connections is not waited for.
        True when everything left in time. A forked child (a tool) does nothing."""
        if self._closed or os.getpid() != self._pid:
            return True
        self._closed = True
        remote = [w.where for w in self.watched if not isinstance(w.inner, JsonLinesExporter)]
        down = {where: why for where in remote if (why := refused(where)) is not None}
        if down and len(down) == len(remote):  # the file's spans are written already (synchronously)
            self.warn("; ".join(f"traces not delivered to {where}: {why}; dropped" for where, why in down.items()))
            return False
        done = threading.Event()

        def shut() -> None:
            try:
                self.provider.shutdown()
            finally:
                done.set()

        threading.Thread(target=shut, name="toolchat-trace-flush", daemon=True).start()
        try:
            finished = done.wait(bound + MARGIN)
        except KeyboardInterrupt:  # a second Ctrl-C or SIGTERM while flushing: leave now
            finished = False
        if not finished:
            self.warn(f"traces not delivered to {', '.join(remote)} within {bound:g} s; dropped")
            return False
        lost = [w for w in self.watched if w.lost]
        if lost:
            reasons = [w.reason or self.problems.last_error or "the export failed" for w in lost]
            self.warn(
                "; ".join(
                    f"{w.lost} span(s) not delivered to {w.where}: {self.redactor.redact(' '.join(r.split()))[:200]}"
                    for w, r in zip(lost, reasons)
                )
            )
        return not lost


def refused(url: str) -> str | None:
    """ "connection refused" when nothing listens where the collector should be, found in well
    under a second; None when it may answer. Only for an address or `localhost` (a name would
    need DNS, which no timeout bounds) with no proxy between: else the flush finds out itself."""
    import ipaddress
    import socket
    import urllib.request
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    host = parts.hostname or ""
    if urllib.request.getproxies().get(parts.scheme) and not urllib.request.proxy_bypass(host):
        return None
    try:
        if host != "localhost":
            ipaddress.ip_address(host)
        port = parts.port or (443 if parts.scheme == "https" else 80)
        socket.create_connection((host, port), timeout=0.5).close()
    except ConnectionRefusedError:
        return "connection refused"
    except (OSError, ValueError):  # a name, slow, or unreachable for now
        return None
    return None
