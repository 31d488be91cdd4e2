"""Knowing a model's context window from what its server says, and recognising a refusal because
a conversation does not fit, in each server's own shape (issue 25)."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.request import Request, urlopen

import pytest

from toolchat.backends.overflow import Overflow, recognise
from toolchat.backends.window import window_of


class NativeApi:
    """A loopback server answering GETs (and POSTs) on the paths given, counting each request;
    every path must be asked for, and nothing else."""

    def __init__(self, routes: dict[str, Any]) -> None:
        self.routes, self.asked = routes, []
        api = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _answer(self) -> None:
                api.asked.append(self.path)
                found = api.routes.get(self.path)
                data = json.dumps(found if found is not None else {"error": "not found"}).encode()
                self.send_response(200 if found is not None else 404)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = _answer

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def root(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def fetch(self, url: str, body: dict[str, Any] | None) -> Any:
        data = json.dumps(body).encode() if body is not None else None
        try:
            with urlopen(Request(url, data=data), timeout=2) as response:
                return json.loads(response.read())
        except OSError:
            return None

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def listing(self) -> Any:
        return self.fetch(f"{self.root}/v1/models", None)


@pytest.fixture
def native():
    made: list[NativeApi] = []

    def make(routes: dict[str, Any]) -> NativeApi:
        made.append(NativeApi(routes))
        return made[-1]

    yield make
    for api in made:
        api.close()
        assert set(api.routes) <= set(api.asked), f"paths never asked for: {set(api.routes) - set(api.asked)}"


def models(*entries: dict[str, Any]) -> dict[str, Any]:
    return {"object": "list", "data": list(entries)}


def test_vllm_says_max_model_len_in_its_listing(native):
    api = native({"/v1/models": models({"id": "Qwen/Qwen3-8B", "owned_by": "vllm", "max_model_len": 32768})})
    assert window_of(f"{api.root}/v1", "Qwen/Qwen3-8B", api.listing(), api.fetch) == 32768
    assert api.asked == ["/v1/models"]  # nothing more was asked


def test_llama_server_says_its_runtime_n_ctx_in_props_not_the_trained_length(native):
    listing = models({"id": "model.gguf", "owned_by": "llamacpp", "meta": {"n_ctx_train": 131072}})
    api = native({"/v1/models": listing, "/props": {"default_generation_settings": {"n_ctx": 4096}}})
    assert window_of(f"{api.root}/v1", "model.gguf", api.listing(), api.fetch) == 4096


def test_ollama_says_the_loaded_models_context_length_in_api_ps(native):
    listing = models({"id": "qwen3:8b", "owned_by": "library"})
    running = {"models": [{"name": "qwen3:8b", "model": "qwen3:8b", "context_length": 4096}]}
    api = native({"/v1/models": listing, "/api/ps": running})
    assert window_of(f"{api.root}/v1", "qwen3:8b", api.listing(), api.fetch) == 4096


def test_lm_studio_says_the_loaded_context_length(native):
    listing = models({"id": "qwen3-8b", "owned_by": "organization_owner"})
    info = {"id": "qwen3-8b", "max_context_length": 32768, "loaded_context_length": 8192}
    api = native({"/v1/models": listing, "/api/v0/models/qwen3-8b": info})
    assert window_of(f"{api.root}/v1", "qwen3-8b", api.listing(), api.fetch) == 8192


@pytest.mark.parametrize(
    "listing",
    [
        models({"id": "m", "owned_by": "someone"}),  # a server that does not say
        models({"id": "m", "max_model_len": "32768"}),  # a string is not a count
        models({"id": "m", "max_model_len": True}),
        models({"id": "m", "max_model_len": 10**12}),  # not a window anyone has
        {"data": "nonsense"},
        None,
    ],
)
def test_a_server_that_does_not_say_leaves_the_window_unknown(native, listing):
    api = native({})
    assert window_of(f"{api.root}/v1", "m", listing, api.fetch) is None
    assert api.asked == []


def test_a_native_api_that_fails_leaves_the_window_unknown(native):
    listing = models({"id": "model.gguf", "owned_by": "llamacpp"})
    api = native({"/v1/models": listing})  # /props answers 404
    assert window_of(f"{api.root}/v1", "model.gguf", api.listing(), api.fetch) is None


OPENAI = {
    "error": {
        "message": "This model's maximum context length is 8192 tokens. However, your messages resulted in 9000 "
        "tokens. Please reduce the length of the messages.",
        "type": "invalid_request_error",
        "param": "messages",
        "code": "context_length_exceeded",
    }
}
VLLM = {
    "object": "error",
    "message": "This model's maximum context length is 6000 tokens. However, you requested 7000 tokens (6500 in "
    "the messages, 500 in the completion). Please reduce the length of the messages or completion.",
    "type": "BadRequestError",
    "param": "input_tokens",
    "code": 400,
}
LLAMA_SERVER = {
    "error": {
        "code": 400,
        "message": "the request exceeds the available context size, try increasing it",
        "type": "exceed_context_size_error",
        "n_prompt_tokens": 7012,
        "n_ctx": 4096,
    }
}


@pytest.mark.parametrize(
    "body, expected",
    [
        (OPENAI, Overflow(8192, 9000)),
        (VLLM, Overflow(6000, 6500)),
        (LLAMA_SERVER, Overflow(4096, 7012)),
        ({"error": {"message": "prompt is too long: 9120 tokens > 8192 maximum"}}, Overflow(8192, 9120)),
        (
            {"message": "Prompt contains 40000 tokens, too large for model with 32768 maximum context length"},
            Overflow(32768, 40000),
        ),
        ({"error": {"message": "context length exceeded"}}, Overflow(None, None)),
    ],
    ids=["openai", "vllm", "llama-server", "prompt-too-long", "mistral-words", "words-only"],
)
def test_an_overflow_is_recognised_in_every_shape_with_its_numbers(body, expected):
    assert recognise(body) == expected


@pytest.mark.parametrize(
    "body",
    [
        {"error": {"message": "Invalid API key", "code": "invalid_api_key"}},
        {"error": {"message": "max_tokens must be at least 1", "type": "invalid_request_error"}},
        {"error": "model not found"},
        None,
        "plain text",
    ],
)
def test_other_refusals_are_not_an_overflow(body):
    assert recognise(body) is None
