"""Reasoning models end to end: `toolchat ask` against loopback servers that stream reasoning the
way each real server does, and pass-back checked the way each server reads it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.support.fakeserver import FakeServer, Script, chunk, error, openai_calls, reply_json, sse, text_stream
from tests.support.reasoning import THOUGHT, thinking, with_thought
from toolchat.backends.reasoning import InlineThink, split_inline, wire_messages

REPO = Path(__file__).resolve().parents[1]
WEATHER = [("get_weather", {"city": "Singapore"})]
ANSWER = "It's sunny in Singapore."
DEEPSEEK_400 = "The `reasoning_content` in the thinking mode must be passed back to the API."


def inline(text: str, answer: str, cuts: list[int]) -> list[dict[str, Any]]:
    """Content that opens with <think>...</think>, cut at `cuts` (tags split across deltas)."""
    whole = f"<think>{text}</think>\n\n{answer}"
    bounds = [0, *cuts, len(whole)]
    chunks = [chunk({"role": "assistant", "content": ""})]
    chunks += [chunk({"content": whole[a:b]}) for a, b in zip(bounds, bounds[1:]) if b > a]
    return chunks + [chunk(finish="stop")]


def ask(run_cli, server: FakeServer, *extra: str, env: dict[str, str] | None = None):
    return run_cli(
        "ask",
        "--base-url",
        server.url,
        "--tools",
        str(REPO / "tools"),
        "--allow",
        "get_weather",
        *extra,
        "What's the weather in Singapore?",
        env=env,
    )


def assistant_messages(request: dict[str, Any]) -> list[dict[str, Any]]:
    return [m for m in request["messages"] if m["role"] == "assistant"]


@pytest.mark.parametrize(
    "server_kind, field",
    [("vLLM >= 0.17 and Ollama's /v1", "reasoning"), ("llama-server, LM Studio, older vLLM", "reasoning_content")],
)
def test_streamed_reasoning_is_shown_on_stderr_and_sent_back_in_its_own_field(run_cli, server_kind, field):
    with FakeServer() as server:
        server.add(with_thought(field, THOUGHT, openai_calls(WEATHER)), sse(text_stream(ANSWER)))
        done = ask(run_cli, server)
    assert done.returncode == 0, done.stderr
    assert done.stdout == ANSWER + "\n"  # the answer alone
    assert THOUGHT in done.stderr
    assert done.stderr.index(THOUGHT) < done.stderr.index("→ get_weather")
    sent = assistant_messages(server.requests[1])[0]
    assert sent[field] == THOUGHT  # back in the field it came in
    assert "reasoning" not in sent or field == "reasoning"  # toolchat's own entry never goes on the wire
    assert not isinstance(sent.get("reasoning"), dict)


def test_inline_think_tags_split_across_deltas_never_reach_stdout(run_cli):
    answer = "Fix the parser's off-by-one"
    # cut inside "<think>", inside "</think>" and between the tag and the answer
    stream = inline("The diff changes an index.", answer, cuts=[3, 6, 20, 28, 31, 33, 36])
    with FakeServer() as server:
        server.add(sse(stream))
        done = run_cli("ask", "--base-url", server.url, "--no-tools", "Write a commit message")
    assert done.returncode == 0, done.stderr
    assert done.stdout == answer + "\n"
    assert "The diff changes an index." in done.stderr
    assert "<think>" not in done.stdout + done.stderr


def test_inline_reasoning_goes_back_as_the_content_the_model_wrote(run_cli):
    whole = f"<think>{THOUGHT}</think>\n"
    first = [chunk({"role": "assistant", "content": ""}), chunk({"content": whole[:9]}), chunk({"content": whole[9:]})]
    first += openai_calls(WEATHER)[1:]
    with FakeServer() as server:
        server.add(sse(first), sse(text_stream(ANSWER)))
        done = ask(run_cli, server, "--json")
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["answer"] == ANSWER
    assert assistant_messages(server.requests[1])[0]["content"] == whole  # tags included, exactly
    kept = assistant_messages(result)[0]
    assert kept["content"] == "" and kept["reasoning"]["text"] == THOUGHT and kept["reasoning"]["field"] == "inline"


def test_an_unclosed_think_is_reasoning_and_the_answer_is_empty(run_cli):
    stream = [chunk({"role": "assistant", "content": "<think>Let me consider"}), chunk({"content": " </thi"})]
    stream.append(chunk(finish="length"))
    with FakeServer() as server:
        server.add(sse(stream))
        done = run_cli("ask", "--base-url", server.url, "--no-tools", "Hi")
    assert done.stdout == ""
    assert "Let me consider </thi" in done.stderr
    assert "the answer was cut" in done.stderr


def test_a_call_written_inside_reasoning_is_never_run(run_cli, tmp_path):
    call = '<tool_call>{"name": "get_weather", "arguments": {"city": "Paris"}}</tool_call>'
    with FakeServer() as server:
        server.add(sse(inline(f"Maybe {call}? No, just answer.", "Hello.", cuts=[40])))
        done = ask(run_cli, server)
    assert done.returncode == 0, done.stderr
    assert done.stdout == "Hello.\n"
    assert "→ get_weather" not in done.stderr and len(server.requests) == 1


class DeepSeek(FakeServer):
    """DeepSeek's thinking mode as strict as the real one: within the current tool-calling turn
    every assistant message must carry `reasoning_content`, else HTTP 400 with its words."""

    def _next(self) -> Script:
        messages = self.requests[-1]["messages"]
        last_user = max(i for i, m in enumerate(messages) if m["role"] == "user")
        turn = [m for m in messages[last_user + 1 :] if m["role"] == "assistant"]
        if any("reasoning_content" not in m for m in turn):
            with self._lock:
                self.scripts.pop(0)  # the reply it would have given is not given
            return error(400, DEEPSEEK_400)
        return super()._next()


def test_deepseek_tool_turn_with_thinking_passes_reasoning_content_back_even_empty(run_cli):
    with DeepSeek() as server:
        server.add(
            with_thought("reasoning_content", THOUGHT, openai_calls(WEATHER)),
            sse(openai_calls([("get_weather", {"city": "Paris"})])),  # a round with no reasoning
            with_thought("reasoning_content", "Both done.", text_stream(ANSWER)),
        )
        done = ask(run_cli, server)
    assert done.returncode == 0, done.stderr
    assert done.stdout == ANSWER + "\n"
    third = assistant_messages(server.requests[2])
    assert [m["reasoning_content"] for m in third] == [THOUGHT, ""]


def test_the_strict_deepseek_fake_refuses_a_turn_sent_without_its_reasoning(run_cli, tmp_path):
    (tmp_path / "toolchat.yaml").write_text("reasoning_keep: none\n")
    with DeepSeek() as server:
        server.add(with_thought("reasoning_content", THOUGHT, openai_calls(WEATHER)), sse(text_stream(ANSWER)))
        done = ask(run_cli, server, "-c", str(tmp_path / "toolchat.yaml"))
    assert done.returncode == 1
    assert DEEPSEEK_400 in done.stderr and done.stdout == ""


ENCRYPTED = {
    "type": "reasoning.encrypted",
    "data": "gAAAAB3xZ==",
    "id": "rs_1",
    "format": "openai-responses-v1",
    "index": 1,
}


def test_openrouter_reasoning_details_go_back_verbatim_encrypted_items_included(run_cli):
    summary = {"type": "reasoning.summary", "summary": "Weather lookup.", "format": "openai-responses-v1", "index": 0}
    first = [
        chunk({"role": "assistant", "content": "", "reasoning": "Weather ", "reasoning_details": [summary]}),
        chunk({"reasoning": "lookup.", "reasoning_details": [ENCRYPTED]}),
        *openai_calls(WEATHER)[1:],
    ]
    with FakeServer() as server:
        server.add(sse(first), sse(text_stream(ANSWER)))
        done = ask(run_cli, server)
    assert done.returncode == 0, done.stderr
    sent = assistant_messages(server.requests[1])[0]
    assert sent["reasoning"] == "Weather lookup."
    assert sent["reasoning_details"] == [summary, ENCRYPTED]


def test_hidden_reasoning_tokens_are_counted_in_json_usage(run_cli):
    usage = {
        "prompt_tokens": 30,
        "completion_tokens": 400,
        "completion_tokens_details": {"reasoning_tokens": 340},
    }
    with FakeServer() as server:
        server.add(sse(text_stream(ANSWER, usage=usage)))
        done = run_cli("ask", "--base-url", server.url, "--no-tools", "--json", "Hi")
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["usage"]["reasoning_tokens"] == 340
    assert result["usage"]["rounds"][0]["reasoning_tokens"] == 340


def test_a_whole_reply_with_reasoning_content_and_reasoning_in_json(run_cli):
    body = {
        "id": "x",
        "object": "chat.completion",
        "choices": [
            {
                "index": 0,
                "finish_reason": "stop",
                "message": {"role": "assistant", "content": ANSWER, "reasoning_content": THOUGHT},
            }
        ],
    }
    with FakeServer() as server:
        server.add(reply_json(body))
        done = run_cli("ask", "--base-url", server.url, "--no-tools", "--no-stream", "--json", "Hi")
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["answer"] == ANSWER
    assert assistant_messages(result)[0]["reasoning"] == {"text": THOUGHT, "field": "reasoning_content"}
    assert THOUGHT in done.stderr


def test_quiet_and_hide_reasoning_keep_stderr_free_of_it(run_cli):
    for flag in ("-q", "--hide-reasoning"):
        with FakeServer() as server:
            server.add(with_thought("reasoning", THOUGHT, text_stream(ANSWER)))
            done = run_cli("ask", "--base-url", server.url, "--no-tools", flag, "Hi")
        assert done.returncode == 0, done.stderr
        assert done.stdout == ANSWER + "\n" and THOUGHT not in done.stderr


def test_a_secret_in_reasoning_is_hidden(run_cli, isolated_env):
    key = "sk-test-SECRETKEY-1234567890"
    with FakeServer() as server:
        server.add(with_thought("reasoning_content", f"The key is {key}, careful.", text_stream(ANSWER)))
        done = run_cli(
            "ask", "--base-url", server.url, "--no-tools", "--json", "Hi", env={**isolated_env, "OPENAI_API_KEY": key}
        )
    assert done.returncode == 0, done.stderr
    assert key not in done.stdout + done.stderr
    assert "The key is ***" in done.stderr and "The key is ***" in done.stdout


@pytest.mark.parametrize(
    "effort, extra", [("high", {}), ("none", {"chat_template_kwargs": {"enable_thinking": False}})]
)
def test_reasoning_effort_is_sent(run_cli, effort, extra):
    with FakeServer() as server:
        server.add(sse(text_stream(ANSWER)))
        done = run_cli("ask", "--base-url", server.url, "--no-tools", "--reasoning-effort", effort, "Hi")
    assert done.returncode == 0, done.stderr
    assert server.requests[0]["reasoning_effort"] == effort
    for key, value in extra.items():
        assert server.requests[0][key] == value


def test_an_unknown_reasoning_effort_is_refused_before_anything_is_sent(run_cli):
    done = run_cli("ask", "--base-url", "http://127.0.0.1:9/v1", "--reasoning-effort", "extreme", "Hi")
    assert done.returncode == 2 and "none, low, medium, high" in done.stderr


def conversation() -> list[dict[str, Any]]:
    entry = {"text": "old", "field": "reasoning_content"}
    return [
        {"role": "user", "content": "first"},
        {"role": "assistant", "content": "one", "reasoning": entry},
        {"role": "user", "content": "second"},
        {"role": "assistant", "content": "", "tool_calls": [], "reasoning": {"text": "new", "field": "reasoning"}},
    ]


@pytest.mark.parametrize("keep, earlier, current", [("turn", None, "new"), ("all", "old", "new"), ("none", None, None)])
def test_which_turns_reasoning_goes_back(keep, earlier, current):
    wire = wire_messages(conversation(), keep)
    assert wire[1].get("reasoning_content") == earlier
    assert wire[3].get("reasoning") == current
    assert all(not isinstance(m.get("reasoning"), dict) for m in wire)


def test_the_inline_splitter_holds_a_split_tag_until_it_is_decided():
    splitter = InlineThink()
    assert splitter.feed("  <th") == []
    assert splitter.feed("ink>plan</th") == [("reasoning", "plan")]
    assert splitter.feed("ink>") == []
    assert splitter.feed("\n\nAnswer") == [("text", "Answer")]
    assert split_inline("<thinking is fun") == ("<thinking is fun", None)
    assert split_inline("a < b") == ("a < b", None)


def test_config_show_says_what_is_in_force_and_a_wrong_word_names_its_line(run_cli, tmp_path):
    config = tmp_path / "r.yaml"
    config.write_text("base_url: http://127.0.0.1:9/v1\nreasoning_effort: low\nreasoning_keep: all\n")
    shown = run_cli("config", "show", "-c", str(config))
    assert shown.returncode == 0, shown.stderr
    rows = {line.split()[0]: line for line in shown.stdout.splitlines() if line.strip()}
    assert "low" in rows["reasoning_effort"] and "r.yaml:2:1" in rows["reasoning_effort"]
    assert "all" in rows["reasoning_keep"] and "r.yaml:3:1" in rows["reasoning_keep"]
    config.write_text("base_url: http://127.0.0.1:9/v1\nreasoning_keep: some\n")
    wrong = run_cli("config", "show", "-c", str(config))
    assert wrong.returncode != 0 and "r.yaml:2:1" in wrong.stderr and "turn, all, none" in wrong.stderr


def test_inline_reasoning_cut_anywhere_splits_as_the_whole_text_does():
    whole = "\n<think>Plan: a < b and </thin is not the end.</think>\n\nThe answer."
    expected = ("The answer.", "Plan: a < b and </thin is not the end.")
    assert split_inline(whole) == expected
    for size in range(1, len(whole) + 1):
        splitter = InlineThink()
        parts = [p for i in range(0, len(whole), size) for p in splitter.feed(whole[i : i + size])]
        parts += splitter.finish()
        answer = "".join(text for kind, text in parts if kind == "text")
        thought = "".join(text for kind, text in parts if kind == "reasoning")
        assert (answer, thought) == expected, size
    assert split_inline("The answer: <think>not reasoning</think>") == (
        "The answer: <think>not reasoning</think>",
        None,
    )


def test_hostile_reasoning_fields_neither_crash_nor_drive_the_terminal(run_cli):
    stream = [
        chunk({"role": "assistant", "reasoning": 5, "reasoning_details": "not a list"}),
        chunk({"reasoning_content": "calm\x1b[2J\x1b]0;owned\x07 down", "reasoning_details": [7, None]}),
        *text_stream(ANSWER)[1:],
    ]
    with FakeServer() as server:
        server.add(sse(stream))
        done = run_cli("ask", "--base-url", server.url, "--no-tools", "--json", "Hi")
    assert done.returncode == 0, done.stderr
    assert "\x1b" not in done.stderr and "\x07" not in done.stderr
    assert "calm" in done.stderr and "down" in done.stderr
    entry = assistant_messages(json.loads(done.stdout))[0]["reasoning"]
    assert entry["field"] == "reasoning_content" and "details" not in entry


def test_ollamas_reasoning_with_its_whole_calls_at_index_0(run_cli):
    from tests.support.fakeserver import ollama_calls

    first = thinking("reasoning", THOUGHT) + ollama_calls(WEATHER)  # Ollama's /v1: finish_reason "stop" beside calls
    with FakeServer() as server:
        server.add(sse(first), sse(text_stream(ANSWER)))
        done = ask(run_cli, server)
    assert done.returncode == 0, done.stderr
    assert done.stdout == ANSWER + "\n" and THOUGHT in done.stderr
    assert assistant_messages(server.requests[1])[0]["reasoning"] == THOUGHT
