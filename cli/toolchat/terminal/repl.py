"""Starting and running the REPL: the terminal check, trust, the banner and the prompt loop."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from rich.console import Console
from rich.text import Text

from toolchat.config.file import ConfigFile
from toolchat.config.settings import Settings
from toolchat.env import Environment
from toolchat.errors import Terminated, UsageError
from toolchat.files import open_private, private_folder
from toolchat.process import INTERRUPTED, requested_signal
from toolchat.sessions import history_file
from toolchat.terminal.render import clean, plain
from toolchat.terminal.session import Reload, ReplOptions, ReplSession
from toolchat.terminal.slash import COMMANDS, EXIT, dispatch
from toolchat.tools import Registry


def require_terminal(env: Environment) -> None:
    if not env.stdin_isatty or not env.stdout_isatty:
        raise UsageError(
            "toolchat chat needs a terminal, and stdin or stdout is not one",
            'for scripts and pipes use: toolchat ask "..."',
        )


def ask_trust(console: Console) -> Any:
    """The REPL asks once about an untrusted project config, showing what it sets."""
    from toolchat.config.trust import summary
    from toolchat.terminal.approval import one_key

    def ask(config: ConfigFile) -> bool:
        console.print(plain(f"This project has a config you have not trusted yet: {config.path}", "bold yellow"))
        console.print(plain("It can run code (its tool folders) and send your API key to its base_url. It sets:"))
        for line in summary(config.data):
            console.print(plain(f"  {line}"))
        if one_key("Trust it and use it? [y/n] ", "yn") != "y":
            return False
        console.print(plain(f"trusted {config.path}; an edit to it will need trust again"))
        return True

    return ask


def reasoning_line(settings: Any) -> str:
    """What is in force for reasoning models, when it is not the default."""
    effort = f"effort {settings.reasoning_effort}" if settings.reasoning_effort else "effort: the model's default"
    keep = {"turn": "this turn's", "all": "every turn's", "none": "none"}[settings.reasoning_keep]
    shown = "shown live" if settings.show_reasoning else "collapsed"
    return f"reasoning: {effort} · passed back: {keep} · {shown} (/reasoning)"


def banner(chat: ReplSession, console: Console) -> None:
    settings = chat.settings
    tools = f"{len(chat.engine.registry.names())} tools"
    if settings.mcp_servers:
        from toolchat.mcp.wiring import starting

        tools += " so far" if starting(chat.all_tools) else ""  # the rest join as their servers start
    where = ", ".join(str(p) for p in settings.sources) or "no config file (defaults)"
    console.print(
        Text.assemble(
            ("toolchat", "bold cyan"),
            f"  {settings.backend} · ",
            (clean(chat.backend.model), "bold"),
            f" · {tools} · config: ",
            (clean(where), "dim"),
        )
    )
    describe = getattr(chat.backend, "describe", None)
    if describe is not None:  # what the first line said already (kind, model) is not said twice
        said = (settings.backend, chat.backend.model)
        detail = " · ".join(part for part in describe().split(" · ") if part not in said)
        if detail:
            console.print(plain(f"  {detail}", "dim"))
    if settings.reasoning_effort or settings.reasoning_keep != "turn" or not settings.show_reasoning:
        console.print(plain(f"  {reasoning_line(settings)}", "dim"))
    if settings.mcp_servers:
        from toolchat.mcp.wiring import source_of, summary

        console.print(plain(f"  {summary(source_of(chat.all_tools))}", "dim"))
    from toolchat.sandbox.policy import summary as sandbox_summary

    console.print(plain(f"  {sandbox_summary(settings.sandbox, settings.origins.get('sandbox'))}", "dim"))
    from rich.padding import Padding

    notes = getattr(chat.backend, "notes", lambda: [])()  # what the backend wants a new user to know
    for line in [*notes, *chat.notices]:  # wrapped lines stay indented under the first
        console.print(Padding(plain(line, "yellow"), (0, 0, 0, 2)))
    console.print(plain("  /help for commands · Ctrl-D to leave", "dim"))


def _completer(chat: ReplSession) -> Any:
    """Slash commands as the first word; tool names after /allow, /deny, or anywhere in a message."""
    from prompt_toolkit.completion import Completer, Completion

    class ChatCompleter(Completer):
        def get_completions(self, document: Any, complete_event: Any) -> Any:
            text = document.text_before_cursor
            word = document.get_word_before_cursor(WORD=True)
            first = " " not in text.lstrip()
            names = COMMANDS if first and text.lstrip().startswith("/") else chat.all_tools.names()
            for name in names:
                if name.startswith(word) and word:
                    yield Completion(name, start_position=-len(word))

    return ChatCompleter()


def _history(chat: ReplSession, env: Environment) -> Any:
    """The prompt history of this project: private (0600 in a 0700 folder), secrets written as
    *** (a key pasted at the prompt); in memory if the data dir cannot be written."""
    from prompt_toolkit.history import FileHistory, InMemoryHistory

    redact = chat.redactor.redact

    class RedactedHistory(FileHistory):
        def store_string(self, string: str) -> None:
            super().store_string(redact(string))

    path = history_file(env.data_dir, chat.settings.project_dir)
    try:
        private_folder(path.parent, root=env.data_dir)
        os.close(open_private(path))  # a FIFO in its place is refused, not waited on
        return RedactedHistory(str(path))
    except OSError:
        return InMemoryHistory()


def prompt_session(chat: ReplSession, env: Environment) -> Any:
    from prompt_toolkit import PromptSession
    from prompt_toolkit.key_binding import KeyBindings

    bindings = KeyBindings()

    @bindings.add("escape", "enter")
    def _newline(event: Any) -> None:
        event.current_buffer.insert_text("\n")

    return PromptSession(
        history=_history(chat, env),
        completer=_completer(chat),
        key_bindings=bindings,
        bottom_toolbar=_toolbar(chat),
        complete_while_typing=True,
        refresh_interval=0.5 if chat.settings.mcp_servers else 0,
    )  # servers turning ready


def _toolbar(chat: ReplSession) -> Any:
    if not chat.settings.mcp_servers:
        return chat.toolbar
    from toolchat.mcp.wiring import toolbar

    return lambda: chat.toolbar(toolbar(chat.all_tools))  # each MCP server's state too


def _typed_ahead() -> str:
    """Text typed while an answer streamed: read it from the terminal so it becomes the next
    prompt's input instead of being lost."""
    import select
    import sys
    import termios

    try:
        fd = sys.stdin.fileno()
        if not os.isatty(fd):
            return ""
        chunks = []
        while select.select([fd], [], [], 0)[0]:
            chunk = os.read(fd, 4096)
            if not chunk:
                break
            chunks.append(chunk)
        termios.tcflush(fd, termios.TCIFLUSH)
    except (OSError, ValueError, termios.error):
        return ""
    text = b"".join(chunks).decode("utf-8", errors="replace")
    return "".join(ch for ch in text if ch.isprintable() or ch == " ").strip() if "\x1b" not in text else ""


