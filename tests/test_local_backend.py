"""The local backend with the real bundled GGUF, in-process through llama.cpp."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

pytest.importorskip("llama_cpp")

from toolchat.backends.base import Reply, Request, TextDelta  # noqa: E402
from toolchat.backends.generic import ResponseStreamer, output_schema  # noqa: E402
from toolchat.backends.local import LocalBackend  # noqa: E402
from toolchat.backends.prompt import JinjaTemplate  # noqa: E402
from toolchat.config import Settings  # noqa: E402
from toolchat.errors import BackendError  # noqa: E402
from toolchat.tools import discover  # noqa: E402

TOOLS = discover([]).definitions()


@pytest.fixture(scope="module")
def backend(bundled_gguf, tmp_path_factory):
    return LocalBackend(Settings(backend="local", model=str(bundled_gguf), n_ctx=4096, seed=7), tmp_path_factory.mktemp("cache"))


def run(backend, messages, tools=TOOLS, **kwargs) -> tuple[str, Reply]:
    deltas, reply = [], None
    for event in backend.complete(Request(messages, tools, **kwargs)):
        if isinstance(event, TextDelta):
            deltas.append(event.text)
        else:
            reply = event
    return "".join(deltas), reply


def test_a_forced_call_by_grammar_has_valid_arguments(backend):
    _, reply = run(backend, [{"role": "user", "content": "What's the weather in Oslo?"}],
                   tool_choice={"type": "function", "function": {"name": "get_weather"}})
    assert [c.name for c in reply.tool_calls] == ["get_weather"]
    arguments = json.loads(reply.tool_calls[0].arguments)
    assert set(arguments) == {"city"} and isinstance(arguments["city"], str)
    assert reply.usage.prompt_tokens > 100 and reply.usage.completion_tokens > 0


def test_required_picks_some_tool_and_none_answers_in_text(backend):
    _, reply = run(backend, [{"role": "user", "content": "What is 6 times 7?"}], tool_choice="required")
    assert len(reply.tool_calls) == 1 and reply.tool_calls[0].name in {t["function"]["name"] for t in TOOLS}
    streamed, reply = run(backend, [{"role": "user", "content": "Say hello."}], tool_choice="none", max_tokens=24)
    assert reply.tool_calls == [] and reply.text == streamed


def test_after_a_tool_result_the_model_answers_and_reuses_the_cache(backend):
    messages = [{"role": "user", "content": "What's the weather in Oslo?"}]
    _, first = run(backend, messages, tool_choice={"type": "function", "function": {"name": "get_weather"}})
    call = first.tool_calls[0]
    messages += [{"role": "assistant", "content": "", "tool_calls": [call.message_part()]},
                 {"role": "tool", "tool_call_id": call.id, "content": "Sunny, 20C"}]
    _, second = run(backend, messages, max_tokens=40)
    assert second.tool_calls == []
    assert second.usage.cached_tokens >= 0.8 * second.usage.prompt_tokens


def test_plain_chat_without_tools(backend):
    streamed, reply = run(backend, [{"role": "user", "content": "Hello"}], tools=[], max_tokens=16)
    assert reply.text == streamed and reply.usage.completion_tokens <= 16


def test_a_conversation_that_outgrows_the_context_is_trimmed_then_refused(bundled_gguf, tmp_path):
    small = LocalBackend(Settings(backend="local", model=str(bundled_gguf), n_ctx=512), tmp_path)
    long_tool_output = "word " * 300
    messages = [{"role": "user", "content": "Weather?"},
                {"role": "assistant", "content": "", "tool_calls": [
                    {"id": "c1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Oslo"}'}}]},
                {"role": "tool", "tool_call_id": "c1", "content": long_tool_output},
                {"role": "user", "content": "And now?"}]
    _, reply = run(small, messages, tools=[], max_tokens=8)
    assert reply.usage.prompt_tokens < 512
    with pytest.raises(BackendError, match=r"no longer fits the model's context \(512\)"):
        run(small, [{"role": "user", "content": "word " * 2000}], tools=[], max_tokens=8)


def test_n_ctx_is_capped_at_the_trained_context_and_gpu_is_reported(bundled_gguf, tmp_path):
    big = LocalBackend(Settings(backend="local", model=str(bundled_gguf), n_ctx=10**6), tmp_path)
    assert big.n_ctx == 32768
    assert "GPU offload available" in big.describe() or "CPU only (for a GPU build: CMAKE_ARGS" in big.describe()
    assert big.format == "generic"


def test_the_models_own_template_renders_sandboxed():
    qwen_like = ("{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}"
                 "{% if m.tool_calls %}{% for c in m.tool_calls %}<tool_call>{{ c.function | tojson }}</tool_call>{% endfor %}{% endif %}"
                 "<|im_end|>\n{% endfor %}{% if tools %}TOOLS:{{ tools | tojson }}{% endif %}"
                 "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")
    template = JinjaTemplate(qwen_like, "", "<|im_end|>")
    text = template.render([{"role": "user", "content": "hi"},
                            {"role": "assistant", "content": "", "tool_calls": [
                                {"id": "1", "type": "function", "function": {"name": "f", "arguments": '{"a": 1}'}}]}],
                           tools=[{"type": "function", "function": {"name": "f"}}])
    assert '<tool_call>{"name": "f", "arguments": {"a": 1}}</tool_call>' in text
    assert text.endswith("<|im_start|>assistant\n") and 'TOOLS:[{"type": "function"' in text
    evil = JinjaTemplate("{{ ''.__class__.__mro__[1].__subclasses__() }}", "", "")
    with pytest.raises(BackendError, match="chat template failed"):
        evil.render([])


def test_response_streamer_under_every_split():
    raw = '{"response": "Line one\\nsaid \\"hi\\" \\u00e9 done"}'
    for at in range(len(raw) + 1):
        streamer = ResponseStreamer()
        assert streamer.feed(raw[:at]) + streamer.feed(raw[at:]) == 'Line one\nsaid "hi" é done'


def test_output_schema_choices():
    assert output_schema(TOOLS, "none") == {"type": "object", "properties": {"response": {"type": "string"}},
                                            "required": ["response"]}
    named = output_schema(TOOLS, {"type": "function", "function": {"name": "calculate"}})
    assert named["properties"]["tool_call"]["properties"]["name"] == {"const": "calculate"}
    assert len(output_schema(TOOLS, "auto")["anyOf"]) == len(TOOLS) + 1
    assert len(output_schema(TOOLS, "required")["anyOf"]) == len(TOOLS)


def test_fresh_install_with_no_config_answers_offline_with_the_bundled_model(cli, shared_cache):
    done = cli("ask", "--yes", "--tool-choice", "get_weather", "--json", "What's the weather in Oslo?", timeout=300)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["stopped"] == "answer"
    assert [(c["name"], c["status"]) for c in result["tool_calls"]] == [("get_weather", "ok")]
    second = result["usage"]["rounds"][1]
    assert second["cached_tokens"] >= 0.8 * second["prompt_tokens"]


def test_backend_local_model_bundled_flags_and_models_listing(cli, shared_cache):
    done = cli("ask", "--backend", "local", "--model", "bundled", "--tool-choice", "get_weather", "--yes",
               "What's the weather in Oslo?", timeout=300)
    assert done.returncode == 0, done.stderr
    assert "→ get_weather" in done.stderr and "← get_weather ok" in done.stderr
    listed = cli("models")
    assert listed.stdout.startswith("bundled  Gemma 3 270M")
    assert "GPU offload:" in listed.stdout


def test_the_bundled_model_is_assembled_with_a_note_on_first_use(cli):
    done = cli("ask", "--max-tokens", "4", "--no-tools", "Hi", timeout=300)
    assert done.returncode == 0, done.stderr
    assert "Preparing the bundled model (gemma-3-270m-q4_k_m.gguf, about 240 MB)" in done.stderr


def test_a_missing_local_extra_is_one_clear_line(isolated_env, tmp_path):
    code = ("import sys; sys.modules['llama_cpp'] = None\n"
            "from toolchat.app import main\n"
            "sys.exit(main(['ask', 'hi']))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=isolated_env,
                          cwd=tmp_path, stdin=subprocess.DEVNULL)
    assert done.returncode == 2
    assert done.stderr.strip() == ("toolchat: error: the local backend needs llama-cpp-python "
                                   "(install the local extra: pip install 'toolchat[local]')")
