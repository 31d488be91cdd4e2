"""`toolchat ask`: one question, the answer on stdout and nothing else; a log line per call and
per result on stderr; approval on the controlling terminal, or denial when there is none."""

from __future__ import annotations

import json
import os
import termios
import tty
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
    decision_help,
    total_usage,
)
from toolchat.env import Environment
from toolchat.errors import BackendError, ExitStatus, MaxRoundsError, Terminated, UsageError
from toolchat.process import failed, stop_notice
from toolchat.redact import Redactor, StreamRedactor, redactor_for
from toolchat.safety import clean
from toolchat.tools import Registry, ToolStatus
from toolchat.tools.validate import InvalidArguments, edited_arguments
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
    """Asks on the controlling terminal, one key like the REPL (y/n/a/e/?); with none it denies
    (the display says which flag would allow the call). `call_shown`: the `→` line is already on
    the terminal (stderr is one and not quiet), so the question does not repeat the call."""

    def __init__(self, env: Environment, redactor: Redactor, call_shown: bool = False) -> None:
        self.env, self.redactor, self.call_shown = env, redactor, call_shown

    def __call__(self, pending: PendingCall) -> Decision:
        tty = self.env.open_tty()
        if tty is None:
            return Decision(False, NO_TERMINAL)
        tty_in, tty_out = tty
        with tty_in, tty_out:
            return self._ask(pending, tty_in, tty_out)

    def _ask(self, pending: PendingCall, tty_in: IO[str], tty_out: IO[str]) -> Decision:
        name = clean(pending.tool.name)
        if not self.call_shown:
            tty_out.write(f"→ {name} {clean(self.redactor.redact(arguments_text(pending.arguments)))}\n")
        question = f"Run {name}? [y]es [n]o [a]lways [e]dit [?] "
        while True:
            tty_out.write(question)
            tty_out.flush()
            key = read_key(tty_in, KEYS)
            if key in ANSWERED:
                tty_out.write(ANSWERED[key] + "\n")
            if key == "y":
                return Decision(True)
            if key == "a":
                return Decision(True, always=True)
            if key == "n":
                return Decision(False, _line(tty_in, tty_out, "Reason for the model (Enter to skip): ") or None)
            if key == "":
                tty_out.write("\n")
                return Decision(False, "the user did not answer")
            if key == "?":
                tty_out.write("?\n" + HELP + "\n")
                continue
            edited = self._edit(pending, tty_in, tty_out)
            if edited is not None:
                return Decision(True, arguments=edited)

    def _edit(self, pending: PendingCall, tty_in: IO[str], tty_out: IO[str]) -> dict[str, Any] | None:
        """Edited arguments that are valid for the tool, or None (an empty line) to go back."""
        tty_out.write("e\n" + json.dumps(pending.arguments, ensure_ascii=False) + "\n")
        while True:
            text = _line(tty_in, tty_out, "Arguments as JSON on one line (Enter alone to go back): ")
            if not text:
                return None
            try:
                return edited_arguments(pending.tool, text)
            except InvalidArguments as exc:
                tty_out.write(clean(str(exc)) + "\n")


KEYS = "ynae?"
ANSWERED = {"y": "y: run", "n": "n: decline", "a": "a: run, always"}
HELP = decision_help("command", "JSON on one line", "stops the command.")


def read_key(tty_in: IO[str], keys: str) -> str:
    """One of `keys` (either case), read without Enter; every other key, Enter included, is ignored.
    '' when the terminal ends (EOF or Ctrl-D). A file that is not a terminal is read a line at a time."""
    fd = tty_in.fileno()
    if not os.isatty(fd):
        line = tty_in.readline()
        return line.strip()[:1].lower() if line and line.strip()[:1].lower() in keys else ""
    saved = termios.tcgetattr(fd)
    tty.setcbreak(fd)  # Ctrl-C still interrupts
    try:
        while True:
            typed = os.read(fd, 1).decode("utf-8", errors="replace").lower()
            if typed in ("", "\x04"):
                return ""
            if typed in keys:
                return typed
    finally:
        termios.tcsetattr(fd, termios.TCSADRAIN, saved)


def _line(tty_in: IO[str], tty_out: IO[str], question: str) -> str:
    tty_out.write(question)
    tty_out.flush()
    return tty_in.readline().strip()


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
        self.decided: set[str] = set()  # calls denied by a decision, their ← line already said

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
        elif isinstance(event, CallFinished) and not self.options.quiet and event.record.id not in self.decided:
            preview = " ".join(event.record.output.split())
            if len(preview) > PREVIEW:
                preview = preview[: PREVIEW - 1] + "…"
            self._log(f"← {event.record.name} {event.record.status.value}: {preview}")
        elif isinstance(event, CallDecided) and not event.decision.approved:
            name = event.call.name
            self.decided.add(event.call.id)  # its ← line is said here, with the reason
            if event.decision.reason == NO_TERMINAL:  # said once, even with -q: it changes the answer
                self._log(
                    f"toolchat: denied {name}: no terminal to ask for approval; allow it with --allow {name} or --yes"
                )
            elif not self.options.quiet:
                self._log(f"← {name} {ToolStatus.DENIED.value}: {event.decision.reason or 'by the user'}")
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
    approver = TerminalApprover(env, redactor, call_shown=env.stderr_isatty and not options.quiet)
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
