"""The terminal layer: the REPL, its slash commands, approval, display and rendering."""
