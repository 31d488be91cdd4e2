"""Slash commands of the REPL. Each takes the Chat and the text after the command."""

from __future__ import annotations

import difflib
import json
from pathlib import Path
from typing import TYPE_CHECKING, Callable

from rich.table import Table

from toolchat.render import clean, plain

if TYPE_CHECKING:
    from toolchat.chat import Chat

EXIT = "exit"
Handler = Callable[["Chat", str], "str | None"]
COMMANDS: dict[str, tuple[Handler, str]] = {}


def command(name: str, help_text: str) -> Callable[[Handler], Handler]:
    def register(handler: Handler) -> Handler:
        COMMANDS[name] = (handler, help_text)
        return handler
    return register


def dispatch(chat: Chat, line: str) -> str | None:
    name, _, argument = line.strip().partition(" ")
    if name not in COMMANDS:
        close = difflib.get_close_matches(name, list(COMMANDS), n=1)
        hint = f"; did you mean {close[0]}?" if close else "; /help lists them"
        chat.console.print(plain(f"unknown command {name}{hint}", "yellow"))
        return None
    return COMMANDS[name][0](chat, argument.strip())


@command("/help", "this list")
def _help(chat: Chat, argument: str) -> None:
    table = Table(box=None, show_header=False, pad_edge=False)
    for name, (_, text) in COMMANDS.items():
        table.add_row(name, text)
    chat.console.print(table)
    chat.console.print(plain("Enter sends; Esc Enter adds a line. Ctrl-C stops the model or a tool; Ctrl-D leaves.", "dim"))


@command("/tools", "the tools offered, and which run without asking")
def _tools(chat: Chat, argument: str) -> None:
    table = Table(box=None, header_style="bold", pad_edge=False)
    for column in ("tool", "approval", "description"):
        table.add_column(column)
    policy = chat.engine.policy
    for tool in chat.all_tools.tools.values():
        state = "denied" if tool.name in chat.denied else ("allowed" if policy.allows(tool.name) else "ask")
        table.add_row(plain(tool.name), state, plain(tool.summary))
    chat.console.print(table)


def _known(chat: Chat, name: str) -> bool:
    if chat.all_tools.get(name) is None:
        close = difflib.get_close_matches(name, chat.all_tools.names(), n=1)
        chat.console.print(plain(f"no tool named '{name}'" + (f"; did you mean '{close[0]}'?" if close else ""), "yellow"))
        return False
    return True


@command("/allow", "NAME: run this tool without asking, for this session")
def _allow(chat: Chat, name: str) -> None:
    if _known(chat, name):
        chat.denied.discard(name)
        chat.engine.registry = chat.all_tools.without(chat.denied)
        chat.engine.policy.allow.add(name)
        chat.console.print(plain(f"{name} now runs without asking", "green"))


@command("/deny", "NAME: stop offering this tool to the model")
def _deny(chat: Chat, name: str) -> None:
    if _known(chat, name):
        chat.denied.add(name)
        chat.engine.policy.allow.discard(name)
        chat.engine.registry = chat.all_tools.without(chat.denied)
        chat.console.print(plain(f"{name} is no longer offered", "green"))


@command("/model", "[NAME]: show or switch the model")
def _model(chat: Chat, name: str) -> None:
    if not name:
        chat.console.print(plain(f"{chat.settings.backend}: {chat.backend.model}"))
        return
    _switch(chat, chat.settings.profile, name)


@command("/profile", "NAME: switch to a profile of the config")
def _profile(chat: Chat, name: str) -> None:
    if not name:
        chat.console.print(plain(f"profile: {chat.settings.profile or '(none)'}"))
        return
    _switch(chat, name, None)  # the profile's own model


def _switch(chat: Chat, profile: str | None, model: str | None) -> None:
    from toolchat.errors import ToolchatError

    chat.backend.close()  # the old model goes first: two local models may not fit in memory together
    try:
        settings, backend = chat.reload(profile, model)
    except ToolchatError as exc:
        chat.console.print(plain(f"error: {exc}", "red"))
        settings, backend = chat.reload(chat.settings.profile, chat.settings.model)
        chat.settings, chat.backend, chat.engine.backend = settings, backend, backend
        chat.console.print(plain(f"still using {settings.backend}: {backend.model}", "yellow"))
        return
    chat.settings, chat.backend, chat.engine.backend = settings, backend, backend
    chat.console.print(plain(f"now using {settings.backend}: {backend.model}", "green"))


