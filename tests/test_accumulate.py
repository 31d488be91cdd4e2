"""The streamed tool-call accumulator: every server quirk, any chunking, random deltas."""

from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from toolchat.backends.accumulate import MalformedDelta, ToolCallAccumulator


def accumulate(deltas) -> list[tuple[str, str, str]]:
    acc = ToolCallAccumulator()
    for delta in deltas:
        acc.add(delta)
    return [(c.id, c.name, c.arguments) for c in acc.calls()]


def test_standard_interleaved_calls():
    deltas = [
        {"index": 0, "id": "a", "function": {"name": "f", "arguments": ""}},
        {"index": 1, "id": "b", "function": {"name": "g", "arguments": ""}},
        {"index": 0, "function": {"arguments": '{"x": '}},
        {"index": 1, "function": {"arguments": '{"y": 2}'}},
        {"index": 0, "function": {"arguments": "1}"}},
    ]
    assert accumulate(deltas) == [("a", "f", '{"x": 1}'), ("b", "g", '{"y": 2}')]


def test_names_are_never_appended_and_a_final_resend_changes_nothing():
    deltas = [
        {"index": 0, "function": {"name": "f", "arguments": '{"x"'}},
        {"index": 0, "function": {"name": "f", "arguments": ": 1}"}},
        {"index": 0, "id": "late", "type": "function", "function": {"name": "f"}},
        {"index": 0, "id": "late", "function": {"name": "f", "arguments": '{"x": 1}'}},
    ]
    assert accumulate(deltas) == [("late", "f", '{"x": 1}')]


def test_missing_ids_are_generated_once_and_stay():
    acc = ToolCallAccumulator()
    acc.add({"index": 0, "function": {"name": "f", "arguments": "{}"}})
    first = acc.calls()[0].id
    assert first.startswith("call_") and acc.calls()[0].id == first


def test_ollama_parallel_calls_at_index_zero():
    deltas = [
        {"index": 0, "id": "c1", "function": {"name": "f", "arguments": '{"a": 1}'}},
        {"index": 0, "id": "c2", "function": {"name": "f", "arguments": '{"a": 2}'}},
        {"index": 0, "id": "c3", "function": {"name": "g", "arguments": {"b": True}}},
    ]
    assert accumulate(deltas) == [("c1", "f", '{"a": 1}'), ("c2", "f", '{"a": 2}'), ("c3", "g", '{"b": true}')]


def test_lm_studio_fresh_id_on_every_fragment_of_one_call():
    deltas = [
        {"index": 0, "id": "x1", "function": {"name": "f", "arguments": ""}},
        {"index": 0, "id": "x2", "function": {"name": "f", "arguments": '{"a"'}},
        {"index": 0, "id": "x3", "function": {"arguments": ": 1}"}},
    ]
    assert accumulate(deltas) == [("x1", "f", '{"a": 1}')]


def test_odd_indexes_do_not_raise():
    assert accumulate([{"index": None, "function": {"name": "f", "arguments": "{}"}}])[0][1:] == ("f", "{}")
    assert accumulate([{"function": None}])[0][1:] == ("", "")


CALLS = [("get_weather", {"city": "Oslo"}), ("calculate", {"expression": "1 + 2"}), ("noop", {})]


@settings(max_examples=200, deadline=None)
@given(st.data())
def test_any_chunking_of_a_standard_stream_yields_the_same_calls(data):
    deltas = []
    for index, (name, args) in enumerate(CALLS):
        text = json.dumps(args)
        cuts = sorted(data.draw(st.sets(st.integers(1, max(1, len(text) - 1)), max_size=6)))
        pieces = [text[a:b] for a, b in zip([0, *cuts], [*cuts, len(text)])]
        deltas.append(
            [{"index": index, "id": f"id{index}", "function": {"name": name, "arguments": ""}}]
            + [{"index": index, "function": {"arguments": p}} for p in pieces]
        )
    # interleave the calls' deltas in a random order that keeps each call's own order
    merged = []
    queues = [list(d) for d in deltas]
    while any(queues):
        choice = data.draw(st.sampled_from([i for i, q in enumerate(queues) if q]))
        merged.append(queues[choice].pop(0))
    result = accumulate(merged)
    assert [(n, json.loads(a)) for _, n, a in result] == CALLS
    assert [i for i, _, _ in result] == ["id0", "id1", "id2"]


JSONISH = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner, max_size=3),
    max_leaves=6,
)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.dictionaries(st.sampled_from(["index", "id", "type", "function"]), JSONISH, max_size=4), max_size=8))
def test_random_deltas_never_raise_but_the_one_malformed_error(deltas):
    acc = ToolCallAccumulator()
    for delta in deltas:
        if isinstance(delta.get("function"), dict) or "function" not in delta:
            try:
                acc.add(delta)
            except MalformedDelta as exc:  # an index that is not a whole number: one line
                assert "not a whole number" in str(exc)
    for call in acc.calls():
        assert isinstance(call.name, str) and isinstance(call.arguments, str) and call.id


def test_megabytes_in_tens_of_thousands_of_fragments_assemble_exactly():
    text = json.dumps({"content": "x" * 400_000, "nested": {"a": [1, 2, {"b": "}"}]}})
    pieces = [text[i : i + 10] for i in range(0, len(text), 10)]
    standard = [{"index": 0, "id": "a", "function": {"name": "f", "arguments": ""}}]
    standard += [{"index": 0, "function": {"arguments": piece}} for piece in pieces]
    assert accumulate(standard) == [("a", "f", text)]
    fresh_ids = [
        {"index": 0, "id": f"id{n}", "function": {"name": "f", "arguments": piece}}  # LM Studio
        for n, piece in enumerate(pieces[:2000])
    ]
    assert accumulate(fresh_ids)[0][1:] == ("f", "".join(pieces[:2000]))
