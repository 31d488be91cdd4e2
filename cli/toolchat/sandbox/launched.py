"""The sandbox of an MCP stdio server, applied by its launcher to itself before it starts the server
(so it holds for the server and all it starts): writes only in its working folder, its own
temporary folder (TMPDIR, made and removed by toolchat, which outlives both) and the usual devices;
TCP only when allowed. Runs in a bare interpreter (`python -S -E`): only the standard library and
landlock.py."""

from __future__ import annotations

import os
import sys

from toolchat.sandbox.policy import Policy, confine


def confine_server(tcp: bool, tmpdir: str) -> None:
    why = confine(Policy(network=tcp), os.getcwd(), tmpdir)
    if why is not None:  # said in the server's log (`toolchat mcp logs`); never silent
        print(f"toolchat: this server runs unconfined: {why}", file=sys.stderr, flush=True)
