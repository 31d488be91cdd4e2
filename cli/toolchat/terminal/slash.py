"""Slash commands of the REPL. Each takes the ReplSession and the text after the command."""

from __future__ import annotations

import difflib
from collections.abc import Callable
from typing import TYPE_CHECKING

from rich.table import Table

from toolchat.engine.compaction import compacted
from toolchat.errors import Terminated, ToolchatError
from toolchat.terminal.render import clean, plain

if TYPE_CHECKING:
    from toolchat.terminal.session import ReplSession

EXIT = "exit"
Handler = Callable[["ReplSession", str], "str | None"]
COMMANDS: dict[str, tuple[Handler, str]] = {}


def command(name: str, help_text: str) -> Callable[[Handler], Handler]:
    def register(handler: Handler) -> Handler:
        COMMANDS[name] = (handler, help_text)
        return handler

    return register


def dispatch(chat: ReplSession, line: str) -> str | None:
    name, _, argument = line.strip().partition(" ")
    if name not in COMMANDS:
        close = difflib.get_close_matches(name, list(COMMANDS), n=1)
        hint = f"; did you mean {close[0]}?" if close else "; /help lists them"
        chat.console.print(plain(f"unknown command {name}{hint}", "yellow"))
        return None
    return COMMANDS[name][0](chat, argument.strip())


@command("/help", "this list")
def _help(chat: ReplSession, argument: str) -> None:
    table = Table(box=None, show_header=False, pad_edge=False)
    for name, (_, text) in COMMANDS.items():
        table.add_row(name, text)
    chat.console.print(table)
    chat.console.print(
        plain("Enter sends; Esc Enter adds a line. Ctrl-C stops the model or a tool; Ctrl-D leaves.", "dim")
    )


@command("/tools", "the tools offered, and which run without asking")
def _tools(chat: ReplSession, argument: str) -> None:
    table = Table(box=None, header_style="bold", pad_edge=False)
    for column in ("tool", "approval", "description"):
        table.add_column(column)
    policy = chat.engine.policy
    for tool in chat.all_tools.tools.values():
        state = "denied" if tool.name in chat.denied else ("allowed" if policy.allows(tool.name) else "ask")
        table.add_row(plain(tool.name), state, plain(tool.summary))
    chat.console.print(table)
    if chat.settings.mcp_servers:
        from toolchat.mcp.wiring import source_of, starting, summary

        if starting(chat.all_tools):  # their tools join as each is ready
            chat.console.print(
                plain(f"{summary(source_of(chat.all_tools))}; a server's tools join when it is ready", "dim")
            )


def _done(chat: ReplSession, message: str) -> None:
    chat.console.print(plain(message, "green"))


def _problem(chat: ReplSession, exc: ToolchatError) -> None:
    chat.console.print(plain(str(exc), "yellow"))


def _on_tool(chat: ReplSession, name: str, command_name: str, operation: Callable[[str], str]) -> None:
    if not name:
        chat.console.print(plain(f"usage: {command_name} NAME (Tab completes tool names)", "yellow"))
        return
    try:
        _done(chat, operation(name))
    except ToolchatError as exc:
        _problem(chat, exc)


@command("/allow", "NAME: run this tool without asking, for this session")
def _allow(chat: ReplSession, name: str) -> None:
    _on_tool(chat, name, "/allow", chat.allow)


@command("/deny", "NAME: stop offering this tool to the model")
def _deny(chat: ReplSession, name: str) -> None:
    _on_tool(chat, name, "/deny", chat.deny)


@command("/model", "[NAME]: show or switch the model")
def _model(chat: ReplSession, name: str) -> None:
    if not name:
        chat.console.print(plain(f"{chat.settings.backend}: {chat.backend.model}"))
        return
    _switch(chat, chat.settings.profile, name)


@command("/profile", "NAME: switch to a profile of the config")
def _profile(chat: ReplSession, name: str) -> None:
    if not name:
        chat.console.print(plain(f"profile: {chat.settings.profile or '(none)'}"))
        return
    _switch(chat, name, None)  # the profile's own model


def _switch(chat: ReplSession, profile: str | None, model: str | None) -> None:
    try:
        with chat.console.status("loading…"):
            _done(chat, chat.switch(profile, model))
    except ToolchatError as exc:
        chat.console.print(plain(f"error: {exc}", "red"))
    except Terminated:  # TERM, HUP, QUIT while it loads: leave, as at any other moment
        raise
    except KeyboardInterrupt:  # Ctrl-C while the new backend was built: the old one was never closed
        chat.console.print(plain(f"[switch interrupted; {chat.still_using()}]", "yellow"))


@command("/system", "[TEXT]: show or set the system prompt")
def _system(chat: ReplSession, text: str) -> None:
    if not text:
        system = chat.engine.conversation.system
        chat.console.print(plain(chat.redactor.redact(system) if system else "(no system prompt)"))  # no secret
        return
    chat.set_system(text)
    _done(chat, "system prompt set")


@command("/reset", "start a new conversation (a new session file)")
def _reset(chat: ReplSession, argument: str) -> None:
    chat.reset()
    _done(chat, "new conversation")


@command("/undo", "remove the last exchange")
def _undo(chat: ReplSession, argument: str) -> None:
    if chat.undo() is None:
        chat.console.print(plain("nothing to undo", "yellow"))
    else:
        _done(chat, "removed the last exchange")


@command("/retry", "ask the last question again")
def _retry(chat: ReplSession, argument: str) -> None:
    result = chat.retry()
    if result is None:
        chat.console.print(plain("nothing to retry", "yellow"))
    elif result.signal:  # TERM, HUP, QUIT: the turn is wound up; leave as after any turn
        raise Terminated(result.signal)


