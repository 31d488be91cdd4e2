"""Every default in one place: config, flags, the engine and the tool runner read them here."""

from __future__ import annotations

TOOL_TIMEOUT = 60.0  # seconds a tool call may run
TOOL_PARALLEL = 4  # approved calls of one reply that run at once (tools.parallel)
MAX_OUTPUT_CHARS = 20_000  # a tool result is cut to this many characters
MAX_ROUNDS = 10  # model calls in one turn
REQUEST_TIMEOUT = 120.0  # the longest silence from an OpenAI-compatible server
RESPONSE_TIMEOUT = 600.0  # the longest one model call may take in all
MAX_RETRIES = 2  # the SDK's retries of 429, 5xx and failed connections
MAX_TOKENS = 2**31 - 1  # the largest max_tokens asked for: servers read it into a 32-bit int (llama.cpp, vLLM)
OPENAI_MODEL = "gpt-4o-mini"  # OpenAI itself, when no model is named
LOCAL_MODEL = "bundled"
LOCAL_TEMPERATURE = 0.3  # the local backend's sampling temperature when none is set
LOCAL_MAX_TOKENS = 512  # the local backend's answer length when none is set
MCP_STARTUP_TIMEOUT = 30.0
MAX_PRINTED_BYTES = 4_000_000  # a tool printing more is stopped ("its output was too large")
PLUGIN_IMPORT_TIMEOUT = 10.0  # seconds a plugin module may take to import for discovery
