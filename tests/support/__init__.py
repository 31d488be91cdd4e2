"""What tests and benchmarks share: loopback servers that stream like the real ones and misbehave
like hostile ones (fakeserver, echoserver), `toolchat serve` as a subprocess (serving), real MCP
servers (mcp_helpers), a scripted backend (fakes), the REPL in a real pseudo-terminal with an
emulated screen (terminal), and free loopback ports (ports).

Imported as `tests.support.<module>` from the repository root (pytest puts it on the path; the
benchmarks' run.py does once). Fixtures live in tests/conftest.py, never here: pytest finds them
there, and no test module imports another."""
