"""The REPL in a real pseudo-terminal (pexpect) against a real loopback server."""

from __future__ import annotations

import signal
import time

import pexpect

from tests.support.fakeserver import openai_calls, sse, text_stream
from tests.support.terminal import QUESTION, WEATHER, press, say, see, spawn


def test_approve_and_answer_then_exit(repl, server):
    server.add(sse(openai_calls(WEATHER)), sse(text_stream("It is sunny in Singapore.")))
    child = repl(server)
    say(child, "What's the weather in Singapore?")
    see(child, "tool call get_weather")
    child.expect(QUESTION)
    press(child, "y")
    see(child, "get_weather → ok")
    child.expect("It is sunny in Singapore.")
    child.expect("›")
    assert "It's sunny in Singapore" in server.requests[1]["messages"][-1]["content"]
    say(child, "/exit")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0


def test_decline_with_a_reason_the_model_sees(repl, server):
    server.add(sse(openai_calls(WEATHER)), sse(text_stream("Fine, no weather.")))
    child = repl(server)
    say(child, "weather?")
    child.expect(QUESTION)
    press(child, "n")
    child.expect("Reason for the model")
    say(child, "I am indoors")
    see(child, "get_weather → denied")
    child.expect("Fine, no weather.")
    assert (
        server.requests[1]["messages"][-1]["content"]
        == "The user denied this call; it was not run. Their reason: I am indoors"
    )


def test_ctrl_d_at_the_question_declines_without_asking_a_reason(repl, server):
    server.add(sse(openai_calls(WEATHER)), sse(text_stream("Not run, then.")))
    child = repl(server)
    say(child, "weather?")
    child.expect(QUESTION)
    press(child, "\x04")
    see(child, "get_weather → denied")
    child.expect("Not run, then.")
    child.expect("›")
    assert "Reason for the model" not in "\n".join(child.screen.transcript())
    told = server.requests[1]["messages"][-1]["content"]
    assert told == "The user denied this call; it was not run. Their reason: the user did not answer"


def test_always_allow_skips_the_next_question(repl, server):
    server.add(
        sse(openai_calls(WEATHER)), sse(text_stream("One.")), sse(openai_calls(WEATHER)), sse(text_stream("Two."))
    )
    child = repl(server)
    say(child, "weather?")
    child.expect(QUESTION)
    press(child, "a")
    child.expect("One.")
    child.expect("›")
    say(child, "again?")
    see(child, "allowed without asking")
    child.expect("Two.")
    assert "Run get_weather?" not in child.before
    assert len(server.requests) == 4


def test_edit_the_arguments_before_running(repl, server):
    server.add(sse(openai_calls(WEATHER)), sse(text_stream("Edited.")))
    child = repl(server)
    say(child, "weather?")
    child.expect(QUESTION)
    press(child, "e")
    child.expect("Arguments")
    press(child, "\x7f" * 40 + '{"city": 5}')
    child.send("\x1b\r")
    see(child, "invalid: argument 'city' must be string, got 5")
    press(child, "\x7f" * 20 + '{"city": "Oslo"}')
    child.send("\x1b\r")
    see(child, "get_weather → ok")
    child.expect("Edited.")
    assert "It's sunny in Oslo" in server.requests[1]["messages"][-1]["content"]


def test_ctrl_c_during_a_streamed_answer_keeps_it_and_the_repl(repl, server):
    words = " ".join(f"word{i}" for i in range(200))
    server.add(sse(text_stream(words, pieces=200), delay=0.05), sse(text_stream("Still here.")))
    child = repl(server)
    say(child, "talk a lot")
    child.expect("word5")
    child.sendintr()
    child.expect("interrupted")
    child.expect("›")
    say(child, "are you there?")
    child.expect("Still here.")
    history = server.requests[1]["messages"]
    assert history[-2]["role"] == "assistant" and history[-2]["content"].endswith("[interrupted]")
    assert history[-2]["content"].startswith("word0 word1")


def test_ctrl_c_while_a_tool_runs_stops_it_and_tells_the_model(repl, server, plugin_dir):
    folder = plugin_dir(
        slow="import time\n\ndef slow_tool() -> str:\n    '''Slow.'''\n    time.sleep(60)\n    return 'done'\n"
    )
    server.add(sse(openai_calls([("slow_tool", {})])), sse(text_stream("OK, cancelled.")))
    child = repl(server, "--tools", str(folder))
    say(child, "run the slow one")
    child.expect(r"Run slow_tool\?")
    press(child, "y")
    see(child, "running slow_tool")
    child.sendintr()
    see(child, "slow_tool → cancelled")
    child.expect("›")
    say(child, "ok?")
    child.expect("OK, cancelled.")
    tool_message = server.requests[1]["messages"][-2]
    assert tool_message["role"] == "tool" and tool_message["content"].startswith("Cancelled")


