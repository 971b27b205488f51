"""Subcommands of `python -m scoreboard`, one module each."""
