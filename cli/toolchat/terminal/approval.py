"""The REPL's approval question: one key decides a call. y run, n decline (with an optional reason
the model sees), a run and always allow this tool for the session, e edit the arguments as JSON
(validated again) then run, ? help."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from rich.console import Console

from toolchat.engine import Decision, PendingCall, decision_help
from toolchat.terminal.render import clean, plain
from toolchat.tools.validate import InvalidArguments, edited_arguments

CTRL_D = "\x04"  # what one_key returns for Ctrl-D at the approval question, never one of its keys
HELP = decision_help("session", "JSON; Esc then Enter to finish", "stops the turn; the conversation is kept.")


def one_key(message: str, keys: str, eof: str = "n") -> str:
    """Wait for one of `keys` (either case, no Enter); every other key, Enter and pasted text
    included, is ignored and the question stays. Ctrl-C raises KeyboardInterrupt, Ctrl-D returns `eof`."""
    from prompt_toolkit import PromptSession
    from prompt_toolkit.key_binding import KeyBindings
    from prompt_toolkit.keys import Keys

    bindings = KeyBindings()
    for key in keys:
        for typed in {key, key.upper()}:
            bindings.add(typed)(lambda event, key=key: event.app.exit(result=key))
    bindings.add("c-c")(lambda event: event.app.exit(exception=KeyboardInterrupt))
    bindings.add("c-d")(lambda event: event.app.exit(result=eof))
    # prompt-toolkit's own Enter (accept the line), paste and Tab bindings are more specific than
    # <any>, so each is overridden by name: Enter must not answer the question with ''
    for ignored in ("<any>", "c-m", "c-j", "c-i", Keys.BracketedPaste):
        bindings.add(ignored)(lambda event: None)
    session: PromptSession[str] = PromptSession(message, key_bindings=bindings, erase_when_done=True)
    while True:
        answer = session.prompt()
        if answer == eof or (len(answer) == 1 and answer in keys):  # anything else (a binding not foreseen) asks again
            return answer


class ReplApprover:
    def __init__(self, console: Console, sandbox: Callable[[], Any] = lambda: None) -> None:
        self.console = console
        self.sandbox = sandbox  # the sandbox config in force, for the line that states the call's

    def __call__(self, pending: PendingCall) -> Decision:
        name = clean(pending.tool.name)
        from toolchat.sandbox.policy import of_tool

        self.console.print(plain(of_tool(self.sandbox(), pending.tool.name, pending.tool.source is not None), "dim"))
        while True:
            question = f"Run {name}? [y]es [n]o [a]lways [e]dit [?] "
            key = one_key(question, "ynae?", eof=CTRL_D)
            if key == CTRL_D:  # declined, as in `ask`; no reason asked for
                self.console.print(plain(question + "Ctrl-D: decline", "bold"))
                return Decision(False, "the user did not answer")
            if key in "yna":
                self.console.print(
                    plain(question + {"y": "y: run", "n": "n: decline", "a": "a: run, always"}[key], "bold")
                )
            if key == "y":
                return Decision(True)
            if key == "a":
                return Decision(True, always=True)
            if key == "n":
                return Decision(False, self._reason())
            if key == "?":
                self.console.print(plain(HELP, "dim"))
                continue
            edited = self._edit(pending)
            if edited is not None:
                return Decision(True, arguments=edited)

    @staticmethod
    def _reason() -> str | None:
        from prompt_toolkit import PromptSession

        try:
            reason = PromptSession().prompt("Reason for the model (Enter to skip): ").strip()
        except (KeyboardInterrupt, EOFError):
            return None
        return reason or None

    def _edit(self, pending: PendingCall) -> dict[str, Any] | None:
        """Edited arguments that are valid for the tool, or None to go back to the question."""
        from prompt_toolkit import PromptSession

        text = json.dumps(pending.arguments, indent=2, ensure_ascii=False)
        session: PromptSession[str] = PromptSession(multiline=True)
        while True:
            try:
                text = session.prompt("Arguments (Esc Enter to finish, Ctrl-C to go back):\n", default=text)
            except (KeyboardInterrupt, EOFError):
                return None
            try:
                return edited_arguments(pending.tool, text)
            except InvalidArguments as exc:
                self.console.print(plain(str(exc), "red"))
