"""`toolchat serve` on the local backend (the bundled model): one Llama answers one request at a
time; others wait in a bounded queue, and beyond it the client is told to come back later."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor

from tests.support.serving import Served, post


def test_the_local_model_answers_one_at_a_time_and_a_full_queue_is_a_429(isolated_env, shared_cache, tmp_path):
    args = ["--backend", "local", "--model", "bundled", "--no-tools", "--max-queue", "2"]
    with Served(args, isolated_env, tmp_path) as served:
        body = {
            "model": "toolchat",
            "messages": [{"role": "user", "content": "Say hello."}],
            "max_tokens": 24,
            "temperature": 0,
        }
        with ThreadPoolExecutor(6) as pool:
            results = list(pool.map(lambda _: post(f"{served.url}/chat/completions", body, timeout=120), range(6)))
        answered = [json.loads(raw) for status, _, raw in results if status == 200]
        refused = [(headers, json.loads(raw)) for status, headers, raw in results if status == 429]
        # one running and two queued are answered; the rest refused (a fast first answer may free a place)
        assert len(answered) >= 3 and len(refused) >= 2 and len(answered) + len(refused) == 6, [r[0] for r in results]
        assert all(a["choices"][0]["message"]["content"].strip() for a in answered)
        assert all(h["Retry-After"].isdigit() and e["error"]["code"] == "queue_full" for h, e in refused)
        status, _, raw = post(f"{served.url}/chat/completions", body, timeout=120)  # the queue drained
        assert status == 200, raw
