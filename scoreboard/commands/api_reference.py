"""`api-reference`: print docs/api.md, the HTTP API reference, from the endpoint declarations."""

from __future__ import annotations

import argparse

from scoreboard.api.reference import api_reference
from scoreboard.config import Settings


def add_parser(commands: argparse._SubParsersAction) -> None:
    command = commands.add_parser(
        "api-reference", help="print the HTTP API reference (docs/api.md) in Markdown"
    )
    # The reference documents the defaults, not this environment's values.
    command.set_defaults(run=run, reads_settings=False)


def run(args: argparse.Namespace) -> int:
    print(api_reference(Settings()), end="")
    return 0
