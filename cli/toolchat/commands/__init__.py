"""The command line: Typer commands and options, one module per command group."""
