"""Tracing switched on and off: OpenTelemetry spans for every turn, model call and tool call,
sent to an OTLP/HTTP collector (the standard OTEL_EXPORTER_OTLP_* variables) and/or written as
JSON lines to a file (`--trace FILE`, config `trace: FILE`).

With tracing off this module imports nothing of OpenTelemetry: `traced` hands the sink back as
it was. With it on, the SDK is loaded once per process and its spans are flushed at exit
(also after Ctrl-C and SIGTERM) within the exporter's own timeout (`flush_bound`); a collector
that is silent costs at most that, one that refuses connections next to nothing, and one warning
line."""

from __future__ import annotations

import atexit
import contextlib
import importlib
import sys
import threading
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

EXPORT_TIMEOUT = 10.0  # seconds: the OTLP exporter's default (OTEL_EXPORTER_OTLP_TIMEOUT)
CONTENT_VARIABLE = "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT"
ENDPOINT_VARIABLES = ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT")

Sink = Callable[[Any], None]
Wrap = Callable[..., Sink]

_lock = threading.Lock()
_current: Any = None  # the process's Tracing (toolchat.tracing.setup), once started
_missing = False  # asked for, but the SDK is not installed


def otlp_endpoint(environ: Mapping[str, str]) -> str | None:
    """Where OTLP/HTTP spans go, as the exporter resolves it; None when no variable names one."""
    if environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return None
    if environ.get("OTEL_TRACES_EXPORTER", "").strip().lower() == "none":
        return None
    signal = environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "").strip()
    if signal:
        return signal
    base = environ.get("OTEL_EXPORTER_OTLP_ENDPOINT", "").strip()
    return base.rstrip("/") + "/v1/traces" if base else None


def flush_bound(environ: Mapping[str, str]) -> float:
    """How long the exit waits for spans to leave: the exporter's timeout (the standard
    OTEL_EXPORTER_OTLP_TRACES_TIMEOUT, else OTEL_EXPORTER_OTLP_TIMEOUT, in seconds; else the
    SDK's 10 s), no longer than the batch processor's OTEL_BSP_EXPORT_TIMEOUT (milliseconds)."""
    timeout = EXPORT_TIMEOUT
    for name in ("OTEL_EXPORTER_OTLP_TRACES_TIMEOUT", "OTEL_EXPORTER_OTLP_TIMEOUT"):
        if (value := _seconds(environ.get(name), 1.0)) is not None:
            timeout = value
            break
    batch = _seconds(environ.get("OTEL_BSP_EXPORT_TIMEOUT"), 1000.0)
    return min(timeout, batch) if batch is not None else timeout


def _seconds(raw: str | None, per_second: float) -> float | None:
    """A positive, finite number of seconds from a variable; None when unset or not one."""
    try:
        value = float((raw or "").strip()) / per_second
    except ValueError:
        return None
    return value if 0 < value < float("inf") else None


def capture_content(settings: Any, environ: Mapping[str, str]) -> bool:
    """Messages, arguments, results and the system prompt go into spans only when asked for."""
    wanted = environ.get(CONTENT_VARIABLE, "").strip().lower() in ("true", "1", "yes")
    return wanted or bool(getattr(settings, "trace_content", False))


def enabled(settings: Any, environ: Mapping[str, str]) -> bool:
    return _current is not None or bool(getattr(settings, "trace", None)) or otlp_endpoint(environ) is not None


def start(settings: Any, environ: Mapping[str, str], warn: Callable[[str], None] | None = None) -> Any:
    """The process's tracing, started on first use; None when nothing asks for it."""
    global _current, _missing
    with _lock:
        if _current is not None or _missing or not enabled(settings, environ):
            return _current
        try:
            tracing_setup = importlib.import_module("toolchat.tracing.setup")
        except ImportError:  # the `trace` extra is not installed: say so once, chat on
            _missing = True
            (warn or _warn)("tracing needs the OpenTelemetry SDK: pip install 'toolchat[trace]'; going on without it")
            return None
        file = getattr(settings, "trace", None)
        _current = tracing_setup.Tracing.configure(
            file=Path(file) if file else None,
            endpoint=otlp_endpoint(environ),
            content=capture_content(settings, environ),
            redactor=_redactor(settings),
            service=environ.get("OTEL_SERVICE_NAME") or "toolchat",
            warn=warn or _warn,
        )
        _current.make_global()  # instrumented libraries (an MCP client) send their spans along
        atexit.register(_current.close, flush_bound(environ))
        return _current


def use(tracing: Any) -> Any:
    """Install a Tracing made elsewhere (tests, embedding); returns the one it replaces."""
    global _current
    with _lock:
        previous, _current = _current, tracing
    return previous


def traced(
    sink: Sink,
    backend: Any,
    settings: Any,
    environ: Mapping[str, str],
    conversation: Callable[[], str | None] | str | None = None,
    tools: Callable[[str], Any] | None = None,
) -> Sink:
    """`sink` with spans recorded around it, or `sink` itself when tracing is off. `backend` is
    the Backend, or a callable giving the one in use (the REPL's /model swaps it); `tools` finds
    a Tool by name (its origin and description go on its calls' spans)."""
    tracing = start(settings, environ)
    return sink if tracing is None else tracing.wrap(sink, backend, conversation, tools)


@contextlib.contextmanager
def serve_turn(headers: Mapping[str, str], settings: Any, environ: Mapping[str, str]) -> Iterator[Wrap]:
    """For `toolchat serve`: around one request's engine run, in the thread that runs it. The
    request's turn becomes one trace (a child of the client's `traceparent`, when it sends one).
    Yields `wrap(sink, backend, conversation=None, tools=None)`, to give the engine in place of `sink`."""
    tracing = start(settings, environ)
    if tracing is None:
        yield lambda sink, backend=None, conversation=None, tools=None: sink
        return
    with tracing.remote_parent(headers):
        yield tracing.wrap


def _redactor(settings: Any) -> Any:
    make = getattr(settings, "redactor", None)
    if make is not None:
        return make()
    from toolchat.redact import Redactor

    return Redactor()


def _warn(message: str) -> None:
    from toolchat.safety import clean

    try:
        sys.stderr.write(f"toolchat: warning: {clean(message)}\n")
        sys.stderr.flush()
    except (OSError, ValueError):
        pass
