"""toolchat: a terminal chat REPL for tool-calling language models."""

__version__ = "0.1.0"
