"""Native tool-call formats proven end to end against llama.cpp: the bundled weights copied into
GGUFs whose metadata holds a Qwen 2.5 (Hermes) or a Llama 3.1 chat template (written by
tests/support/bundled.py as a converter would). A forced call is written in the model's own format (a grammar per format), read
by the native parser, run, and the next round reuses the KV cache."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytest.importorskip("llama_cpp")

from tests.support.backends import run
from tests.support.bundled import with_chat_template
from toolchat.backends.local import LocalBackend
from toolchat.config.settings import Settings

TEMPLATES = Path(__file__).parent / "templates"
WEATHER = {"type": "function", "function": {"name": "get_weather"}}


@pytest.fixture(scope="module")
def made_gguf(bundled_gguf, tmp_path_factory):
    """made_gguf("qwen2.5"): the bundled weights with that template, written once per module."""
    made: dict[str, Path] = {}

    def make(name: str) -> Path:
        if name not in made:
            target = tmp_path_factory.mktemp(name) / f"gemma-as-{name}.gguf"
            made[name] = with_chat_template(bundled_gguf, target, (TEMPLATES / f"{name}.jinja").read_text())
        return made[name]

    return make


@pytest.fixture(
    scope="module",
    params=[("qwen2.5", "hermes", "<tool_call>\n{"), ("llama3.1", "llama3", '{"name": ')],
    ids=["hermes", "llama3"],
)
def native(request, made_gguf):
    name, fmt, opening = request.param
    path = made_gguf(name)
    backend = LocalBackend(Settings(backend="local", model=str(path), n_ctx=4096, seed=7), path.parent)
    yield backend, fmt, opening
    backend.close()


def test_the_format_is_detected_from_the_written_template(native):
    backend, fmt, _ = native
    assert backend.format == fmt
    assert f"tool format {fmt}" in backend.describe()


def test_forced_call_in_the_native_format_then_an_answer_reusing_the_cache(native):
    backend, _, opening = native
    messages = [{"role": "user", "content": "What's the weather in Oslo?"}]
    streamed, first = run(backend, messages, tool_choice=WEATHER, max_tokens=48)
    assert streamed == "" and [c.name for c in first.tool_calls] == ["get_weather"]
    assert set(json.loads(first.tool_calls[0].arguments)) == {"city"}
    written = next(iter(backend._raw.values()))
    assert written.startswith(opening)  # the model wrote its own format, and its own parser read it
    call = first.tool_calls[0]
    messages += [
        {"role": "assistant", "content": "", "tool_calls": [call.message_part()]},
        {"role": "tool", "tool_call_id": call.id, "content": "Sunny, 20C"},
    ]
    _, second = run(backend, messages, max_tokens=16)
    # the whole first prompt is reused (but a token where the template joins header and call)
    assert second.usage.cached_tokens >= first.usage.prompt_tokens - 2
    assert second.usage.prompt_tokens > first.usage.prompt_tokens + first.usage.completion_tokens - 4


def test_ask_runs_the_native_loop_against_the_made_gguf(cli, made_gguf):
    path = made_gguf("qwen2.5")
    done = cli(
        "ask",
        "-m",
        str(path),
        "--yes",
        "--tool-choice",
        "get_weather",
        "--temperature",
        "0",  # greedy: a sampled city can run past the limit, and a call cut there is no call
        "--max-tokens",
        "40",
        "--json",
        "What's the weather in Oslo?",
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert [(c["name"], c["status"]) for c in result["tool_calls"]][:1] == [("get_weather", "ok")], result
    rounds = result["usage"]["rounds"]
    assert len(rounds) >= 2 and rounds[1]["cached_tokens"] > rounds[0]["prompt_tokens"]


@pytest.mark.parametrize(
    "fmt, opening", [("mistral", '[TOOL_CALLS][{"name": '), ("granite", '<|tool_call|>[{"name": ')]
)
def test_forced_calls_in_the_other_native_formats_are_read_by_their_parsers(bundled_gguf, tmp_path, fmt, opening):
    backend = LocalBackend(
        Settings(backend="local", model=str(bundled_gguf), n_ctx=2048, seed=7, chat_format=fmt), tmp_path
    )
    streamed, reply = run(
        backend, [{"role": "user", "content": "What's the weather in Oslo?"}], tool_choice=WEATHER, max_tokens=48
    )
    backend.close()
    assert streamed == "" and [c.name for c in reply.tool_calls] == ["get_weather"]
    assert next(iter(backend._raw.values())).startswith(opening)


def test_metadata_that_is_not_utf8_loads(bundled_gguf, tmp_path):
    template = (TEMPLATES / "qwen2.5.jinja").read_text() + "{# caf\u00e9 #}"
    path = with_chat_template(bundled_gguf, tmp_path / "odd.gguf", template, general_description=b"caf\xe9 \xff")
    backend = LocalBackend(Settings(backend="local", model=str(path), n_ctx=512), tmp_path)
    assert backend.format == "hermes" and backend.describe().startswith("odd.gguf")
    backend.close()
