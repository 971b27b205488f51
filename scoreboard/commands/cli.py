"""The command line, one entry point for `scoreboard …` and `python -m scoreboard …`."""

from __future__ import annotations

import argparse
import sys

from scoreboard.commands import (
    api_reference,
    config_table,
    healthcheck,
    ledger,
    processes,
    token,
)
from scoreboard.config import Settings
from scoreboard.errors import ConfigError
from scoreboard.ops.logs import configure_logging

CONSOLE_COMMAND = "scoreboard"  # [project.scripts] in pyproject.toml


def build_parser(prog: str = CONSOLE_COMMAND) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=prog, description="Real-time leaderboard service: processes and tools."
    )
    # A command that sets reads_settings=False runs with the arguments alone.
    parser.set_defaults(reads_settings=True)
    commands = parser.add_subparsers(dest="command", required=True, metavar="command")
    processes.add_parsers(commands)
    healthcheck.add_parser(commands)
    ledger.add_parsers(commands)
    token.add_parser(commands)
    config_table.add_parser(commands)
    api_reference.add_parser(commands)
    return parser


def main(argv: list[str] | None = None, prog: str = CONSOLE_COMMAND) -> int:
    args = build_parser(prog).parse_args(argv)
    if not args.reads_settings:
        done: int = args.run(args)
        return done
    try:
        settings = Settings.from_env()
    except ConfigError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return 2
    configure_logging("WARNING")
    code: int = args.run(args, settings)
    return code
