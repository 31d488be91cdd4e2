"""Starting and running the REPL: the terminal check, trust, the banner and the prompt loop."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.text import Text

from toolchat.chat import Chat, ChatOptions
from toolchat.config_file import ConfigFile
from toolchat.env import Environment
from toolchat.errors import Terminated, UsageError
from toolchat.render import clean, plain
from toolchat.sessions import project_folder
from toolchat.slash import COMMANDS, EXIT, dispatch


def require_terminal(env: Environment) -> None:
    if not env.stdin_isatty or not env.stdout_isatty:
        raise UsageError("toolchat chat needs a terminal, and stdin or stdout is not one",
                         'for scripts and pipes use: toolchat ask "..."')


def ask_trust(console: Console) -> Any:
    """The REPL asks once about an untrusted project config, showing what it sets."""
    from toolchat.approval import one_key
    from toolchat.config_cmd import summary

    def ask(config: ConfigFile) -> bool:
        console.print(plain(f"This project has a config you have not trusted yet: {config.path}", "bold yellow"))
        console.print(plain("It can run code (its tool folders) and send your API key to its base_url. It sets:"))
        for line in summary(config.data):
            console.print(plain(f"  {line}"))
        return one_key("Trust it and use it? [y/n] ", "yn") == "y"

    return ask


def banner(chat: Chat, console: Console) -> None:
    settings = chat.settings
    tools = len(chat.engine.registry.tools)
    where = ", ".join(str(p) for p in settings.sources) or "no config file (defaults)"
    console.print(Text.assemble(("toolchat", "bold cyan"), f"  {settings.backend} · ", (clean(chat.backend.model), "bold"),
                                f" · {tools} tools · config: ", (clean(where), "dim")))
    describe = getattr(chat.backend, "describe", None)
    if describe is not None:
        console.print(plain(f"  {describe()}", "dim"))
    if settings.mcp_servers:
        from toolchat.mcp.wiring import source_of, summary

        console.print(plain(f"  {summary(source_of(chat.all_tools))}", "dim"))
    for line in getattr(chat.backend, "notes", lambda: [])():  # what the backend wants a new user to know
        console.print(plain(f"  {line}", "yellow"))
    console.print(plain("  /help for commands · Ctrl-D to leave", "dim"))


def prompt_session(chat: Chat, env: Environment) -> Any:
    from prompt_toolkit import PromptSession
    from prompt_toolkit.completion import WordCompleter
    from prompt_toolkit.history import FileHistory, InMemoryHistory
    from prompt_toolkit.key_binding import KeyBindings

    history: Any = InMemoryHistory()
    path = project_folder(env.data_dir, chat.settings.project_dir).with_suffix(".history")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "a", encoding="utf-8"):
            pass
        history = FileHistory(str(path))
    except OSError:
        pass
    bindings = KeyBindings()

    @bindings.add("escape", "enter")
    def _newline(event: Any) -> None:
        event.current_buffer.insert_text("\n")

    words = list(COMMANDS) + chat.all_tools.names()
    return PromptSession(history=history, completer=WordCompleter(words, sentence=True), key_bindings=bindings,
                         bottom_toolbar=_toolbar(chat), complete_while_typing=True,
                         refresh_interval=0.5 if chat.settings.mcp_servers else 0)  # servers turning ready


def _toolbar(chat: Chat) -> Any:
    if not chat.settings.mcp_servers:
        return chat.toolbar
    from toolchat.mcp.wiring import toolbar

    return lambda: chat.toolbar() + toolbar(chat.all_tools)  # each MCP server's state too


def run(chat: Chat, env: Environment) -> int:
    console = chat.console
    banner(chat, console)
    if chat.settings.mcp_servers:
        from toolchat.mcp.wiring import turns_wait

        turns_wait(chat.all_tools)  # the prompt is up; a turn now waits for servers still starting
    session = prompt_session(chat, env)
    try:
        while True:
            if Terminated.requested:  # SIGTERM or SIGHUP: leave (MCP servers and the session are closed)
                break
            try:
                text = session.prompt("› ")
            except KeyboardInterrupt:
                continue  # Ctrl-C at the prompt clears the line
            except EOFError:
                break
            if not text.strip():
                continue
            if console.record:  # a recorded session (README's SVG) shows what was typed too
                console.print(plain(f"› {text}", "bold"))
            if text.lstrip().startswith("/"):
                if dispatch(chat, text) == EXIT:
                    break
                continue
            try:
                chat.turn(text)
            except KeyboardInterrupt:
                console.print(plain("[interrupted — the conversation so far is kept]", "yellow"))
    finally:
        chat.store.close()
        record = os.environ.get("TOOLCHAT_RECORD_SVG")
        if record:
            console.save_svg(record, title="toolchat")
    return 130 if Terminated.requested else 0  # ExitStatus.INTERRUPTED


def console_for_chat() -> Console:
    return Console(highlight=False, record=bool(os.environ.get("TOOLCHAT_RECORD_SVG")))


