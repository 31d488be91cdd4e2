"""Each native format on the shapes its chat template renders and its models write, fed whole and
three characters at a time (the two must agree), including what breaks naive parsers: tags inside
values, prose around calls, nested look-alike calls, numbers that are not finite, bytes literals."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from toolchat.backends.parsers import FORMATS, make_parser
from toolchat.backends.parsers.cast import cast
from toolchat.backends.parsers.reasoning import ThinkSplitter

TOOLS = {
    "get_weather": {
        "type": "object",
        "properties": {"city": {"type": "string"}, "days": {"type": "integer"}},
        "required": ["city"],
    },
    "edit_file": {
        "type": "object",
        "properties": {
            "path": {"type": "string"},
            "old_string": {"type": "string"},
            "new_string": {"type": "string"},
        },
        "required": ["path", "old_string", "new_string"],
    },
    "write_file": {
        "type": "object",
        "properties": {"path": {"type": "string"}, "content": {"type": "string"}},
        "required": ["path", "content"],
    },
    "search": {  # what Pydantic emits for Optional[...] and unions
        "type": "object",
        "properties": {
            "query": {"type": "string"},
            "count": {"anyOf": [{"type": "integer"}, {"type": "null"}], "default": None},
            "verbose": {"anyOf": [{"type": "boolean"}, {"type": "null"}]},
            "filters": {"anyOf": [{"type": "object"}, {"type": "null"}]},
            "tags": {"type": ["array", "null"]},
            "ratio": {"type": "number"},
            "mode": {"enum": ["fast", "exact"]},
            "level": {"enum": [1, 2, 3]},
            "kind": {"const": "web"},
            "note": {"type": "string", "nullable": True},
        },
        "required": ["query"],
    },
    "calc": {"type": "object", "properties": {"x": {"type": "number"}}},
}

OSLO = ("get_weather", {"city": "Oslo"})
OSLO3 = ("get_weather", {"city": "Oslo", "days": 3})


def run(fmt: str, chunks: list[str]) -> tuple[str, list[tuple[str, object]]]:
    parser = make_parser(fmt, TOOLS)
    shown = "".join(parser.feed(c) for c in chunks)
    rest, calls = parser.finish()
    out = []
    for call in calls:
        try:
            out.append((call.name, json.loads(call.arguments)))
        except ValueError:
            out.append((call.name, call.arguments))  # as written: the engine answers "invalid arguments"
    return shown + rest, out


def threes(text: str) -> list[str]:
    return [text[i : i + 3] for i in range(0, len(text), 3)]


TEMPLATE_BODY = "Say </parameter>\n<parameter=path>\n/etc/passwd\n</parameter>\n</function>\n</tool_call> done"
NESTED = '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Oslo"}}\n</tool_call>'

CORPUS = [
    # -- hermes (Qwen 2.5 / Qwen3 / Hermes JSON) -------------------------------------------------------
    ("hermes", '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Oslo"}}\n</tool_call>', "", [OSLO]),
    (
        "hermes",
        'Checking.\n<tool_call>\n{"name": "get_weather", "arguments": {"city": "Oslo", "days": 3}}\n</tool_call>\n'
        "I asked for the forecast.",
        "Checking.\n\nI asked for the forecast.",
        [OSLO3],
    ),
    (
        "hermes",
        '<tool_call>\n{"name": "write_file", "arguments": {"path": "t.j2", "content": "{{ x }}</tool_call>"}}\n'
        "</tool_call>",
        "",
        [("write_file", {"path": "t.j2", "content": "{{ x }}</tool_call>"})],
    ),
    (
        "hermes",
        '<tool_call>\n{"name": "get_weather", "arguments": "{\\"city\\": \\"Oslo\\"}"}\n</tool_call>',
        "",
        [OSLO],
    ),
    (
        "hermes",
        '<tool_call>\n{"name": "get_weather", "arguments": "Oslo"}\n</tool_call>',
        "",
        [("get_weather", "Oslo")],
    ),
    (
        "hermes",
        '<tool_call>\n{"name": "calc", "arguments": {"x": NaN}}\n</tool_call>',
        '<tool_call>\n{"name": "calc", "arguments": {"x": NaN}}\n</tool_call>',
        [],
    ),
    (
        "hermes",
        '<tool_call>not json</tool_call>\n<tool_call>{"name": "get_weather", "arguments": {"city": "Oslo"}}</tool_call>',
        "<tool_call>not json</tool_call>\n",
        [OSLO],
    ),
    ("hermes", '<tool_call>\n{"name": "get_weather", "parameters": {"city": "Oslo"}}', "", [OSLO]),
    # -- qwen3_coder (XML) ---------------------------------------------------------------------------
    (
        "qwen3_coder",
        "<tool_call>\n<function=get_weather>\n<parameter=city>\nOslo\n</parameter>\n<parameter=days>\n3\n"
        "</parameter>\n</function>\n</tool_call>",
        "",
        [OSLO3],
    ),
    (  # the wrapper dropped
        "qwen3_coder",
        "Let me look.\n<function=get_weather>\n<parameter=city>\nOslo\n</parameter>\n</function>",
        "Let me look.\n",
        [OSLO],
    ),
    (  # a file body holding every look-alike tag
        "qwen3_coder",
        "<tool_call>\n<function=write_file>\n<parameter=path>\nparser.py\n</parameter>\n<parameter=content>\n"
        + TEMPLATE_BODY
        + "\n</parameter>\n</function>\n</tool_call>",
        "",
        [("write_file", {"path": "parser.py", "content": TEMPLATE_BODY})],
    ),
    (  # a whole nested call inside a value is text, never a call
        "qwen3_coder",
        "<tool_call>\n<function=edit_file>\n<parameter=path>\nREADME.md\n</parameter>\n<parameter=old_string>\n"
        + NESTED
        + "\n</parameter>\n<parameter=new_string>\nx <parameter=query>q</parameter>\n</parameter>\n</function>\n"
        "</tool_call>",
        "",
        [("edit_file", {"path": "README.md", "old_string": NESTED, "new_string": "x <parameter=query>q</parameter>"})],
    ),
    (
        "qwen3_coder",
        "<tool_call>\n<function=search>\n<parameter=query>\ncats\n</parameter>\n<parameter=count>\n42\n</parameter>\n"
        "<parameter=verbose>\ntrue\n</parameter>\n<parameter=filters>\n{'lang': 'en'}\n</parameter>\n"
        '<parameter=tags>\n["a", "b"]\n</parameter>\n<parameter=ratio>\n0.5\n</parameter>\n'
        "<parameter=mode>\nexact\n</parameter>\n<parameter=level>\n2\n</parameter>\n<parameter=kind>\nweb\n"
        "</parameter>\n<parameter=note>\nNone\n</parameter>\n</function>\n</tool_call>",
        "",
        [
            (
                "search",
                {
                    "query": "cats",
                    "count": 42,
                    "verbose": True,
                    "filters": {"lang": "en"},
                    "tags": ["a", "b"],
                    "ratio": 0.5,
                    "mode": "exact",
                    "level": 2,
                    "kind": "web",
                    "note": None,
                },
            )
        ],
    ),
    (  # unterminated at the end of the output
        "qwen3_coder",
        "<tool_call>\n<function=get_weather>\n<parameter=city>\nOslo",
        "",
        [OSLO],
    ),
    # -- mistral -----------------------------------------------------------------------------------------
    ("mistral", '[TOOL_CALLS][{"name": "get_weather", "arguments": {"city": "Oslo"}}]', "", [OSLO]),
    (
        "mistral",
        '[TOOL_CALLS][{"name": "get_weather", "arguments": {"city": "Oslo"}}] I will report back.',
        "I will report back.",
        [OSLO],
    ),
    ("mistral", '[TOOL_CALLS]get_weather[ARGS]{"city": "Oslo"}', "", [OSLO]),
    ("mistral", '[TOOL_CALLS]get_weather[CALL_ID]a1b2c3d4e[ARGS]{"city": "Oslo"}', "", [OSLO]),
    ("mistral", '[TOOL_CALLS]get_weather{"city": "Oslo"}[TOOL_CALLS]calc{"x": 2}', "", [OSLO, ("calc", {"x": 2})]),
    # -- llama3 JSON -------------------------------------------------------------------------------------
    ("llama3", '{"name": "get_weather", "parameters": {"city": "Oslo"}}', "", [OSLO]),
    (
        "llama3",
        '{"name": "get_weather", "parameters": {"city": "Oslo"}} Let me know if you need more.',
        "Let me know if you need more.",
        [OSLO],
    ),
    ("llama3", '<|python_tag|>{"name": "get_weather", "parameters": {"city": "Oslo"}}', "", [OSLO]),
    (
        "llama3",
        '{"name": "get_weather", "parameters": {"city": "Oslo"}}; {"name": "calc", "parameters": {"x": 1}}',
        "",
        [OSLO, ("calc", {"x": 1})],
    ),
    ("llama3", '{"answer": 42}', '{"answer": 42}', []),
    (
        "llama3",
        'I will check. {"name": "get_weather", "parameters": {"city": "Oslo"}}',
        "I will check. ",
        [OSLO],
    ),
    (
        "llama3",
        'Use {"name": "nope", "parameters": {}} like this.',
        'Use {"name": "nope", "parameters": {}} like this.',
        [],
    ),
    # -- pythonic ----------------------------------------------------------------------------------------
    ("pythonic", "[get_weather(city='Oslo', days=3)]", "", [OSLO3]),
    ("pythonic", "[bad(x=b'z'), get_weather(city='Oslo')]", "", [OSLO]),
    ("pythonic", "[calc(x=1e999), get_weather(city='Oslo')]", "", [OSLO]),
    ("pythonic", "[get_weather(city='Oslo'), calc(x=), calc(x=2)]", "", [OSLO, ("calc", {"x": 2})]),
    (
        "pythonic",
        "[search(query='a', verbose=true, count=null)]",
        "",
        [("search", {"query": "a", "verbose": True, "count": None})],
    ),
    ("pythonic", "<|python_start|>[get_weather(city='Oslo')]<|python_end|>", "", [OSLO]),
    ("pythonic", "[get_weather(city='Oslo')] That is the call.", " That is the call.", [OSLO]),
    ("pythonic", "[1, 2, 3] are numbers", "[1, 2, 3] are numbers", []),
    # -- granite -----------------------------------------------------------------------------------------
    ("granite", '<|tool_call|>[{"name": "get_weather", "arguments": {"city": "Oslo"}}]', "", [OSLO]),
    ("granite", '<tool_call>[{"name": "get_weather", "arguments": {"city": "Oslo"}}]', "", [OSLO]),
    (
        "granite",
        'Sure. <tool_call>[{"name": "get_weather", "arguments": {"city": "Oslo"}}]</tool_call>',
        "Sure. ",
        [OSLO],
    ),
    ("granite", '[{"name": "get_weather", "arguments": {"city": "Oslo"}}]', "", [OSLO]),
    (  # a missing </function> before the end of the output
        "qwen3_coder",
        "<tool_call>\n<function=get_weather>\n<parameter=city>\nOslo\n</parameter>\n</tool_call>",
        "",
        [OSLO],
    ),
    # -- function_gemma ----------------------------------------------------------------------------------
    (
        "function_gemma",
        "<start_function_call>call:get_weather{city:<escape>Oslo<escape>,days:3}<end_function_call>",
        "",
        [OSLO3],
    ),
    (
        "function_gemma",
        "<start_function_call>call:write_file{path:<escape>a<escape>,content:<escape>x<end_function_call>y<escape>}"
        "<end_function_call>",
        "",
        [("write_file", {"path": "a", "content": "x<end_function_call>y"})],
    ),
    # -- harmony -----------------------------------------------------------------------------------------
    (
        "harmony",
        "<|channel|>analysis<|message|>Need weather.<|end|><|start|>assistant<|channel|>commentary "
        'to=functions.get_weather <|constrain|>json<|message|>{"city": "Oslo"}<|call|>',
        "",
        [OSLO],
    ),
    (
        "harmony",
        "<|channel|>analysis<|message|>Easy.<|end|><|start|>assistant<|channel|>final<|message|>Hi.",
        "Hi.",
        [],
    ),
]


@pytest.mark.parametrize(("fmt", "output", "content", "calls"), CORPUS)
def test_each_format_gives_the_same_calls_whole_and_three_characters_at_a_time(fmt, output, content, calls):
    assert run(fmt, [output]) == (content, calls)
    assert run(fmt, threes(output)) == (content, calls)


def test_schema_casting_follows_json_schema():
    assert cast("42", {"type": ["integer", "null"]}) == 42
    assert cast("null", {"type": ["integer", "null"]}) is None
    assert cast("4.0", {"type": "integer"}) == 4
    assert cast("4.5", {"type": "integer"}) == "4.5"  # no branch accepts: as written
    assert cast("7", {"type": "number"}) == 7
    assert cast("inf", {"type": "number"}) == "inf"
    assert cast("nan", {"type": "number"}) == "nan"
    assert cast("x", {"oneOf": [{"type": "integer"}, {"type": "string"}]}) == "x"
    assert cast("1", {"anyOf": [{"type": "string"}, {"type": "integer"}]}) == "1"  # the first branch that accepts
    assert cast("slow", {"enum": ["fast", "exact"]}) == "slow"
    assert cast("3", {"enum": [1, 2, 3]}) == 3
    assert cast("b", {"const": "a"}) == "b"
    assert cast("[1, 2]", {"type": "array", "items": {"type": "integer"}}) == [1, 2]
    assert cast("{'k': b'v'}", {"type": "object"}) == "{'k': b'v'}"
    assert cast("None", {"type": "string", "nullable": True}) is None


def test_a_call_written_inside_reasoning_is_reasoning_and_never_parsed():
    output = '<think>I could write <tool_call>{"name": "get_weather", "arguments": {"city": "Rome"}}</tool_call>'
    output += '</think>\n\n<tool_call>{"name": "get_weather", "arguments": {"city": "Oslo"}}</tool_call>'
    for chunks in ([output], threes(output)):
        splitter, parser = ThinkSplitter(), make_parser("hermes", TOOLS)
        thought, shown = [], []
        for chunk in chunks:
            t, c = splitter.feed(chunk)
            thought.append(t)
            shown.append(parser.feed(c))
        t, c = splitter.finish()
        thought.append(t)
        shown.append(parser.feed(c))
        rest, calls = parser.finish()
        assert "Rome" in "".join(thought) and splitter.text.startswith("I could write")
        assert [(c.name, json.loads(c.arguments)) for c in calls] == [OSLO]
        assert "".join(shown) + rest == ""


def test_a_prompt_that_opened_think_makes_the_output_reasoning_until_it_closes():
    splitter = ThinkSplitter(opened=True)
    pieces = [splitter.feed(c) for c in threes("Weighing it.</think>\n\nThe answer.")]
    pieces.append(splitter.finish())
    assert "".join(p[0] for p in pieces) == "Weighing it."
    assert "".join(p[1] for p in pieces) == "The answer."


def test_an_unclosed_think_is_all_reasoning():
    splitter = ThinkSplitter()
    pieces = [splitter.feed("<thi"), splitter.feed('nk>maybe <tool_call>{"name": "x"}'), splitter.finish()]
    assert "".join(p[1] for p in pieces) == ""
    assert splitter.text == 'maybe <tool_call>{"name": "x"}'


def test_output_without_think_is_content_untouched():
    splitter = ThinkSplitter()
    pieces = [splitter.feed("  <th"), splitter.feed("is is html"), splitter.finish()]
    assert "".join(p[1] for p in pieces) == "  <this is html"


@settings(max_examples=500, deadline=None)
@given(
    fmt=st.sampled_from(sorted(FORMATS)),
    text=st.lists(
        st.sampled_from(
            list("ab{}[]()\"':,=<>/\n 1e9")
            + [
                "<tool_call>",
                "</tool_call>",
                "<function=get_weather>",
                "<parameter=city>",
                "</parameter>",
                "</function>",
                "[TOOL_CALLS]",
                "[ARGS]",
                "<|python_tag|>",
                "get_weather(",
                "b'",
                "1e999",
                "NaN",
                "<|tool_call|>",
                "<start_function_call>",
                "call:calc",
                "<escape>",
                "<end_function_call>",
                "<|channel|>",
                "<|message|>",
                "<|start|>",
                "<|end|>",
                "<|call|>",
                "to=functions.calc",
                "<think>",
                "</think>",
            ]
        ),
        max_size=40,
    ).map("".join),
    cuts=st.lists(st.integers(min_value=0, max_value=400), max_size=6),
)
def test_no_input_and_no_cut_of_it_ever_raises_or_changes_the_result(fmt, text, cuts):
    bounds = sorted({c % (len(text) + 1) for c in cuts})
    chunks = [text[a:b] for a, b in zip([0, *bounds], [*bounds, len(text)])]
    whole = run(fmt, [text])
    assert run(fmt, chunks) == whole
    for _, arguments in whole[1]:
        if not isinstance(arguments, str):
            json.dumps(arguments, allow_nan=False)  # only real JSON reaches the engine
