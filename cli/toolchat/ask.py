"""`toolchat ask`: one question, the answer on stdout and nothing else; a log line per call and
per result on stderr; approval on the controlling terminal, or denial when there is none."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import IO, Any

from toolchat.backends.base import ReasoningDelta, TextDelta
from toolchat.config.settings import Settings
from toolchat.engine import (
    CallDecided,
    CallFinished,
    CallRequested,
    Compacted,
    ContextNote,
    Decision,
    Engine,
    Event,
    PendingCall,
    Stopped,
    TurnError,
    TurnResult,
    arguments_text,
    total_usage,
)
from toolchat.env import Environment
from toolchat.errors import BackendError, ExitStatus, MaxRoundsError, Terminated, UsageError
from toolchat.process import failed, stop_notice
from toolchat.redact import Redactor, StreamRedactor, redactor_for
from toolchat.safety import clean
from toolchat.tools import Registry, ToolStatus
from toolchat.tracing.control import traced

NO_TERMINAL = "no terminal was available to ask the user for approval"

PREVIEW = 120


@dataclass
class AskOptions:
    prompt: list[str]
    json_output: bool = False
    quiet: bool = False
    tool_choice: str | None = None
    show_reasoning: bool = True  # to stderr, dim on a terminal; never on stdout


def read_prompt(words: list[str], env: Environment) -> str:
    """The prompt words, plus stdin when `-` is given or stdin is a pipe or file."""
    use_stdin = "-" in words or not env.stdin_isatty
    text = " ".join(w for w in words if w != "-").strip()
    if use_stdin:
        piped = _read_all(env.stdin)
        if piped.strip():
            text = f"{text}\n\n{piped.rstrip()}" if text else piped.rstrip()
    if not text:
        raise UsageError("nothing to ask", 'give a prompt: toolchat ask "your question", or pipe text in')
    return text


def _read_all(stdin: IO[str] | None) -> str:
    """All of stdin as text; bytes that are not UTF-8 become replacement characters."""
    if stdin is None:  # fd 0 was closed
        return ""
    try:
        buffer = getattr(stdin, "buffer", None)
        return buffer.read().decode("utf-8", errors="replace") if buffer is not None else stdin.read()
    except (OSError, ValueError):  # stdin closed
        return ""


class TerminalApprover:
    """Asks on the controlling terminal; with none it denies (the display says which flag would
    allow the call)."""

    def __init__(self, env: Environment, redactor: Redactor) -> None:
        self.env, self.redactor = env, redactor

    def __call__(self, pending: PendingCall) -> Decision:
        tty = self.env.open_tty()
        if tty is None:
            return Decision(False, NO_TERMINAL)
        tty_in, tty_out = tty
        with tty_in, tty_out:
            return self._ask(pending, tty_in, tty_out)

    def _ask(self, pending: PendingCall, tty_in: IO[str], tty_out: IO[str]) -> Decision:
        name = clean(pending.tool.name)
        args = clean(self.redactor.redact(json.dumps(pending.arguments, ensure_ascii=False, indent=2)))
        tty_out.write(f"\nThe model wants to run {name} with:\n{args}\n")
        while True:
            tty_out.write(f"Run {name}? [y]es / [n]o / [a]lways for this tool: ")
            tty_out.flush()
            answer = tty_in.readline()
            if not answer:  # EOF on the terminal
                return Decision(False, "the user did not answer")
            answer = answer.strip().lower()
            if answer in ("y", "yes"):
                return Decision(True)
            if answer in ("a", "always"):
                return Decision(True, always=True)
            if answer in ("n", "no"):
                tty_out.write("Reason for the model (optional, Enter to skip): ")
                tty_out.flush()
                reason = tty_in.readline().strip()
                return Decision(False, reason or None)


class AskDisplay:
    """The event sink: answer text to stdout, one line per call and per result to stderr."""

    def __init__(self, env: Environment, options: AskOptions, redactor: Redactor) -> None:
        self.out, self.err = env.stdout, env.stderr
        self.options = options
        self.redactor, self.text = redactor, StreamRedactor(redactor)
        self.ended_with_newline = True
        self.thought = StreamRedactor(redactor)
        self.thinking = False  # reasoning written to stderr, its line not ended yet
        self.dim = env.stderr_isatty

    def __call__(self, event: Event) -> None:
        if isinstance(event, ReasoningDelta):
            if self.options.show_reasoning and not self.options.quiet and event.text:
                self._think(self.thought.feed(event.text))
        elif isinstance(event, TextDelta):
            self._end_thought()
            if not self.options.json_output and event.text:
                self._write(self.text.feed(event.text))
        elif isinstance(event, CallRequested) and not self.options.quiet:
            shown = event.call.arguments if event.arguments is None else event.arguments
            self._log(f"→ {event.call.name} {arguments_text(shown)}")
        elif (
            isinstance(event, CallFinished) and not self.options.quiet and event.record.status is not ToolStatus.DENIED
        ):
            preview = " ".join(event.record.output.split())
            if len(preview) > PREVIEW:
                preview = preview[: PREVIEW - 1] + "…"
            self._log(f"← {event.record.name} {event.record.status.value}: {preview}")
        elif isinstance(event, CallDecided) and not event.decision.approved:
            name = event.call.name
            if event.decision.reason == NO_TERMINAL:  # said once, even with -q: it changes the answer
                self._log(
                    f"toolchat: denied {name}: no terminal to ask for approval; allow it with --allow {name} or --yes"
                )
            elif not self.options.quiet:
                self._log(f"  {name} declined" + (f": {event.decision.reason}" if event.decision.reason else ""))
        elif isinstance(event, Compacted) and not self.options.quiet:
            self._log(f"toolchat: {event.line}")
        elif isinstance(event, ContextNote):  # said even with -q: the answer may miss part of the question
            self._log(f"toolchat: note: {event.text}")
        elif isinstance(event, TurnError):
            pass  # reported once, by toolchat.process.failed

    def _think(self, text: str) -> None:
        if text:
            self.err.write(f"\x1b[2m{clean(text)}\x1b[0m" if self.dim else clean(text))
            self.err.flush()
            self.thinking = not text.endswith("\n")

    def _end_thought(self) -> None:
        """The reasoning's last line ended, before the answer or a log line."""
        self._think(self.thought.flush())
        if self.thinking:
            self.err.write("\n")
            self.err.flush()
            self.thinking = False

    def _write(self, text: str) -> None:
        if text:
            self.out.write(clean(text))
            self.out.flush()
            self.ended_with_newline = text.endswith("\n")

    def _log(self, line: str) -> None:
        self._end_thought()
        self._write(self.text.flush())
        if not self.ended_with_newline:
            self.out.write("\n")
            self.ended_with_newline = True
        self.err.write(clean(self.redactor.redact(line)) + "\n")
        self.err.flush()

    def finish(self) -> None:
        self._end_thought()
        self._write(self.text.flush())
        if not self.options.json_output and not self.ended_with_newline:
            self.out.write("\n")
            self.out.flush()


