"""The engine with a scripted backend: every outcome is answered, approval is asked, limits hold."""

from __future__ import annotations

import pytest

from tests.support.fakes import Broken, ScriptedBackend, answer, call, calls
from toolchat.engine import CallDecided, CallFinished, Decision, Engine, Policy, TextDelta
from toolchat.errors import UsageError
from toolchat.tools import RunLimits, discover

REGISTRY = discover([], bundled=True)


class Recorder:
    def __init__(self, *decisions: Decision) -> None:
        self.decisions = list(decisions)
        self.asked: list[tuple[str, dict]] = []
        self.events: list = []

    def approve(self, pending):
        self.asked.append((pending.tool.name, pending.arguments))
        return self.decisions.pop(0) if self.decisions else Decision(True)

    def sink(self, event):
        self.events.append(event)


def engine_for(backend, tmp_path, recorder, policy=None, **kwargs) -> Engine:
    return Engine(
        backend,
        REGISTRY,
        approve=recorder.approve,
        on_event=recorder.sink,
        policy=policy or Policy(),
        limits=RunLimits(tmp_path, timeout=10),
        **kwargs,
    )


def tool_messages(engine):
    return [(m["tool_call_id"], m["content"]) for m in engine.messages if m["role"] == "tool"]


def test_a_call_is_approved_run_and_answered_then_the_model_answers(tmp_path):
    backend = ScriptedBackend(calls(call("get_weather", {"city": "Singapore"}, id="c1")), answer("It is sunny."))
    recorder = Recorder()
    engine = engine_for(backend, tmp_path, recorder, system="Be brief.")
    result = engine.run_turn("Weather in Singapore?")
    assert (result.answer, result.stopped) == ("It is sunny.", "answer")
    assert recorder.asked == [("get_weather", {"city": "Singapore"})]
    assert [m["role"] for m in engine.messages] == ["system", "user", "assistant", "tool", "assistant"]
    assert engine.messages[2]["tool_calls"][0]["id"] == "c1"
    assert tool_messages(engine) == [
        ("c1", "It's sunny in Singapore, with a temperature of 20C (demo data, not a real forecast)")
    ]
    assert len(backend.requests) == 2 and backend.requests[0].tools == REGISTRY.definitions()
    assert "".join(e.text for e in recorder.events if isinstance(e, TextDelta)).strip() == "It is sunny."
    assert [r.prompt_tokens for r in result.rounds] == [10, 20]


def test_parallel_calls_each_decided_and_answered_in_order_by_id(tmp_path):
    backend = ScriptedBackend(
        calls(
            call("calculate", {"expression": "1+1"}, id="a"),
            call("nope", {}, id="b"),
            call("calculate", {"expression": 3}, id="c"),
            call("calculate", '{"expression": ', id="d"),
            call("get_weather", {"city": "Oslo"}, id="e"),
            call("calculate", {"expression": "2+2"}, id="f"),
        ),
        answer("done"),
    )
    recorder = Recorder(Decision(True), Decision(False, "not Oslo"), Decision(True))
    engine = engine_for(backend, tmp_path, recorder)
    result = engine.run_turn("go")
    assert [(r.id, r.status.value) for r in result.calls] == [
        ("a", "ok"),
        ("b", "unknown"),
        ("c", "invalid"),
        ("d", "invalid"),
        ("e", "denied"),
        ("f", "ok"),
    ]
    messages = dict(tool_messages(engine))
    assert list(messages) == ["a", "b", "c", "d", "e", "f"]
    assert messages["a"] == "2" and messages["f"] == "4"
    assert messages["b"].startswith(
        "Error: there is no tool named 'nope'. Available tools: calculate, current_datetime"
    )
    assert "argument 'expression' must be string, got 3" in messages["c"]
    assert "arguments are not valid JSON" in messages["d"]
    assert messages["e"] == "The user denied this call; it was not run. Their reason: not Oslo"
    # invalid and unknown calls are never put to the user
    assert [name for name, _ in recorder.asked] == ["calculate", "get_weather", "calculate"]


def test_errors_and_timeouts_are_answers(tmp_path, plugin_dir):
    folder = plugin_dir(
        slow="import time\n\ndef slow():\n    '''Slow.'''\n    time.sleep(30)\n\n"
        "def bad():\n    '''Bad.'''\n    raise OSError('disk on fire')\n"
    )
    registry = discover([folder], bundled=False)
    backend = ScriptedBackend(calls(call("slow", id="s"), call("bad", id="b")), answer("sorry"))
    recorder = Recorder()
    engine = Engine(
        backend,
        registry,
        approve=recorder.approve,
        on_event=recorder.sink,
        policy=Policy(True),
        limits=RunLimits(tmp_path, timeout=0.5),
    )
    result = engine.run_turn("x")
    assert [(r.status.value, r.output) for r in result.calls] == [
        ("timeout", "Error: the tool did not finish within 0.5 s and was stopped"),
        ("error", "Error: OSError: disk on fire"),
    ]
    assert result.stopped == "answer"


