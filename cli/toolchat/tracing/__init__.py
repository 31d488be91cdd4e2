"""Tracing: switched on and off, set up, spans, and reading trace files."""