def run_ask(
    settings: Settings,
    registry: Registry,
    options: AskOptions,
    env: Environment,
    approve_all: bool,
    redactor: Redactor | None = None,
) -> int:
    from toolchat.backends.factory import create_backend

    prompt = read_prompt(options.prompt, env)
    backend = create_backend(settings, env, notify=lambda message: _note(env, message))
    redactor = redactor or redactor_for(settings, env.environ)
    options.show_reasoning = options.show_reasoning and settings.show_reasoning
    display = AskDisplay(env, options, redactor)
    on_event = traced(display, backend, settings, env.environ, tools=registry.get)
    approver = TerminalApprover(env, redactor)
    engine = Engine.from_settings(
        settings, backend, registry, approve=approver, on_event=on_event, approve_all=approve_all
    )
    try:
        result = engine.run_turn(prompt, options.tool_choice)
    finally:
        backend.close()
    display.finish()
    if options.json_output:
        text = json.dumps(_json_result(result, engine.messages, engine.compaction.window), ensure_ascii=False)
        env.write(redactor.redact(text) + "\n")
    return _exit_code(result, engine, env)


def _note(env: Environment, message: str) -> None:
    env.stderr.write(f"toolchat: {clean(message)}\n")
    env.stderr.flush()


def _json_result(result: TurnResult, messages: list[dict[str, Any]], window: int | None) -> dict[str, Any]:
    usage = total_usage(result.rounds)
    if window is not None:
        usage["context_window"] = window
    return {
        "answer": result.answer,
        "stopped": result.stopped.value,
        "messages": messages,
        "tool_calls": [record.as_dict() for record in result.calls],
        "usage": usage,
        **({"error": result.error} if result.error else {}),
    }


def _exit_code(result: TurnResult, engine: Engine, env: Environment) -> int:
    """The turn's end as an exit status, through the one mapping every command uses."""
    if result.stopped is Stopped.ERROR:
        return failed(BackendError(result.error or "the backend failed"), env)
    if result.stopped is Stopped.INTERRUPTED:
        return failed(Terminated(result.signal) if result.signal else KeyboardInterrupt(), env)
    notice = stop_notice(result, engine.max_rounds, engine.max_tokens)
    if result.stopped is Stopped.MAX_ROUNDS:
        return failed(MaxRoundsError(notice or "max rounds"), env)
    if notice:
        env.write(f"toolchat: {notice}\n", err=True)
    return ExitStatus.OK