def test_policy_allows_without_asking_and_always_sticks(tmp_path):
    backend = ScriptedBackend(
        calls(call("calculate", {"expression": "1"})),
        calls(call("calculate", {"expression": "2"})),
        calls(call("get_weather", {"city": "X"})),
        answer("ok"),
    )
    recorder = Recorder(Decision(True, always=True))
    engine = engine_for(backend, tmp_path, recorder, policy=Policy(allow={"get_weather"}))
    engine.run_turn("x")
    assert recorder.asked == [("calculate", {"expression": "1"})]
    automatic = [e.automatic for e in recorder.events if isinstance(e, CallDecided)]
    assert automatic == [False, True, True]


def test_edited_arguments_are_validated_again(tmp_path):
    backend = ScriptedBackend(
        calls(call("calculate", {"expression": "1"}, id="x")),
        calls(call("calculate", {"expression": "1"}, id="y")),
        answer("ok"),
    )
    recorder = Recorder(Decision(True, arguments={"expression": "6*7"}), Decision(True, arguments={"expression": 5}))
    engine = engine_for(backend, tmp_path, recorder)
    result = engine.run_turn("x")
    assert [(r.status.value, r.output) for r in result.calls][0] == ("ok", "42")
    assert result.calls[1].status.value == "invalid"


def test_round_limit_stops_and_answers_every_call(tmp_path):
    backend = ScriptedBackend(*[calls(call("calculate", {"expression": "1"}, id=f"r{i}")) for i in range(3)])
    recorder = Recorder()
    engine = engine_for(backend, tmp_path, recorder, policy=Policy(True), max_rounds=3)
    result = engine.run_turn("loop forever")
    assert result.stopped == "max_rounds" and len(backend.requests) == 3
    assert [r.status.value for r in result.calls] == ["ok", "ok", "denied"]
    assert tool_messages(engine)[-1] == ("r2", "Not run: this turn reached its limit of 3 model calls.")


def test_tool_choice_applies_to_the_first_call_of_a_turn_only(tmp_path):
    backend = ScriptedBackend(calls(call("calculate", {"expression": "1"})), answer("a"), answer("b"))
    engine = engine_for(backend, tmp_path, Recorder(), policy=Policy(True))
    engine.run_turn("x", tool_choice="calculate")
    engine.run_turn("y")
    choices = [r.tool_choice for r in backend.requests]
    assert choices == [{"type": "function", "function": {"name": "calculate"}}, None, None]
    with pytest.raises(UsageError, match="not an offered tool"):
        engine.run_turn("z", tool_choice="nonexistent")


@pytest.mark.parametrize("choice", ["required", "none", "auto"])
def test_named_tool_choices_pass_through(tmp_path, choice):
    backend = ScriptedBackend(answer("a"))
    engine_for(backend, tmp_path, Recorder()).run_turn("x", tool_choice=choice)
    assert backend.requests[0].tool_choice == choice


def test_a_backend_failure_ends_the_turn_and_keeps_the_conversation(tmp_path):
    backend = ScriptedBackend(calls(call("calculate", {"expression": "1"}, id="k")), Broken("stream broke off"))
    recorder = Recorder()
    engine = engine_for(backend, tmp_path, recorder, policy=Policy(True))
    result = engine.run_turn("x")
    assert (result.stopped, result.error) == ("error", "stream broke off")
    assert [m["role"] for m in engine.messages] == ["user", "assistant", "tool"]
    assert [type(e).__name__ for e in recorder.events if isinstance(e, CallFinished)] == ["CallFinished"]


class InterruptingBackend(ScriptedBackend):
    """Streams some words, then the user presses Ctrl-C."""

    def complete(self, request):
        self.requests.append(request)
        yield TextDelta("Partial ")
        yield TextDelta("answer")
        raise KeyboardInterrupt


def test_ctrl_c_while_streaming_keeps_what_arrived_marked(tmp_path):
    engine = engine_for(InterruptingBackend(), tmp_path, Recorder())
    result = engine.run_turn("tell me")
    assert (result.stopped, result.answer) == ("interrupted", "Partial answer")
    assert engine.messages[-1] == {"role": "assistant", "content": "Partial answer [interrupted]"}


def test_ctrl_c_while_a_tool_runs_cancels_it_and_answers_every_call(tmp_path):
    backend = ScriptedBackend(
        calls(call("calculate", {"expression": "1"}, id="a"), call("calculate", {"expression": "2"}, id="b")),
        answer("next turn works"),
    )

    def interrupt(pending):
        raise KeyboardInterrupt

    engine = Engine(
        backend,
        REGISTRY,
        approve=interrupt,
        on_event=lambda e: None,
        policy=Policy(),
        limits=RunLimits(tmp_path),
    )
    result = engine.run_turn("x")
    assert result.stopped == "interrupted"
    assert [(r.id, r.status.value) for r in result.calls] == [("a", "cancelled"), ("b", "cancelled")]
    assert [m["role"] for m in engine.messages] == ["user", "assistant", "tool", "tool"]
    assert engine.run_turn("again").answer == "next turn works"  # the conversation goes on
