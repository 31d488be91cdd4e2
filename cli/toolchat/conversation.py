"""The messages of one conversation and every change to them. Each change is an operation that is
written to the session log as it happens (before anything acts on it), so replaying the log gives
exactly this list. Faces and the engine change the conversation only through these methods."""

from __future__ import annotations

from typing import Any

from toolchat.sessions import SessionLog, repair


class Conversation:
    def __init__(self, system: str | None = None, log: SessionLog | None = None) -> None:
        self._messages: list[dict[str, Any]] = []
        self._renamed: dict[str, list[str]] = {}  # call ids of the last round made unique
        self.log = log
        if system:
            self.set_system(system)

    @classmethod
    def of(cls, messages: list[dict[str, Any]]) -> Conversation:
        """A conversation that starts as `messages` and is kept nowhere (`toolchat serve`)."""
        conversation = cls()
        conversation._messages = list(messages)
        return conversation

    @property
    def messages(self) -> list[dict[str, Any]]:
        """The list as the model sees it. Read it; change it only through the methods below."""
        return self._messages

    def __len__(self) -> int:
        return len(self._messages)

    @property
    def system(self) -> str | None:
        first = self._messages[0] if self._messages else None
        return first["content"] if first is not None and first.get("role") == "system" else None

    def append(self, message: dict[str, Any]) -> None:
        message = self._unique_ids(message)
        self._messages.append(message)
        if self.log is not None:
            self.log.append(message)

    def _unique_ids(self, message: dict[str, Any]) -> dict[str, Any]:
        """A call id used before in this conversation (a server that names every call `call_0`) is
        recorded as a fresh one, and its answers that follow with it, so each answer names one call."""
        if message.get("role") == "tool" and self._renamed.get(message.get("tool_call_id")):  # type: ignore[arg-type]
            return {**message, "tool_call_id": self._renamed[message["tool_call_id"]].pop(0)}
        if message.get("role") != "assistant" or not message.get("tool_calls"):
            return message
        used = {call.get("id") for m in self._messages for call in m.get("tool_calls") or []}
        self._renamed, calls = {}, []
        for call in message["tool_calls"]:
            old = call.get("id")
            if old in used:
                new = f"{old}-{len(self._messages)}-{len(calls)}"
                self._renamed.setdefault(old, []).append(new)
                call = {**call, "id": new}
            used.add(call.get("id"))
            calls.append(call)
        return {**message, "tool_calls": calls} if self._renamed else message

    def truncate(self, length: int) -> None:
        if length >= len(self._messages):
            return
        del self._messages[length:]
        if self.log is not None:
            self.log.truncate(length)

    def replace(self, index: int, message: dict[str, Any]) -> None:
        self._messages[index] = message
        if self.log is not None:
            self.log.replace(index, message)

    def splice(self, start: int, end: int, message: dict[str, Any]) -> None:
        """Messages [start, end) become the one `message` (compaction's summary)."""
        self._messages[start:end] = [message]
        if self.log is not None:
            self.log.splice(start, end, message)

    def set_system(self, text: str | None) -> None:
        """The system prompt becomes `text`; None removes it."""
        if self.system == text:
            return
        if text is None:
            del self._messages[0]
        elif self.system is not None:
            self._messages[0] = {"role": "system", "content": text}
        else:
            self._messages.insert(0, {"role": "system", "content": text})
        if self.log is not None:
            self.log.set_system(text)

    def last_user_index(self) -> int | None:
        return next((i for i in range(len(self._messages) - 1, -1, -1) if self._messages[i]["role"] == "user"), None)

    def restore(self, messages: list[dict[str, Any]], log: SessionLog) -> None:
        """Continue a session: `messages` replayed from `log`; calls a kill left unanswered are
        answered "not run", and that answer is written too."""
        self._messages, self.log = list(messages), log
        repaired = repair(messages)
        if len(repaired) == len(messages):
            return
        first = next((i for i in range(len(messages)) if repaired[i] is not messages[i]), len(messages))
        self.truncate(first)
        for message in repaired[first:]:
            self.append(message)

    def start_log(self, log: SessionLog | None) -> None:
        """Write this conversation (its system prompt) into a fresh log from now on."""
        self.log = log
        if log is not None and self.system is not None:
            log.set_system(self.system)
        for message in self._messages[1 if self.system is not None else 0 :]:
            if log is not None:
                log.append(message)