def _silence_echo() -> Any:
    """While a turn runs, keys typed are not echoed into the answer; returns the restore function."""
    import sys
    import termios

    try:
        fd = sys.stdin.fileno()
        old = termios.tcgetattr(fd)
        new = termios.tcgetattr(fd)
        new[3] &= ~(termios.ECHO | termios.ICANON)
        termios.tcsetattr(fd, termios.TCSANOW, new)
    except (OSError, ValueError, termios.error):
        return lambda: None
    return lambda: termios.tcsetattr(fd, termios.TCSANOW, old)


def notifier(console: Console) -> Callable[[str], None]:
    """How the REPL shows a notice from the config, the tools or the backend: one dim line."""
    return lambda message: console.print(clean(message), style="dim", markup=False)


def start(
    env: Environment,
    console: Console,
    settings: Settings,
    registry: Registry,
    options: ReplOptions,
    reload: Reload,
) -> int:
    """Start the backend, open the session and run the REPL until /exit, Ctrl-D or a signal."""
    from toolchat.backends.factory import create_backend

    with console.status("starting…"):
        backend = create_backend(settings, env, notifier(console))
    return run(ReplSession(env, settings, registry, backend, options, console, reload), env)


def _open(chat: ReplSession, session: Any) -> Callable[[], None]:
    """The banner; with MCP servers, their tools join as each server becomes ready and one that
    fails is said above the prompt. Returns what the loop calls between prompts to catch up."""
    if not chat.settings.mcp_servers:
        banner(chat, chat.console)
        return lambda: None
    from toolchat.mcp.wiring import turns_wait
    from toolchat.terminal.servers import ServerWatch

    watch = ServerWatch(chat.all_tools, session, notifier(chat.console))
    failed = watch.catch_up()  # the banner counts the tools of the servers ready by now
    banner(chat, chat.console)
    watch.say(failed)
    turns_wait(chat.all_tools)  # the prompt is up; a turn now waits for servers still starting
    return lambda: watch.say(watch.catch_up())


def run(chat: ReplSession, env: Environment) -> int:
    console = chat.console
    session = prompt_session(chat, env)
    catch_up = _open(chat, session)
    ahead = ""
    chat.drain_input = _typed_ahead  # keys typed before an approval question never answer it
    try:
        while True:
            if requested_signal():  # TERM or HUP at the prompt: prompt-toolkit swallows it; leave now
                raise Terminated(requested_signal())
            catch_up()  # what servers did while a turn or a command ran
            try:
                text = session.prompt("› ", default=ahead)
            except Terminated:
                raise
            except KeyboardInterrupt:
                ahead = ""
                continue  # Ctrl-C at the prompt clears the line
            except EOFError:
                break
            ahead = ""
            catch_up()  # a server ready a moment ago is known to /tools, /allow and the turn
            if not text.strip():
                continue
            if console.record:  # a recorded session (README's SVG) shows what was typed too
                console.print(plain(f"› {text}", "bold"))
            if text.lstrip().startswith("/"):
                try:
                    if dispatch(chat, text) == EXIT:
                        break
                except Terminated:  # TERM, HUP, QUIT during a command's model call (/retry): leave now
                    raise
                except KeyboardInterrupt:  # a command's model call (/compact, /retry) stops; the REPL stays
                    console.print(plain(f"[{INTERRUPTED}]", "yellow"))
                continue
            restore = _silence_echo()
            try:
                result = chat.turn(text)
                if result.signal:  # TERM, HUP, QUIT: the turn is wound up; now leave
                    raise Terminated(result.signal)
            except Terminated:
                raise
            except KeyboardInterrupt:
                console.print(plain(f"[{INTERRUPTED}]", "yellow"))
            finally:
                ahead = " ".join(filter(None, [*chat.typed_ahead, _typed_ahead()]))
                chat.typed_ahead.clear()
                restore()
    finally:
        chat.close()
        record = env.environ.get("TOOLCHAT_RECORD_SVG")
        if record:
            console.save_svg(record, title="toolchat")
    return 0


def console_for_chat(env: Environment) -> Console:
    return Console(file=env.stdout, highlight=False, record=bool(env.environ.get("TOOLCHAT_RECORD_SVG")))
