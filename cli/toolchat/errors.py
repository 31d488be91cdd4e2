"""Exit codes and the errors that carry them: the one place that maps failures to exit codes."""

from __future__ import annotations

from enum import IntEnum, unique


@unique
class ExitStatus(IntEnum):
    OK = 0
    BACKEND = 1  # the backend failed: unreachable, key refused, broke off, server error
    USAGE = 2  # usage or config error
    MAX_ROUNDS = 3  # --max-rounds reached before an answer
    HANGUP = 129  # SIGHUP: the terminal went away
    INTERRUPTED = 130  # Ctrl-C
    QUIT = 131  # SIGQUIT
    TERMINATED = 143  # SIGTERM


class Terminated(KeyboardInterrupt):
    """A signal that ends toolchat (TERM, HUP, QUIT) unwinds like Ctrl-C: running tools are
    stopped, every call is answered, the session file is intact; the exit code names the signal."""

    requested = 0  # the signal, once one came: stays set for places that catch the interrupt and must still leave

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


def interrupted_status(exc: BaseException) -> ExitStatus:
    """130 for Ctrl-C; 128 + the signal for TERM, HUP, QUIT (click wraps them in its Abort)."""
    cause = exc if isinstance(exc, Terminated) else exc.__cause__ or exc.__context__
    if isinstance(cause, Terminated):
        return ExitStatus(128 + cause.signum)
    if Terminated.requested:
        return ExitStatus(128 + Terminated.requested)
    return ExitStatus.INTERRUPTED


class ToolchatError(Exception):
    """An error with a one-line message for the user and the exit code it ends with."""

    exit_status: ExitStatus = ExitStatus.USAGE

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message} ({self.hint})" if self.hint else self.message


class UsageError(ToolchatError):
    exit_status = ExitStatus.USAGE


class ConfigError(ToolchatError):
    exit_status = ExitStatus.USAGE


class ToolLoadError(ToolchatError):
    """Tools cannot be assembled, e.g. two user modules define one name."""

    exit_status = ExitStatus.USAGE


class BackendError(ToolchatError):
    exit_status = ExitStatus.BACKEND
