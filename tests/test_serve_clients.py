"""A third-party client against `toolchat serve`: simonw/llm, configured the way its users add
any OpenAI-compatible model (`extra-openai-models.yaml`), with the server's API key."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.support.fakeserver import openai_calls, sse, text_stream
from tests.support.serving import Served

KEY = "served-" + "k" * 24
LOOKUP = '''
def lookup_order(order: str) -> str:
    """Find where an order is."""
    return f"order {order} ships today"
'''


def run_llm(served: Served, tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    home = tmp_path / "llm-home"
    home.mkdir(exist_ok=True)
    (home / "extra-openai-models.yaml").write_text(
        f"- model_id: served\n  model_name: toolchat\n  api_base: {served.url}\n"
        "  api_key_name: served\n  supports_tools: true\n"
    )
    llm = [sys.executable, "-c", "import sys; from llm.cli import cli; sys.exit(cli())"]
    return subprocess.run(
        [*llm, "-m", "served", "--key", KEY, *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={"LLM_USER_PATH": str(home), "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)},
        stdin=subprocess.DEVNULL,
    )


def test_llm_gets_an_answer_that_used_a_server_tool(upstream, serve, tmp_path):
    upstream.add(
        sse(openai_calls([("get_weather", {"city": "Singapore"})])), sse(text_stream("It's sunny in Singapore."))
    )
    served = serve("--allow", "get_weather", "--api-key-env", "SERVE_KEY", env={"SERVE_KEY": KEY})
    done = run_llm(served, tmp_path, "Weather in Singapore?")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "It's sunny in Singapore."
    assert upstream.requests[0]["messages"][-1] == {"role": "user", "content": "Weather in Singapore?"}
    assert "sunny in Singapore" in upstream.requests[1]["messages"][-1]["content"]  # run by the server


def test_llm_runs_its_own_function_when_the_model_calls_it(upstream, serve, tmp_path):
    upstream.add(sse(openai_calls([("lookup_order", {"order": "A17"})])), sse(text_stream("Order A17 ships today.")))
    served = serve("--api-key-env", "SERVE_KEY", env={"SERVE_KEY": KEY})
    done = run_llm(served, tmp_path, "--functions", LOOKUP, "Where is order A17?")
    assert done.returncode == 0, done.stderr
    assert "Order A17 ships today." in done.stdout
    offered = [t["function"]["name"] for t in upstream.requests[0]["tools"]]
    assert "lookup_order" in offered and "get_weather" in offered
    answered = upstream.requests[1]["messages"][-1]
    assert answered["role"] == "tool" and answered["content"] == "order A17 ships today"  # run by llm
