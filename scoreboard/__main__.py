"""Command line: `python -m scoreboard {token,migrate,rebuild,config-table,api-reference}`."""

from __future__ import annotations

import argparse
import sys

from scoreboard.commands import api_reference, config_table, ledger, token
from scoreboard.config import Settings
from scoreboard.errors import ConfigError
from scoreboard.ops.logs import configure_logging


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m scoreboard")
    # A command that sets reads_settings=False runs with the arguments alone.
    parser.set_defaults(reads_settings=True)
    commands = parser.add_subparsers(dest="command", required=True)
    token.add_parser(commands)
    ledger.add_parsers(commands)
    config_table.add_parser(commands)
    api_reference.add_parser(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
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


if __name__ == "__main__":
    sys.exit(main())