def test_ctrl_d_leaves_with_0_and_ctrl_c_at_the_prompt_clears_the_line(repl, server):
    child = repl(server)
    press(child, "half-typed")
    time.sleep(0.3)
    child.sendintr()
    child.expect("›")
    time.sleep(0.3)
    child.sendeof()
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0 and server.requests == []


def test_continue_after_a_kill(repl, server, isolated_env):
    server.add(sse(text_stream("First answer.")), sse(text_stream("Second answer.")))
    child = repl(server)
    say(child, "remember the word banana")
    child.expect("First answer.")
    child.expect("›")
    child.kill(signal.SIGKILL)
    child.wait()
    again = repl(server, "--continue")
    assert "resumed session" in again.started
    say(again, "what was the word?")
    again.expect("Second answer.")
    contents = [m["content"] for m in server.requests[1]["messages"]]
    assert contents[:2] == ["remember the word banana", "First answer."]


def test_unknown_slash_command_gets_a_suggestion_and_stats_work(repl, server):
    child = repl(server)
    say(child, "/stat")
    see(child, "unknown command /stat; did you mean /stats?")
    say(child, "/stats")
    see(child, "0 turns, 0 model calls, 0 tool calls")


def test_chat_without_a_terminal_says_to_use_ask(cli):
    done = cli("chat")
    assert done.returncode == 2
    assert "toolchat chat needs a terminal" in done.stderr and "toolchat ask" in done.stderr


def test_an_untrusted_project_config_is_shown_and_asked_about_once(isolated_env, tmp_path, server):
    server.add(sse(text_stream("Configured.")))
    (tmp_path / "toolchat.yaml").write_text(f"backend: openai\nbase_url: {server.url}\nmodel: proj-model\n")
    child = spawn(env=isolated_env, cwd=tmp_path)
    see(child, "This project has a config you have not trusted yet")
    see(child, f"base_url: {server.url}")
    child.expect(r"Trust it and use it\?")
    press(child, "y")
    see(child, "proj-model")
    child.expect("›")
    say(child, "hello")
    child.expect("Configured.")
    child.expect("›")
    time.sleep(0.3)
    child.sendeof()
    child.expect(pexpect.EOF)
    again = spawn(env=isolated_env, cwd=tmp_path)
    again.expect("›")
    assert "not trusted" not in again.before  # asked once
    time.sleep(0.3)
    again.sendeof()
    again.expect(pexpect.EOF)


def test_a_backend_error_is_one_line_and_the_repl_stays_open(repl, server):
    from tests.support.fakeserver import error

    server.add(*[error(500, "model crashed")] * 4, sse(text_stream("Back again.")))
    child = repl(server)
    say(child, "hello")
    see(child, "error:")
    see(child, "server error (HTTP 500) after retries: model crashed")
    child.expect("›")
    say(child, "hello again")
    child.expect("Back again.")
    assert [m["content"] for m in server.requests[-1]["messages"]] == ["hello", "hello again"]


def test_a_terminal_resize_mid_stream(repl, server):
    words = " ".join(f"w{i}" for i in range(120))
    server.add(sse(text_stream(words + " THE-END", pieces=60), delay=0.03))
    child = repl(server)
    say(child, "stream please")
    child.expect("w10")
    child.setwinsize(20, 60)
    time.sleep(0.2)
    child.setwinsize(50, 140)
    child.expect("THE-END")
    child.expect("›")
    assert child.isalive()


def test_an_unwritable_data_dir_says_history_is_not_saved(repl, server, isolated_env, tmp_path):
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("")
    isolated_env["TOOLCHAT_DATA_DIR"] = str(blocker)
    server.add(sse(text_stream("Works anyway.")))
    child = repl(server)
    assert "history is not being saved" in child.started
    say(child, "hello")
    child.expect("Works anyway.")


def test_pasted_text_keeps_its_newlines_as_one_message(repl, server):
    server.add(sse(text_stream("Got both lines.")))
    child = repl(server)
    press(child, "\x1b[200~first line\nsecond line\x1b[201~")
    say(child, "")
    child.expect("Got both lines.")
    assert server.requests[0]["messages"][-1]["content"] == "first line\nsecond line"


def test_esc_enter_adds_a_line_and_tab_completes_commands(repl, server):
    server.add(sse(text_stream("Two lines received.")))
    child = repl(server)
    press(child, "alpha")
    press(child, "\x1b\r")
    say(child, "beta")
    child.expect("Two lines received.")
    assert server.requests[0]["messages"][-1]["content"] == "alpha\nbeta"
    child.expect("›")
    press(child, "/sta")
    press(child, "\t")  # completions are computed in the background: give them a moment
    say(child, "")
    see(child, "1 turn, 1 model call, 0 tool calls")


def test_model_switch_takes_effect_on_the_next_question(repl, server):
    server.add(sse(text_stream("From the other model.")))
    child = repl(server)
    say(child, "/model other-model")
    see(child, "now using openai: other-model")
    child.expect("›")
    say(child, "hi")
    child.expect("From the other model.")
    assert server.requests[0]["model"] == "other-model"