@command("/save", "[FILE]: save the conversation (.md, or .json for messages); /save! replaces a file")
def _save(chat: ReplSession, name: str) -> None:
    _save_as(chat, name, overwrite=False)


@command("/save!", "FILE: save, replacing the file if it exists")
def _save_over(chat: ReplSession, name: str) -> None:
    _save_as(chat, name, overwrite=True)


def _save_as(chat: ReplSession, name: str, overwrite: bool) -> None:
    try:
        _done(chat, f"saved {chat.save(name, overwrite)}")
    except ToolchatError as exc:  # the hint is a command: on a line of its own, never wrapped inside
        chat.console.print(plain(exc.message, "yellow"))
        if exc.hint:
            chat.console.print(plain(exc.hint, "yellow"))


@command("/show", "the last tool result, whole (through a pager when long)")
def _show(chat: ReplSession, argument: str) -> None:
    record = chat.display.last_result
    if record is None:
        chat.console.print(plain("no tool has run yet", "yellow"))
        return
    shown = chat.redactor.redact(f"{record.name} → {record.status.value}, {record.duration:.2f} s\n{record.output}")
    text = plain(shown)  # no secret, as everywhere on screen
    if len(record.output.splitlines()) > chat.console.height - 4:
        with chat.console.pager():
            chat.console.print(text)
    else:
        chat.console.print(text)


@command("/history", "the conversation so far, one line per message")
def _history(chat: ReplSession, argument: str) -> None:
    for message in chat.engine.messages:
        text = message.get("content") or ""
        for call in message.get("tool_calls") or []:
            text += f" [call {call['function']['name']} {call['function']['arguments']}]"
        line = " ".join(clean(chat.redactor.redact(text)).split())  # as the turn showed it: no secret
        mark = " (compacted)" if compacted(message) else ""
        thought = message.get("reasoning")
        if isinstance(thought, dict) and thought.get("text"):
            reasoning = " ".join(clean(chat.redactor.redact(str(thought["text"]))).split())
            chat.console.print(plain(f"{'reasoning':>9}: {cut(reasoning, 150)}", "dim"))
        chat.console.print(plain(f"{message['role']:>9}{mark}: {cut(line, 150)}"))


def cut(line: str, width: int) -> str:
    """`line` at most `width` characters, cut after a word with an ellipsis, mid-word only when
    one word fills most of it."""
    if len(line) <= width:
        return line
    head = line[: width - 1]
    space = head.rfind(" ")
    return (head[:space] if space > width // 2 else head).rstrip() + "…"


@command("/compact", "[WHAT TO KEEP]: compact the conversation now, the older turns summarized by the model")
def _compact(chat: ReplSession, keep: str) -> None:
    try:
        done = chat.engine.compact(keep or None)
    except ToolchatError as exc:
        _problem(chat, exc)
        return
    if not done:
        chat.console.print(plain("nothing to compact yet", "dim"))


@command("/reasoning", "the last reasoning whole; /reasoning on|off shows it live or not")
def _reasoning(chat: ReplSession, argument: str) -> None:
    view = chat.display.thought
    if argument in ("on", "off"):
        view.live = argument == "on"
        _done(chat, f"reasoning is {'shown as it streams' if view.live else 'collapsed to one line'}")
        return
    if argument:
        chat.console.print(plain("usage: /reasoning [on|off]", "yellow"))
        return
    if not view.last:
        chat.console.print(plain("no reasoning yet in this session", "dim"))
        return
    chat.console.print(plain(view.last, "dim italic"))


@command("/stats", "tokens, rounds, and time per round and per tool")
def _stats(chat: ReplSession, argument: str) -> None:
    stats = chat.stats
    table = Table(box=None, header_style="bold", pad_edge=False)
    for column in ("round", "prompt", "cached", "completion", "reasoning", "seconds"):
        table.add_column(column, justify="right")
    for number, (usage, seconds) in enumerate(stats.rounds, start=1):
        table.add_row(
            str(number),
            *(_count(n) for n in (usage.prompt_tokens, usage.cached_tokens, usage.completion_tokens)),
            _count(usage.reasoning_tokens),
            f"{seconds:.2f}",
        )
    counts = (
        counted(stats.turns, "turn"),
        counted(len(stats.rounds), "model call"),
        counted(len(stats.tools), "tool call"),
    )
    chat.console.print(plain(f"{', '.join(counts)}, {chat.engine.compaction.shown()} tokens"))
    if stats.rounds:
        chat.console.print(table)
        if any(None in (u.prompt_tokens, u.cached_tokens, u.completion_tokens) for u, _ in stats.rounds):
            chat.console.print(plain("  - : not reported by the server", "dim"))
    for name, status, seconds in stats.tools:
        chat.console.print(plain(f"  tool {name}: {status}, {seconds:.2f} s"))


def _count(tokens: int | None) -> str:
    return "-" if tokens is None else str(tokens)


@command("/mcp", "the MCP servers and their state; /mcp restart NAME starts one again")
def _mcp(chat: ReplSession, argument: str) -> None:
    from toolchat.mcp.wiring import describe, restart, source_of

    source = source_of(chat.all_tools)
    verb, _, name = argument.partition(" ")
    lines = [restart(source, name.strip())] if verb == "restart" else describe(source)
    for line in lines:
        chat.console.print(plain(line))


@command("/exit", "leave (Ctrl-D too)")
def _exit(chat: ReplSession, argument: str) -> str:
    return EXIT


def counted(number: int, noun: str) -> str:
    """`1 turn`, `2 turns`, `0 turns`."""
    return f"{number} {noun}" if number == 1 else f"{number} {noun}s"
