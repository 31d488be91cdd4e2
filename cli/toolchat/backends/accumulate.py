"""Streamed tool-call deltas -> whole calls, surviving what real servers send: missing ids
(vLLM), names repeated in every chunk or re-sent at the end, parallel calls all at index 0 told
apart by new ids (Ollama), arguments as a JSON object, fresh ids on every chunk of one call
(LM Studio). Linear in the size of the arguments: fragments are kept in a list and joined once
(megabytes of arguments arrive in tens of thousands of fragments)."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any

from toolchat.backends.base import ToolCall, new_call_id


@dataclass
class _Slot:
    index: int
    id: str | None = None
    name: str = ""
    parts: list[str] = field(default_factory=list)
    size: int = 0

    @property
    def arguments(self) -> str:
        if len(self.parts) > 1:
            self.parts = ["".join(self.parts)]
        return self.parts[0] if self.parts else ""

    def append(self, text: str) -> None:
        self.parts.append(text)
        self.size += len(text)

    def replace(self, text: str) -> None:
        self.parts, self.size = [text], len(text)

    def complete(self) -> bool:
        """The arguments so far are one whole JSON value. Joins and parses only when the last
        fragment closes an object or array, so checking every fragment stays near linear."""
        tail = next((part.rstrip() for part in reversed(self.parts) if part.strip()), "")
        if not tail.endswith(("}", "]")):
            return False
        try:
            json.loads(self.arguments)
        except ValueError:
            return False
        return True


class ToolCallAccumulator:
    def __init__(self) -> None:
        self._slots: list[_Slot] = []
        self._by_index: dict[int, _Slot] = {}

    def add(self, delta: dict[str, Any]) -> None:
        """Take one tool-call delta: {"index", "id", "type", "function": {"name", "arguments"}}."""
        function = delta.get("function") or {}
        name = function.get("name") or ""
        slot = self._slot_for(_index(delta.get("index")), delta.get("id") or None, name)
        if name and not slot.name:
            slot.name = name  # a name is never appended: servers repeat it
        self._add_arguments(slot, function.get("arguments"))

    def calls(self) -> list[ToolCall]:
        """The calls so far in index order, with ids generated where the server sent none."""
        result = []
        for slot in sorted(self._slots, key=lambda s: s.index):
            if slot.id is None:
                slot.id = new_call_id()
            result.append(ToolCall(slot.id, slot.name, slot.arguments))
        return result

    def _slot_for(self, index: int, call_id: str | None, name: str) -> _Slot:
        if call_id is not None:
            for slot in self._slots:
                if slot.id == call_id:
                    return slot
        current = self._by_index.get(index)
        if current is None or self._starts_new_call(current, call_id, name):
            return self._new_slot(index, call_id)
        if call_id is not None and current.id is None:
            current.id = call_id  # a final chunk re-sending the id the first ones lacked
        return current

    @staticmethod
    def _starts_new_call(current: _Slot, call_id: str | None, name: str) -> bool:
        if call_id is None or current.id is None or call_id == current.id:
            return False
        # A different id at a used index: Ollama's next parallel call (it arrives whole, with a
        # name, after a complete one) or LM Studio's fresh id on a fragment of the same call.
        return bool(name) and (current.complete() or (not current.size and name != current.name))

    def _new_slot(self, index: int, call_id: str | None) -> _Slot:
        slot = _Slot(index=index, id=call_id)
        self._slots.append(slot)
        self._by_index[index] = slot
        return slot

    @staticmethod
    def _add_arguments(slot: _Slot, arguments: Any) -> None:
        if arguments is None or arguments == "":
            return
        if isinstance(arguments, (dict, list)):
            slot.replace(json.dumps(arguments, ensure_ascii=False))
            return
        text = str(arguments)
        if len(text) == slot.size and text == slot.arguments and slot.complete():
            return  # the whole arguments re-sent in a final chunk
        slot.append(text)


class MalformedDelta(ValueError):
    """A tool-call delta no server could mean: the server's fault, said in one line."""


def _index(value: Any) -> int:
    """A delta's index: missing is 0 (servers that send one call leave it out); anything but a
    finite whole number (`1e400`, `1.5`, `"x"`, `true`) is malformed, never a crash in int()."""
    if value is None:
        return 0
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        return int(value)
    raise MalformedDelta(f"a tool call with the index {str(value)[:40]!r}, not a whole number")
