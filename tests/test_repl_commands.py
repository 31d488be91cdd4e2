"""Slash commands that change the backend or ask the model again, in a real pseudo-terminal against
real loopback servers: what a switch keeps, and what Ctrl-C or SIGTERM in the middle of one leaves."""

from __future__ import annotations

import socket
import time

import pexpect

from tests.support.fakeserver import FakeServer, sse, text_stream
from tests.support.terminal import say, see, spawn


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
