"""gpt-oss (harmony) read as it arrives: the analysis channel streams as reasoning and the final
channel as the answer, however the output is cut into tokens; a marker cut in two is held back
until it is decided; calls are read from `commentary to=functions.NAME` only."""

from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from toolchat.backends.parsers import make_parser
from toolchat.backends.parsers.reasoning import ThinkingParser

THOUGHT_1 = "User wants Oslo weather. Use get_weather, then <answer>."
THOUGHT_2 = "It is sunny; say so briefly."
TRANSCRIPT = (
    f"<|channel|>analysis<|message|>{THOUGHT_1}  <|end|>"
    "<|start|>assistant<|channel|>commentary to=functions.get_weather <|constrain|>json"
    '<|message|>{"city": "Oslo"}<|call|>'
    f"<|start|>assistant<|channel|>analysis<|message|>\n{THOUGHT_2}<|end|>"
    "<|start|>assistant<|channel|>final<|message|>Sunny in Oslo, 21 °C.<|return|>"
)
REASONING = f"{THOUGHT_1}\n\n{THOUGHT_2}"


def read(chunks: list[str]) -> tuple[str, str, list[tuple[str, dict]], str]:
    """(reasoning streamed, answer streamed, calls, the reply's reasoning) for these tokens."""
    parser = make_parser("harmony", {})
    reasoning, answer = [], []
    for chunk in chunks:
        answer.append(parser.feed(chunk))
        reasoning.append(parser.take_reasoning())
    rest, calls = parser.finish()
    answer.append(rest)
    reasoning.append(parser.take_reasoning())
    called = [(c.name, json.loads(c.arguments)) for c in calls]
    return "".join(reasoning), "".join(answer), called, parser.reasoning


def cut(text: str, at: list[int]) -> list[str]:
    points = sorted({0, len(text), *(min(a, len(text)) for a in at)})
    return [text[a:b] for a, b in zip(points, points[1:], strict=False)]


EXPECTED = (REASONING, "Sunny in Oslo, 21 °C.", [("get_weather", {"city": "Oslo"})], REASONING)


def test_the_same_reasoning_answer_and_call_at_every_single_cut():
    for at in range(len(TRANSCRIPT) + 1):
        assert read(cut(TRANSCRIPT, [at])) == EXPECTED, at


def test_the_same_one_character_at_a_time():
    assert read(list(TRANSCRIPT)) == EXPECTED


@settings(max_examples=300, deadline=None)
@given(at=st.lists(st.integers(0, len(TRANSCRIPT)), max_size=12))
def test_the_same_however_the_output_is_cut(at):
    assert read(cut(TRANSCRIPT, at)) == EXPECTED


def test_reasoning_streams_before_its_message_ends():
    parser = make_parser("harmony", {})
    head = TRANSCRIPT[: TRANSCRIPT.index("<|end|>")]
    streamed = []
    for ch in head[:-3]:
        assert parser.feed(ch) == ""  # reasoning is never the answer
        streamed.append(parser.take_reasoning())
    assert "".join(streamed) == THOUGHT_1[: len(head) - 3 - len("<|channel|>analysis<|message|>")]
    assert sum(1 for s in streamed if s) > 20  # token by token, not one piece at the end
    for ch in head[-3:] + "  <|e":  # trailing blanks and a half marker are held back
        parser.feed(ch)
        streamed.append(parser.take_reasoning())
    assert "".join(streamed) == THOUGHT_1


def test_the_answer_streams_before_the_message_ends_and_a_half_marker_waits():
    parser = make_parser("harmony", {})
    parser.feed("<|channel|>final<|message|>Hello th")
    assert parser.feed("ere<|ret") == "ere"
    assert parser.feed("urn|>") == ""
    assert parser.finish() == ("", [])


def test_text_in_analysis_that_looks_like_a_call_is_never_run():
    looks = (
        '<|channel|>analysis<|message|>I could write to=functions.delete_all {"path": "/"} or '
        '<tool_call>{"name": "delete_all", "arguments": {}}</tool_call><|end|>'
        "<|start|>assistant<|channel|>final<|message|>No.<|return|>"
    )
    streamed, answer, calls, reasoning = read(list(looks))
    assert calls == []
    assert answer == "No."
    assert "to=functions.delete_all" in streamed == reasoning


def test_an_output_cut_inside_analysis_is_all_reasoning():
    streamed, answer, calls, reasoning = read(list("<|channel|>analysis<|message|>Thinking about <|"))
    assert (streamed, answer, calls, reasoning) == ("Thinking about <|", "", [], "Thinking about <|")


def test_the_local_backend_wrapper_hands_reasoning_on_as_it_comes():
    """What backends/local.py reads: (reasoning, answer) per token from the format's parser."""
    thinking = ThinkingParser(make_parser("harmony", {}), thinking=False)
    events = [thinking.feed(ch) for ch in TRANSCRIPT]
    thought, rest, calls = thinking.finish()
    reasoning = "".join(t for t, _ in events) + thought
    assert reasoning == REASONING
    assert "".join(s for _, s in events) + rest == "Sunny in Oslo, 21 °C."
    first_answer = next(i for i, (_, s) in enumerate(events) if s)
    last_thought = max(i for i, (t, _) in enumerate(events) if t)
    assert last_thought < first_answer  # the reasoning was all shown before the answer began
    assert [c.name for c in calls] == ["get_weather"]
