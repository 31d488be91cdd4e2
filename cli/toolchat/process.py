"""The `toolchat` process from start to exit: the tool worker forked first, the command line as
typed rewritten to the command it means, TERM/HUP/QUIT turned into interrupts, and the one
mapping from how a command ended (an exception, a signal, an exit code) to the exit status and
the `toolchat: ...` line on stderr (and what the end of a turn says, in the REPL and `ask`
alike); then the quick exit."""

from __future__ import annotations

import sys
from collections.abc import Collection
from typing import TYPE_CHECKING, Any

from toolchat.env import Environment
from toolchat.errors import ExitStatus, Terminated, ToolchatError, UsageError
from toolchat.safety import clean

if TYPE_CHECKING:  # the engine is imported by the commands that run turns, not at start-up
    from toolchat.engine import TurnResult

_OWN_FLAGS = ("--help", "--version", "--install-completion", "--show-completion")
_signal = 0  # the signal that asked toolchat to end, once one came


def start(env: Environment | None) -> Environment:
    """The tool worker forked before any thread exists; in a real process (no `env` given) the
    signals are toolchat's too (an in-process test keeps pytest's)."""
    from toolchat.tools.isolation import worker

    worker.start()
    if env is not None:
        return env
    _signals_are_interrupts()
    return Environment()


def command_line(argv: list[str] | None, env: Environment) -> list[str]:
    """`toolchat --base-url URL` is `toolchat chat --base-url URL`; `--no-sandbox`, a flag of every
    command, is taken wherever it is written before a `--`."""
    args = list(sys.argv[1:] if argv is None else argv)
    end = args.index("--") if "--" in args else len(args)
    if "--no-sandbox" in args[:end]:
        env.no_sandbox = True
        args = [a for a in args[:end] if a != "--no-sandbox"] + args[end:]
    if args and args[0].startswith("-") and args[0] not in _OWN_FLAGS:
        args.insert(0, "chat")
    return args


def check_command(args: list[str], commands: Collection[str]) -> None:
    """`toolchat "what is 2+2"` is what llm users type: say how to ask instead of 'No such command'."""
    if not args or args[0].startswith("-") or args[0] in commands:
        return
    import difflib

    close = difflib.get_close_matches(args[0], list(commands), n=1)
    if close and " " not in args[0]:
        raise UsageError(f"no command '{args[0]}'", f"did you mean `toolchat {close[0]}`?")
    question = " ".join(args)
    raise UsageError(f"no command '{question[:40]}'", f'to ask a question: toolchat ask "{question}"')


def requested_signal() -> int:
    """The signal (TERM, HUP, QUIT) that asked toolchat to end, or 0: it stays set for places that
    catch the interrupt and must still leave."""
    return _signal


def forget_signal() -> None:
    """A service stopped by its manager has done its job: it exits 0, not 128 + the signal."""
    global _signal
    _signal = 0


def _signals_are_interrupts() -> None:
    """TERM, HUP (the terminal closed) and QUIT unwind like Ctrl-C: running tools are stopped and
    the session file is intact; the exit code is 128 + the signal."""
    import signal

    def interrupt(signum: int, frame: Any) -> None:
        global _signal
        _signal = signum
        raise Terminated(signum)

    for name in ("SIGTERM", "SIGHUP", "SIGQUIT"):
        try:
            signal.signal(getattr(signal, name), interrupt)
        except (ValueError, AttributeError):  # not the main thread (embedded use), or no such signal
            pass


def interrupted_status(exc: BaseException | None = None) -> ExitStatus:
    """130 for Ctrl-C; 128 + the signal for TERM, HUP, QUIT (click wraps them in its Abort)."""
    cause = exc if isinstance(exc, Terminated) or exc is None else exc.__cause__ or exc.__context__
    if isinstance(cause, Terminated):
        return ExitStatus(128 + cause.signum)
    if _signal:
        return ExitStatus(128 + _signal)
    return ExitStatus.INTERRUPTED


def finished(result: Any, env: Environment) -> int:
    """The exit status of a command that returned `result`; a signal that came meanwhile wins."""
    if _signal:
        status = 128 + _signal
        if result != status:  # typer turned the signal into a plain exit code: name the signal
            env.write("\ntoolchat: interrupted\n", err=True)
        return status  # else the command has said so itself
    return int(result or 0) if isinstance(result, int) else 0


def failed(exc: BaseException, env: Environment) -> int:
    """The one mapping from an exception to its line on stderr and the exit status: a
    ToolchatError says `toolchat: error: ...` (or its own label), an interrupt says so, anything
    else is one line, never a traceback (TOOLCHAT_DEBUG=1 shows it)."""
    if isinstance(exc, ToolchatError):
        if env.debug:
            import traceback

            traceback.print_exception(exc, file=env.stderr)
        env.write(f"toolchat: {exc.label}: {clean(str(exc))}\n", err=True)
        return int(exc.exit_status)
    import typer  # loaded already: the command ran under it

    if isinstance(exc, typer.Exit):
        return int(exc.exit_code)
    if isinstance(exc, (KeyboardInterrupt, typer.Abort)):
        env.write("\ntoolchat: interrupted\n", err=True)
        return interrupted_status(exc)
    if hasattr(exc, "show") and hasattr(exc, "exit_code"):  # click's usage errors, vendored or not
        exc.show(file=env.stderr)
        return ExitStatus.USAGE
    if env.debug:
        raise exc
    env.write(
        f"toolchat: internal error: {clean(type(exc).__name__)}: {clean(str(exc))} "
        "(run with TOOLCHAT_DEBUG=1 for a traceback)\n",
        err=True,
    )
    return ExitStatus.BACKEND


INTERRUPTED = "interrupted — the conversation so far is kept"


def stop_notice(result: TurnResult, max_rounds: int, max_tokens: int | None) -> str | None:
    """What the end of a turn says besides its answer, the same words in the REPL and `ask`."""
    from toolchat.engine import Stopped

    if result.stopped is Stopped.INTERRUPTED:
        return INTERRUPTED
    if result.stopped is Stopped.MAX_ROUNDS:
        return f"the model was still calling tools after {max_rounds} model calls; raise --max-rounds or rephrase"
    if result.stopped is Stopped.MAX_TOKENS:
        limit = f"max_tokens {max_tokens}" if max_tokens else "the model's token limit"
        return f"the answer was cut at {limit}; raise --max-tokens (max_tokens in the config)"
    if result.stopped is Stopped.ANSWER and not result.answer.strip():
        return "the model returned an empty answer"
    return None


def exit_quickly(status: int) -> None:
    """Exit without Python's teardown of every module, which takes 40-60 ms once the openai SDK is
    imported (benchmarks/RESULTS.md). What of it matters is done here: atexit handlers run (tracing
    flushes its spans), the standard streams are flushed. While a thread that is not a daemon
    still runs, the usual exit, which waits for it."""
    import atexit
    import os
    import threading

    main_thread = threading.main_thread()
    waiting = [t for t in threading.enumerate() if t is not main_thread and not t.daemon and t.is_alive()]
    if waiting or not hasattr(atexit, "_run_exitfuncs"):
        sys.exit(status)
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        try:
            if stream is not None:  # None: toolchat was started with the descriptor closed
                stream.flush()
        except (OSError, ValueError):  # the reader went away, or the stream was closed
            pass
    os._exit(status)
