"""Exit codes and the errors that carry them: the one place that maps failures to exit codes."""

from __future__ import annotations

from enum import IntEnum


class ExitStatus(IntEnum):
    OK = 0
    BACKEND = 1  # the backend failed: unreachable, key refused, broke off, server error
    USAGE = 2  # usage or config error
    MAX_ROUNDS = 3  # --max-rounds reached before an answer
    INTERRUPTED = 130


class Terminated(KeyboardInterrupt):
    """SIGTERM or SIGHUP: unwinds like Ctrl-C (running tools stopped, files intact), then toolchat
    ends, even where Ctrl-C would only clear the REPL's line. `requested` stays set once it came,
    for the places that catch the interrupt (a turn) and must still leave."""

    requested = False


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
