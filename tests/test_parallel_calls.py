"""The calls of one reply run at once (issue 29, item 2): approvals in the model's order, then the
approved calls together, at most `tools.parallel` at a time; the model reads the results in its
own order whatever order they finish in. `ask` against a scripted loopback server, with a plugin
that says when each call ran."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from tests.support.fakeserver import FakeServer, openai_calls, sse, text_stream, vllm_calls

NAP = '''
import os
import json
import time


def nap(tag: str, seconds: float) -> str:
    """Sleep this long, then say when the call ran."""
    started = time.time()
    time.sleep(seconds)
    return f"{tag} {started:.3f} {time.time():.3f}"


def crash(tag: str) -> str:
    """Die at once, as a tool with a fault in native code does."""
    os._exit(7)
'''

SLEEPS = [1.2, 0.3, 0.9, 0.0, 0.6]  # the model's order; they finish in another


@pytest.fixture
def server():
    with FakeServer() as running:
        yield running
        assert not running.scripts, f"scripted replies left unused: {running.scripts}"


def naps(sleeps: list[float] = SLEEPS) -> list[tuple[str, dict[str, object]]]:
    return [("nap", {"tag": f"n{i}", "seconds": s}) for i, s in enumerate(sleeps)]


def ask(cli, server: FakeServer, tools: Path, config: str, *extra: str):
    path = tools.parent / "toolchat-config.yaml"
    path.write_text(config)
    started = time.monotonic()
    done = cli("ask", "-c", str(path), "--base-url", server.url, "--tools", str(tools), *extra, "Rest a while.")
    return done, time.monotonic() - started


def tool_messages(server: FakeServer, request: int = 1) -> list[dict[str, str]]:
    return [m for m in server.requests[request]["messages"] if m["role"] == "tool"]


def spans(messages: list[dict[str, str]]) -> dict[str, tuple[float, float]]:
    """tag -> (started, ended), from what each nap said."""
    return {tag: (float(a), float(b)) for tag, a, b in (m["content"].split() for m in messages)}


def test_five_slow_calls_run_at_once_and_the_model_reads_them_in_its_order(cli, server, plugin_dir):
    server.add(sse(openai_calls(naps())), sse(text_stream("Rested.")))
    done, seconds = ask(cli, server, plugin_dir(nap=NAP), "tools:\n  parallel: 5\n", "--allow", "nap")
    assert done.returncode == 0, done.stderr
    assert done.stdout == "Rested.\n"
    messages = tool_messages(server)
    calls = server.requests[1]["messages"][-6]["tool_calls"]
    assert [m["tool_call_id"] for m in messages] == [c["id"] for c in calls]  # the model's order
    assert [m["content"].split()[0] for m in messages] == ["n0", "n1", "n2", "n3", "n4"]
    ran = spans(messages)
    # all at once: each started while n0, the first and longest (1.2 s), was still sleeping; one
    # after another, n1 would start only once n0 had ended. How close together they start depends
    # on the machine's load, so the test does not ask that.
    assert max(start for start, _ in ran.values()) < ran["n0"][1]
    finished = [line.split()[3] for line in done.stderr.splitlines() if line.startswith("← nap ok:")]
    assert finished.index("n3") < finished.index("n0")  # said as each finished: 0 s before 1.2 s
    assert seconds < 1.2 + 0.3 + 0.9 + 0.6 + 4  # a generous bound; the speed target is a benchmark


def test_at_most_tools_parallel_run_at_once(cli, server, plugin_dir):
    server.add(sse(openai_calls(naps([0.8] * 4))), sse(text_stream("Rested.")))
    done, _ = ask(cli, server, plugin_dir(nap=NAP), "tools:\n  parallel: 2\n", "--allow", "nap")
    assert done.returncode == 0, done.stderr
    ran = sorted(spans(tool_messages(server)).values())
    for moment, _ in ran:  # at no call's start were more than two running
        assert sum(1 for start, end in ran if start <= moment < end) <= 2
    assert ran[2][0] >= min(end for _, end in ran[:2]) - 0.05  # the third waited for a place


def test_parallel_one_asks_runs_and_answers_each_call_in_turn(cli, server, plugin_dir):
    server.add(sse(openai_calls(naps([0.3, 0.0, 0.2]))), sse(text_stream("Rested.")))
    done, _ = ask(cli, server, plugin_dir(nap=NAP), "tools:\n  parallel: 1\n", "--allow", "nap")
    assert done.returncode == 0, done.stderr
    ran = [spans(tool_messages(server))[tag] for tag in ("n0", "n1", "n2")]
    assert ran[0][1] <= ran[1][0] and ran[1][1] <= ran[2][0]  # one after another, in the model's order
    said = [line.split()[0] + line.split()[3] for line in done.stderr.splitlines() if line[:1] in "→←"]
    assert said == ['→"n0",', "←n0", '→"n1",', "←n1", '→"n2",', "←n2"]  # asked, run, answered, in turn


def test_each_call_keeps_its_own_time_limit_and_a_crash_disturbs_no_other(cli, server, plugin_dir):
    calls = [
        ("nap", {"tag": "slow", "seconds": 30}),
        ("crash", {"tag": "c"}),
        ("nap", {"tag": "quick", "seconds": 0.2}),
    ]
    server.add(sse(openai_calls(calls)), sse(text_stream("Done.")))
    config = "tools:\n  timeout: 1.5\n"
    done, seconds = ask(cli, server, plugin_dir(nap=NAP), config, "--allow", "nap", "--allow", "crash")
    assert done.returncode == 0, done.stderr
    slow, crashed, quick = (m["content"] for m in tool_messages(server))
    assert slow == "Error: the tool did not finish within 1.5 s and was stopped"
    assert crashed.startswith("Error:") and "7" in crashed
    assert quick.startswith("quick ")
    assert seconds < 15  # the slow one was stopped at its own limit, not waited for


def test_a_denied_call_among_approved_ones_is_answered_in_its_place(cli, server, plugin_dir):
    calls = [*naps([0.2, 0.2]), ("nap_later", {}), *naps([0.0])]
    server.add(sse(openai_calls(calls)), sse(text_stream("Done.")))
    done, _ = ask(cli, server, plugin_dir(nap=NAP), "tools:\n  parallel: 4\n", "--allow", "nap")
    assert done.returncode == 0, done.stderr
    contents = [m["content"] for m in tool_messages(server)]
    assert contents[0].startswith("n0 ") and contents[1].startswith("n1 ") and contents[3].startswith("n0 ")
    assert contents[2].startswith("Error: there is no tool named 'nap_later'")


def test_tools_parallel_is_checked_by_the_schema_and_shown_by_config_show(cli, tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("tools:\n  parallel: 0\n")
    refused = cli("config", "show", "-c", str(bad))
    assert refused.returncode == 2
    assert f"{bad}:2:3: 'tools.parallel' must be from 1 to 64, not 0" in refused.stderr
    good = tmp_path / "good.yaml"
    good.write_text("tools:\n  parallel: 3\nprofiles:\n  wide:\n    tools:\n      parallel: 8\n")
    plain = rows(cli("config", "show", "-c", str(good), env={"COLUMNS": "200"}))
    assert plain["tool_parallel"].split()[1] == "3" and f"{good}:2:3" in plain["tool_parallel"]
    wide = rows(cli("config", "show", "-c", str(good), "-p", "wide", env={"COLUMNS": "200"}))
    assert wide["tool_parallel"].split()[1] == "8" and f"{good}:6:7" in wide["tool_parallel"]


def rows(done) -> dict[str, str]:
    assert done.returncode == 0, done.stderr
    return {line.split()[0]: line for line in done.stdout.splitlines() if line.strip()}


MARK = '''
import os


def mark(tag: str) -> str:
    """Leave a file named `tag` behind: proof that the call ran."""
    open(os.path.join(os.environ["MARKS"], tag), "w").close()
    return f"marked {tag}"
'''


def test_a_call_the_user_did_not_approve_never_runs_while_the_approved_ones_do(cli, server, plugin_dir, tmp_path):
    marks = tmp_path / "marks"
    marks.mkdir()
    folder = plugin_dir(mark=MARK, nap=NAP)
    calls = [("mark", {"tag": "m0"}), *naps([0.2]), ("mark", {"tag": "m2"})]
    server.add(sse(openai_calls(calls)), sse(text_stream("Done.")))
    path = tmp_path / "parallel.yaml"
    path.write_text("tools:\n  parallel: 4\n")
    done = cli(
        "ask",
        "-c",
        str(path),
        "--base-url",
        server.url,
        "--tools",
        str(folder),
        "--allow",
        "nap",
        "Go.",
        env={"MARKS": str(marks)},
    )
    assert done.returncode == 0, done.stderr
    assert list(marks.iterdir()) == []  # no terminal to ask on: both marks denied, neither ran
    contents = [m["content"] for m in tool_messages(server)]
    assert contents[0].startswith("The user denied this call") and contents[2].startswith("The user denied")
    assert contents[1].startswith("n0 ")


def test_ctrl_c_at_the_third_question_runs_none_and_answers_every_call_in_its_place(tmp_path, plugin_dir):
    from tests.support.fakes import ScriptedBackend, answer, call, calls
    from toolchat.engine import Decision, Engine, Policy
    from toolchat.tools import RunLimits, discover

    marks = tmp_path / "marks"
    marks.mkdir()
    asked: list[str] = []

    def approve(pending):
        asked.append(pending.arguments["tag"])
        if len(asked) == 3:
            raise KeyboardInterrupt
        return Decision(True)

    backend = ScriptedBackend(
        calls(*[call("mark", {"tag": f"m{i}"}, id=f"c{i}") for i in range(4)]), answer("next turn works")
    )
    registry = discover([plugin_dir(mark=MARK.replace('os.environ["MARKS"]', repr(str(marks))))], bundled=False)
    engine = Engine(
        backend, registry, approve=approve, on_event=lambda e: None, policy=Policy(), limits=RunLimits(tmp_path)
    )
    result = engine.run_turn("Mark four.")
    assert result.stopped == "interrupted" and asked == ["m0", "m1", "m2"]
    assert list(marks.iterdir()) == []  # the two approved before Ctrl-C never ran either
    assert [(r.id, r.output) for r in result.calls] == [
        ("c0", "Not run: the user interrupted the turn."),
        ("c1", "Not run: the user interrupted the turn."),
        ("c2", "Not run: the user pressed Ctrl-C before approving this call."),
        ("c3", "Not run: the user interrupted the turn."),
    ]
    assert [m.get("tool_call_id") for m in engine.messages if m["role"] == "tool"] == ["c0", "c1", "c2", "c3"]
    assert engine.run_turn("again").answer == "next turn works"  # the conversation goes on


def test_calls_without_ids_from_a_vllm_server_keep_their_order_too(cli, server, plugin_dir):
    server.add(sse(vllm_calls(naps([0.6, 0.0, 0.3]))), sse(text_stream("Rested.")))
    done, _ = ask(cli, server, plugin_dir(nap=NAP), "tools:\n  parallel: 3\n", "--allow", "nap")
    assert done.returncode == 0, done.stderr
    messages = tool_messages(server)
    ids = [c["id"] for c in server.requests[1]["messages"][-4]["tool_calls"]]
    assert len(set(ids)) == 3 and [m["tool_call_id"] for m in messages] == ids
    assert [m["content"].split()[0] for m in messages] == ["n0", "n1", "n2"]


ECHO = '''
import hashlib


def echo(text: str) -> str:
    """Say the text back, and its digest."""
    return hashlib.sha256(text.encode()).hexdigest() + " " + text
'''


def test_six_calls_with_big_arguments_at_once_each_get_their_own_answer_whole(tmp_path, plugin_dir):
    """Frames to and from the tool workers are far bigger than a pipe's atomic write here (300 KB
    each way): run at once, none is mixed with another's."""
    import hashlib

    from tests.support.fakes import ScriptedBackend, answer, call, calls
    from toolchat.engine import Engine, Policy
    from toolchat.tools import RunLimits, discover

    texts = [chr(ord("a") + n) * 300_000 + str(n) for n in range(6)]
    backend = ScriptedBackend(
        calls(*[call("echo", {"text": t}, id=f"e{n}") for n, t in enumerate(texts)]), answer("ok")
    )
    engine = Engine(
        backend,
        discover([plugin_dir(echo=ECHO)], bundled=False),
        approve=lambda pending: None,
        on_event=lambda event: None,
        policy=Policy(approve_all=True),
        limits=RunLimits(tmp_path, max_output_chars=1_000_000),
        parallel=6,
    )
    result = engine.run_turn("Echo six.")
    assert result.stopped == "answer"
    for record, text in zip(result.calls, texts):
        assert record.status.value == "ok"
        assert record.output == hashlib.sha256(text.encode()).hexdigest() + " " + text


def test_ask_json_lists_the_calls_in_the_model_s_order(cli, server, plugin_dir):
    server.add(sse(openai_calls(naps([0.5, 0.0]))), sse(text_stream("Rested.")))
    done, _ = ask(cli, server, plugin_dir(nap=NAP), "tools:\n  parallel: 2\n", "--allow", "nap", "--json")
    assert done.returncode == 0, done.stderr
    listed = json.loads(done.stdout)["tool_calls"]
    assert [(c["id"], c["status"], c["output"].split()[0]) for c in listed] == [
        ("call_0abc", "ok", "n0"),
        ("call_1abc", "ok", "n1"),
    ]
