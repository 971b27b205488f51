"""Command line: `python -m scoreboard {token,migrate,rebuild,api-reference}`."""

from __future__ import annotations

import argparse
import sys

from scoreboard.commands import api_reference, ledger, token
from scoreboard.config import Settings
from scoreboard.errors import ConfigError
from scoreboard.ops.logs import configure_logging


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m scoreboard")
    commands = parser.add_subparsers(dest="command", required=True)
    token.add_parser(commands)
    ledger.add_parsers(commands)
    api_reference.add_parser(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
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
