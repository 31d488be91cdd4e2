"""gpt-oss (harmony) end to end on llama.cpp: the bundled weights copied into a GGUF whose metadata
holds a harmony-style template (tests/templates/harmony.jinja). The base model does not write
harmony of itself, so its first reply is shaped by a grammar (in the place of the native forced
call): an analysis, then a call in `commentary to=functions.get_weather`. What it writes inside
that shape is its own; the analysis streams as reasoning, the call is read by the harmony parser,
and the analysis is rendered back in the tool chain, the cache reused."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytest.importorskip("llama_cpp")

from tests.support.backends import TOOLS as BUNDLED
from tests.support.bundled import with_chat_template
from toolchat.backends import forced
from toolchat.backends.base import ReasoningDelta, Request, TextDelta
from toolchat.backends.local import LocalBackend
from toolchat.config.settings import Settings

TEMPLATE = Path(__file__).parent / "templates" / "harmony.jinja"
TOOLS = [t for t in BUNDLED if t["function"]["name"] == "get_weather"]  # the bundled demo tool
SHAPE = (
    'root ::= "<|channel|>analysis<|message|>" thought "<|end|><|start|>assistant<|channel|>commentary'
    ' to=functions.get_weather <|constrain|>json<|message|>{\\"city\\": \\"" [A-Z] [a-z]{1,12} "\\"}<|call|>"\n'
    "thought ::= [a-zA-Z ,.]{12,40}\n"
)


@pytest.fixture
def harmony(bundled_gguf, tmp_path, monkeypatch):
    path = with_chat_template(bundled_gguf, tmp_path / "gemma-as-gpt-oss.gguf", TEMPLATE.read_text())
    monkeypatch.setattr(forced, "supports", lambda fmt: fmt == "harmony")
    monkeypatch.setattr(forced, "call_gbnf", lambda fmt, tools, choice: SHAPE)
    backend = LocalBackend(Settings(backend="local", model=str(path), n_ctx=2048, seed=7, temperature=0), tmp_path)
    yield backend
    backend.close()


def events(backend: LocalBackend, messages: list, **kwargs) -> list:
    return list(backend.complete(Request(messages, TOOLS, **kwargs)))


def test_the_analysis_streams_as_reasoning_the_call_runs_and_the_analysis_goes_back(harmony):
    assert harmony.format == "harmony"
    messages = [{"role": "user", "content": "What is the weather in Paris?"}]
    first = events(harmony, messages, tool_choice="required", max_tokens=128)
    reply = first[-1]
    streamed = "".join(e.text for e in first if isinstance(e, ReasoningDelta))
    assert reply.reasoning is not None and reply.reasoning.text.strip()
    assert streamed == reply.reasoning.text  # the analysis streamed as reasoning ...
    assert not any(isinstance(e, TextDelta) and e.text.strip() for e in first)  # ... never as the answer
    (call,) = reply.tool_calls  # the commentary, read by the harmony parser
    assert call.name == "get_weather" and set(json.loads(call.arguments)) == {"city"}
    messages += [
        {
            "role": "assistant",
            "content": "",
            "tool_calls": [call.message_part()],
            "reasoning": reply.reasoning.as_entry(),
        },
        {"role": "tool", "tool_call_id": call.id, "content": "Sunny, 20C"},
    ]
    second = events(harmony, messages, max_tokens=8)[-1]
    kept = f"<|start|>assistant<|channel|>analysis<|message|>{reply.reasoning.text}<|end|>"
    assert kept in harmony._prompt  # the analysis of the tool chain, rendered back as `thinking`
    assert second.usage.cached_tokens >= reply.usage.prompt_tokens - 2  # the first prompt's cache reused
