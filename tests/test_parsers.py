"""Native tool-call parsers on real-looking outputs, under every split into chunks, and fuzzed."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from toolchat.backends.parsers import detect_format, make_parser

TOOLS = {
    "get_weather": {"type": "object", "properties": {"city": {"type": "string"}, "days": {"type": "integer"}}},
    "set_alarm": {
        "type": "object",
        "properties": {"hour": {"type": "integer"}, "loud": {"type": "boolean"}, "tags": {"type": "array"}},
    },
}


def parse(fmt: str, chunks: list[str]) -> tuple[str, list[tuple[str, dict]]]:
    parser = make_parser(fmt, TOOLS)
    shown = "".join(parser.feed(c) for c in chunks)
    rest, calls = parser.finish()
    return shown + rest, [(c.name, json.loads(c.arguments)) for c in calls]


OSLO = ("get_weather", {"city": "Oslo"})
ALARM = ("set_alarm", {"hour": 7, "loud": True})

CASES = [
    # (format, model output, content, calls)
    (
        "hermes",
        'Let me check.<tool_call>\n{"name": "get_weather", "arguments": {"city": "Oslo"}}\n</tool_call>',
        "Let me check.",
        [OSLO],
    ),
    (
        "hermes",
        '<tool_call>{"name": "get_weather", "arguments": {"city": "Oslo"}}</tool_call>\n<tool_call>'
        '{"name": "set_alarm", "arguments": {"hour": 7, "loud": true}}</tool_call>',
        "\n",
        [OSLO, ALARM],
    ),
    ("hermes", '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Oslo"}}', "", [OSLO]),  # unterminated
    (
        "hermes",
        'Plain answer with {"name": "get_weather"} JSON outside markers.',
        'Plain answer with {"name": "get_weather"} JSON outside markers.',
        [],
    ),
    (
        "qwen3_coder",
        "Sure.\n<tool_call>\n<function=set_alarm>\n<parameter=hour>\n7\n</parameter>\n<parameter=loud>\n"
        "true\n</parameter>\n</function>\n</tool_call>",
        "Sure.\n",
        [ALARM],
    ),
    (
        "qwen3_coder",
        "<tool_call>\n<function=get_weather>\n<parameter=city>\nOslo\n</parameter>\n</function>\n</tool_call>",
        "",
        [OSLO],
    ),
    (
        "mistral",
        '[TOOL_CALLS][{"name": "get_weather", "arguments": {"city": "Oslo"}}, '
        '{"name": "set_alarm", "arguments": {"hour": 7, "loud": true}, "id": "a1b2c3d4e"}]',
        "",
        [OSLO, ALARM],
    ),
    (
        "mistral",
        '[TOOL_CALLS]get_weather{"city": "Oslo"}[TOOL_CALLS]set_alarm{"hour": 7, "loud": true}',
        "",
        [OSLO, ALARM],
    ),
    ("mistral", '[TOOL_CALLS]get_weather[ARGS]{"city": "Oslo"}', "", [OSLO]),
    ("mistral", "No tools needed: 2 + 2 = 4.", "No tools needed: 2 + 2 = 4.", []),
    ("llama3", '<|python_tag|>{"name": "get_weather", "parameters": {"city": "Oslo"}}', "", [OSLO]),
    (
        "llama3",
        '{"name": "get_weather", "parameters": {"city": "Oslo"}}; {"name": "set_alarm", "parameters": '
        '{"hour": 7, "loud": true}}',
        "",
        [OSLO, ALARM],
    ),
    ("llama3", '{"name": "unknown_tool", "parameters": {}}', '{"name": "unknown_tool", "parameters": {}}', []),
    ("llama3", "The weather is fine.", "The weather is fine.", []),
    ("pythonic", '[get_weather(city="Oslo"), set_alarm(hour=7, loud=True)]', "", [OSLO, ALARM]),
    ("pythonic", "<|python_start|>[get_weather(city='Oslo')]<|python_end|>", "", [OSLO]),
    ("pythonic", "[1, 2, 3] are numbers", "[1, 2, 3] are numbers", []),
    (
        "function_gemma",
        "<start_function_call>call:get_weather{city:<escape>Oslo<escape>}<end_function_call>",
        "",
        [OSLO],
    ),
    ("function_gemma", "<start_function_call>call:set_alarm{hour:7,loud:true}<end_function_call>", "", [ALARM]),
    ("granite", '<|tool_call|>[{"name": "get_weather", "arguments": {"city": "Oslo"}}]', "", [OSLO]),
    (
        "harmony",
        "<|channel|>analysis<|message|>User wants weather.<|end|><|start|>assistant<|channel|>commentary "
        'to=functions.get_weather <|constrain|>json<|message|>{"city": "Oslo"}<|call|>',
        "",
        [OSLO],
    ),
    (
        "harmony",
        "<|channel|>analysis<|message|>Easy.<|end|><|start|>assistant<|channel|>final<|message|>It is 4.<|return|>",
        "It is 4.",
        [],
    ),
]


@pytest.mark.parametrize("fmt, output, content, calls", CASES)
def test_whole_output(fmt, output, content, calls):
    assert parse(fmt, [output]) == (content, calls)


@pytest.mark.parametrize("fmt, output, content, calls", CASES)
def test_every_split_into_two_and_token_sized_chunks(fmt, output, content, calls):
    for at in range(len(output) + 1):
        assert parse(fmt, [output[:at], output[at:]]) == (content, calls), at
    assert parse(fmt, list(output)) == (content, calls)


def test_text_before_a_call_streams_before_the_call_closes():
    parser = make_parser("hermes", TOOLS)
    assert parser.feed("Checking the weather") == "Checking the weather"
    assert parser.feed(" now <tool") == " now "  # a possible marker is held back
    assert parser.feed('_call>{"name": ') == ""
    assert parser.feed('"get_weather", "arguments": {}}</tool_call>') == ""
    assert parser.finish()[1][0].name == "get_weather"


def test_a_broken_call_is_kept_as_content_not_lost():
    content, calls = parse("hermes", ["<tool_call>{not json</tool_call> after"])
    assert calls == [] and content == "<tool_call>{not json</tool_call> after"


@pytest.mark.parametrize("fmt", ["hermes", "mistral", "function_gemma", "granite", "qwen3_coder"])
@settings(max_examples=150, deadline=None)
@given(text=st.text(alphabet=st.characters(blacklist_categories=["Cs"]), max_size=60))
def test_random_text_never_raises_and_is_never_lost(fmt, text):
    content, calls = parse(fmt, [text])
    if not calls:
        assert content == text


def chunked(text: str, cuts: list[int]) -> list[str]:
    points = sorted({min(c, len(text)) for c in cuts})
    return [text[a:b] for a, b in zip([0, *points], [*points, len(text)])]


# Random text, and text made of the pieces these formats are built from (so it often starts
# like a call and holds partial markers), under random chunking.
PIECES = st.sampled_from(
    [
        "{",
        "[",
        "}",
        "]",
        " ",
        '"name": ',
        '"get_weather"',
        "<",
        "<|python_tag|>",
        "<|python",
        "<|python_start|>",
        "<|python_end|>",
        'get_weather(city="Oslo")',
        "1, 2",
        " then ",
    ]
)
TEXTS = st.one_of(
    st.text(alphabet=st.characters(blacklist_categories=["Cs"]), max_size=60), st.lists(PIECES, max_size=8).map("".join)
)


@pytest.mark.parametrize("fmt", ["llama3", "pythonic"])
@settings(max_examples=300, deadline=None)
@given(text=TEXTS, cuts=st.lists(st.integers(0, 60), max_size=4))
def test_leading_formats_never_lose_text_under_any_chunking(fmt, text, cuts):
    content, calls = parse(fmt, chunked(text, cuts))
    if not calls:
        assert content == text


@pytest.mark.parametrize(
    "fmt, text",
    [
        ("llama3", '{"a": 1} then <'),  # a JSON object that is not a call, then a possible marker start
        ("llama3", '{"name": "nope"} <|python'),
        ("pythonic", "[1, 2] and <|python_st"),
    ],
)
def test_text_that_starts_like_a_call_but_is_not_one_is_kept_whole(fmt, text):
    assert parse(fmt, [text]) == (text, [])


@settings(max_examples=150, deadline=None)
@given(text=st.text(max_size=60), cuts=st.lists(st.integers(0, 60), max_size=4))
def test_harmony_random_chunking_never_raises(text, cuts):
    parse("harmony", chunked(text, cuts))


@pytest.mark.parametrize(
    "template, fmt",
    [
        ("{% for tool in tools %}...{% endfor %}<tool_call>\n{{ tool_call | tojson }}\n</tool_call>", "hermes"),
        ("<tool_call>\n<function={{ name }}>\n<parameter=", "qwen3_coder"),
        ("[AVAILABLE_TOOLS]{{ tools }}[/AVAILABLE_TOOLS][TOOL_CALLS]", "mistral"),
        ("<|start_header_id|>ipython<|end_header_id|>", "llama3"),
        ("<start_function_call>call:", "function_gemma"),
        ("<|start|>assistant<|channel|>commentary to=functions.", "harmony"),
        ("<start_of_turn>user\n{{ message.content }}<end_of_turn>", "generic"),
        (None, "generic"),
    ],
)
def test_format_detection_from_the_template(template, fmt):
    assert detect_format(template) == fmt
