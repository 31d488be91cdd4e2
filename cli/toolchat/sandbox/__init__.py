"""The sandbox a tool call runs in: a policy (what a tool may write, whether it may connect) and
the one way of enforcing it on this system (Landlock on Linux, see landlock.py). The tool worker's
child applies it after fork and before the tool's code runs; the MCP launcher before it execs a
server. Nothing heavy is imported here: it runs in every call's child."""
