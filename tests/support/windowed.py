"""A loopback OpenAI-compatible server with a small context window, for tests of long conversations.

It counts a request the way a tokenizer roughly does (four characters a token, over the JSON of the
messages and tools) and, past its window, refuses in a real server's shape (`vllm`, `openai`,
`llamacpp`) or, as Ollama does, silently drops the oldest messages and answers anyway (`ollama`).
Its model reads: to "READ N" it calls `read_part` once per part until N parts were called in this
turn, then answers "read N parts for: QUESTION"; any other question is answered "answer to:
QUESTION"; a request without tools whose system prompt asks to compact gets a short summary."""

from __future__ import annotations

import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

READ_PART = '''
def read_part(n: int) -> str:
    """Read part n of the long document."""
    return f"part {n}: " + "lorem ipsum dolor sit amet " * 150
'''


def tokens_of(body: dict[str, Any]) -> int:
    return len(json.dumps(body.get("messages", [])) + json.dumps(body.get("tools", []))) // 4


def refusal(shape: str, window: int, prompt: int) -> dict[str, Any]:
    if shape == "llamacpp":
        return {
            "error": {
                "code": 400,
                "message": f"the request exceeds the available context size ({prompt} tokens > {window})",
                "type": "exceed_context_size_error",
                "n_prompt_tokens": prompt,
                "n_ctx": window,
            }
        }
    words = (
        f"This model's maximum context length is {window} tokens. However, your messages resulted in {prompt} tokens."
    )
    if shape == "openai":
        return {"error": {"message": words, "type": "invalid_request_error", "code": "context_length_exceeded"}}
    return {"error": {"message": words, "type": "BadRequestError", "param": "input_tokens", "code": 400}}


class WindowedServer:
    def __init__(self, window: int, shape: str = "vllm", listed: bool = True) -> None:
        self.window, self.shape, self.listed = window, shape, listed
        self.requests: list[dict[str, Any]] = []  # every chat request as received
        self.sizes: list[int] = []  # its count in tokens
        self.refused = 0
        api = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                entry: dict[str, Any] = {"id": "small", "object": "model", "owned_by": "vllm"}
                if api.listed:
                    entry["max_model_len"] = api.window
                self._send(200, {"object": "list", "data": [entry]})

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                status, answer = api.answer(body)
                self._send(status, answer)

            def _send(self, status: int, body: Any) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/v1"

    def answer(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        count = tokens_of(body)
        messages = body["messages"]
        if count > self.window and self.shape != "ollama":
            self.refused += 1
            return 400, refusal(self.shape, self.window, count)
        self.requests.append(body)
        self.sizes.append(count)
        if count > self.window:  # Ollama: the oldest messages go, silently; the count is pinned at num_ctx
            while len(messages) > 1 and tokens_of({"messages": messages}) > self.window:
                messages = messages[1:]
            count = self.window
        return 200, self._reply(body, messages, count)

    def _reply(self, body: dict[str, Any], messages: list[dict[str, Any]], count: int) -> dict[str, Any]:
        message: dict[str, Any] = {"role": "assistant", "content": ""}
        if not body.get("tools") and "compact" in str(messages[0].get("content")):
            message["content"] = "SUMMARY: the user asked questions and was answered."
        else:
            last_user = max((i for i, m in enumerate(messages) if m["role"] == "user"), default=-1)
            question = str(messages[last_user]["content"]) if last_user >= 0 else "(no question)"
            wanted = re.match(r"READ (\d+)", question)
            called = sum(len(m.get("tool_calls") or []) for m in messages[last_user + 1 :])
            if wanted and called < int(wanted.group(1)):
                n = called + 1
                function = {"name": "read_part", "arguments": json.dumps({"n": n})}
                message["tool_calls"] = [
                    {"id": f"call_{n}_{len(self.requests)}", "type": "function", "function": function}
                ]
            elif wanted:
                message["content"] = f"read {called} parts for: {question}"
            else:
                message["content"] = f"answer to: {question}"
        finish = "tool_calls" if message.get("tool_calls") else "stop"
        return {
            "id": "chatcmpl-w",
            "object": "chat.completion",
            "model": "small",
            "choices": [{"index": 0, "message": message, "finish_reason": finish}],
            "usage": {"prompt_tokens": count, "completion_tokens": 10, "total_tokens": count + 10},
        }

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def __enter__(self) -> WindowedServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def plain_engine(backend: Any, settings: Any, events: list, folder: Any) -> Any:
    """An engine on `backend` with no tools and a short system prompt, every event into `events`."""
    from toolchat.conversation import Conversation
    from toolchat.engine import Engine, Policy
    from toolchat.tools import RunLimits, discover

    engine = Engine(
        backend,
        discover([], bundled=False),
        approve=lambda pending: None,
        on_event=events.append,
        policy=Policy(True),
        limits=RunLimits(folder),
        conversation=Conversation("Answer in one short sentence."),
    )
    engine.configure(settings)
    return engine
