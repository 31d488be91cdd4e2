"""Slash commands that change the backend or ask the model again, in a real pseudo-terminal against
real loopback servers: what a switch keeps, and what Ctrl-C or SIGTERM in the middle of one leaves."""

from __future__ import annotations

import signal
import socket
import time
from pathlib import Path

import pexpect

from tests.support.fakeserver import FakeServer, Script, error, sse, text_stream
from tests.support.terminal import say, see, spawn
from toolchat.sessions import load


def test_a_system_prompt_set_with_system_survives_a_model_switch_and_a_failed_profile(repl, server, tmp_path):
    config = tmp_path / "brief.yaml"
    config.write_text("system: Be brief.\n")
    server.add(sse(text_stream("Bonjour.")), sse(text_stream("Encore.")))
    child = repl(server, "-c", str(config), "--no-tools")
    say(child, "/system Answer in French.")
    child.expect("system prompt set")
    child.expect("›")
    say(child, "/model other-model")
    see(child, "now using openai: other-model")
    child.expect("›")
    say(child, "hi")
    child.expect("Bonjour.")
    child.expect("›")
    say(child, "/profile nosuch")
    see(child, "no profile named 'nosuch'")
    see(child, "still using openai: other-model")
    child.expect("›")
    say(child, "again")
    child.expect("Encore.")
    child.expect("›")
    first, second = server.requests
    assert first["model"] == second["model"] == "other-model"
    assert first["messages"][0] == second["messages"][0] == {"role": "system", "content": "Answer in French."}


def test_ctrl_c_while_a_profile_loads_keeps_the_old_backend_and_says_so(isolated_env, tmp_path):
    with FakeServer(models=["m"]) as server, socket.create_server(("127.0.0.1", 0)) as silent:
        # `silent` accepts connections and never answers: listing its models hangs
        server.add(sse(text_stream("Still here.")))
        config = tmp_path / "profiles.yaml"
        config.write_text(
            f"profile: main\nprofiles:\n  main:\n    base_url: {server.url}\n    model: m\n"
            f"  slow:\n    base_url: http://127.0.0.1:{silent.getsockname()[1]}/v1\n"
        )
        child = spawn("chat", "-c", str(config), "--no-tools", env=isolated_env, cwd=tmp_path)
        child.expect("›")
        say(child, "/profile slow")  # no model named: its server is asked which it serves
        child.expect("loading")
        time.sleep(1)
        child.sendintr()
        see(child, "switch interrupted; still using openai: m")
        child.expect("›")
        say(child, "are you there?")
        child.expect("Still here.")
        child.expect("›")
        say(child, "/exit")
        child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0
    assert server.requests[0]["model"] == "m"


SLOW = " ".join(["word"] * 400)


def retrying(repl, server: FakeServer, retry: Script, *later: Script) -> pexpect.spawn:
    """The REPL after `question` was answered `First answer.` and `/retry` sent, answered by `retry`."""
    server.add(sse(text_stream("First answer.")), retry, *later)
    child = repl(server)
    say(child, "question")
    child.expect("First answer.")
    child.expect("›")
    say(child, "/retry")
    return child


def session_messages(isolated_env: dict[str, str]) -> list[tuple[str, str]]:
    (path,) = Path(isolated_env["TOOLCHAT_DATA_DIR"]).rglob("*.jsonl")
    return [(m["role"], m["content"]) for m in load(path).messages]


def test_sigterm_during_retry_exits_143_and_the_session_keeps_the_earlier_answer(repl, server, isolated_env):
    child = retrying(repl, server, sse(text_stream(SLOW, pieces=400), delay=0.05))
    child.expect("word word word")
    child.kill(signal.SIGTERM)
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 143, (child.exitstatus, child.signalstatus)
    assert session_messages(isolated_env) == [("user", "question"), ("assistant", "First answer.")]


def test_ctrl_c_during_retry_keeps_the_earlier_answer(repl, server, isolated_env):
    child = retrying(repl, server, sse(text_stream(SLOW, pieces=400), delay=0.05), sse(text_stream("Next.")))
    child.expect("word word word")
    child.sendintr()
    see(child, "the retry did not finish; the earlier answer is kept")
    child.expect("›")
    say(child, "and then?")
    child.expect("Next.")
    child.expect("›")
    sent = [(m["role"], m["content"]) for m in server.requests[2]["messages"]]
    assert sent == [("user", "question"), ("assistant", "First answer."), ("user", "and then?")]
    assert session_messages(isolated_env) == [*sent, ("assistant", "Next.")]


def test_a_retry_the_server_refuses_keeps_the_earlier_answer(repl, server, isolated_env):
    child = retrying(repl, server, error(400, "no more today"))
    see(child, "no more today")
    see(child, "the retry did not finish; the earlier answer is kept")
    child.expect("›")
    say(child, "/exit")
    child.expect(pexpect.EOF)
    assert session_messages(isolated_env) == [("user", "question"), ("assistant", "First answer.")]
