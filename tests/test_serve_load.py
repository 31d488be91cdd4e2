"""`toolchat serve` under load: 50 streamed requests at once through a real server to a loopback
upstream that echoes each request; every client gets its whole answer and only its own."""

from __future__ import annotations

import asyncio
import json
import urllib.request

from tests.support.echoserver import EchoUpstream, burst
from tests.support.serving import Served


def test_fifty_concurrent_streams_all_complete_and_none_mixed(isolated_env, tmp_path):
    upstream = EchoUpstream()
    try:
        with Served(["--base-url", upstream.url, "--no-tools"], isolated_env, tmp_path) as served:
            results = asyncio.run(burst(served.url, 50))
            assert len(results) == 50 and all(own for _, own in results)
            with urllib.request.urlopen(f"{served.root}/health") as response:
                assert json.loads(response.read())["running"] == 0
    finally:
        upstream.close()
