"""Backends: the protocol, the OpenAI-compatible client and the in-process llama.cpp runner."""
