"""Exit codes and the errors that carry them (toolchat.process.failed turns them into the line on
stderr and the exit status)."""

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

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


class ToolchatError(Exception):
    """An error with a one-line message for the user and the exit code it ends with."""

    exit_status: ExitStatus = ExitStatus.USAGE
    label = "error"  # the word after `toolchat:` on stderr

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


class ContextOverflow(BackendError):
    """The server (or the local model) refused because the conversation does not fit its context
    window; `window` and `prompt_tokens` are what it said of the sizes, where it did."""

    def __init__(
        self, message: str, hint: str | None = None, *, window: int | None = None, prompt_tokens: int | None = None
    ) -> None:
        super().__init__(message, hint)
        self.window = window
        self.prompt_tokens = prompt_tokens


class MaxRoundsError(ToolchatError):
    """The model was still calling tools when --max-rounds model calls were made."""

    exit_status = ExitStatus.MAX_ROUNDS
    label = "stopped"