@command("/system", "[TEXT]: show or set the system prompt")
def _system(chat: Chat, text: str) -> None:
    messages = chat.engine.messages
    has = bool(messages) and messages[0]["role"] == "system"
    if not text:
        chat.console.print(plain(messages[0]["content"] if has else "(no system prompt)"))
        return
    if has:
        messages[0] = {"role": "system", "content": text}
    else:
        messages.insert(0, {"role": "system", "content": text})
    chat.store.sync([])  # the session file records a truncation, then the history as it is now
    chat.store.sync(messages)
    chat.console.print(plain("system prompt set", "green"))


@command("/reset", "start a new conversation (a new session file)")
def _reset(chat: Chat, argument: str) -> None:
    messages = chat.engine.messages
    chat.engine.messages = [m for m in messages[:1] if m["role"] == "system"]
    chat.new_session()
    chat.store.sync(chat.engine.messages)
    chat.console.print(plain("new conversation", "green"))


def _drop_last_exchange(chat: Chat, nothing: str) -> str | None:
    """Remove the last user message and everything after it; its text, or None if there is none."""
    messages = chat.engine.messages
    index = next((i for i in range(len(messages) - 1, -1, -1) if messages[i]["role"] == "user"), None)
    if index is None:
        chat.console.print(plain(nothing, "yellow"))
        return None
    text = messages[index]["content"]
    del messages[index:]
    chat.store.sync(messages)
    return text


@command("/undo", "remove the last exchange")
def _undo(chat: Chat, argument: str) -> None:
    if _drop_last_exchange(chat, "nothing to undo") is not None:
        chat.console.print(plain("removed the last exchange", "green"))


@command("/retry", "ask the last question again")
def _retry(chat: Chat, argument: str) -> None:
    text = _drop_last_exchange(chat, "nothing to retry")
    if text is not None:
        chat.turn(text)


@command("/save", "[FILE]: save the conversation (.md, or .json for messages)")
def _save(chat: Chat, name: str) -> None:
    path = Path(name or f"toolchat-{chat.store.id}.md").expanduser()
    try:
        if path.suffix == ".json":
            path.write_text(json.dumps(chat.engine.messages, indent=2, ensure_ascii=False), encoding="utf-8")
        else:
            path.write_text(to_markdown(chat.engine.messages), encoding="utf-8")
    except OSError as exc:
        chat.console.print(plain(f"cannot save to {path}: {exc.strerror or exc}", "red"))
        return
    chat.console.print(plain(f"saved {path}", "green"))


def to_markdown(messages: list[dict]) -> str:
    parts = []
    for message in messages:
        role = message["role"]
        if role == "tool":
            parts.append(f"**tool result** (`{message.get('tool_call_id')}`):\n\n```\n{message.get('content')}\n```")
            continue
        if message.get("content"):
            parts.append(f"**{role}**:\n\n{message['content']}")
        for call in message.get("tool_calls") or []:
            function = call["function"]
            parts.append(f"**tool call** `{function['name']}` (`{call['id']}`):\n\n```json\n{function['arguments']}\n```")
    return "\n\n".join(parts) + "\n"


@command("/history", "the conversation so far, one line per message")
def _history(chat: Chat, argument: str) -> None:
    for message in chat.engine.messages:
        text = message.get("content") or ""
        for call in message.get("tool_calls") or []:
            text += f" [call {call['function']['name']} {call['function']['arguments']}]"
        line = " ".join(clean(text).split())
        chat.console.print(plain(f"{message['role']:>9}: {line[:150]}"))


@command("/stats", "tokens, rounds, and time per round and per tool")
def _stats(chat: Chat, argument: str) -> None:
    stats = chat.stats
    table = Table(box=None, header_style="bold", pad_edge=False)
    for column in ("round", "prompt", "cached", "completion", "seconds"):
        table.add_column(column, justify="right")
    for number, (usage, seconds) in enumerate(stats.rounds, start=1):
        table.add_row(str(number), str(usage.prompt_tokens), str(usage.cached_tokens), str(usage.completion_tokens),
                      f"{seconds:.2f}")
    chat.console.print(plain(f"{stats.turns} turns, {len(stats.rounds)} model calls, {len(stats.tools)} tool calls"))
    if stats.rounds:
        chat.console.print(table)
    for name, status, seconds in stats.tools:
        chat.console.print(plain(f"  tool {name}: {status}, {seconds:.2f} s"))


@command("/mcp", "the MCP servers and their state; /mcp restart NAME starts one again")
def _mcp(chat: Chat, argument: str) -> None:
    from toolchat.mcp.wiring import describe, restart, source_of

    source = source_of(chat.all_tools)
    verb, _, name = argument.partition(" ")
    lines = [restart(source, name.strip())] if verb == "restart" else describe(source)
    for line in lines:
        chat.console.print(plain(line))


@command("/exit", "leave (Ctrl-D too)")
def _exit(chat: Chat, argument: str) -> str:
    return EXIT
