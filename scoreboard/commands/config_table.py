"""`config-table`: print docs/configuration.md, generated from the variables' declarations."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from scoreboard.config import VARIABLES
from scoreboard.config.variable import Variable

COMMAND = "python -m scoreboard config-table > docs/configuration.md"
INTRO = (
    "The web and worker processes read these environment variables once, at start-up. An empty "
    "value counts as unset; any other value is read as written, spaces included, and must be "
    "what its row says (numbers in plain ASCII digits). A malformed value, or a combination the "
    "rows rule out, stops the process with `configuration error: <VARIABLE> …` and no traceback."
)


def add_parser(commands: argparse._SubParsersAction) -> None:
    commands.add_parser(
        "config-table", help="print docs/configuration.md: every environment variable"
    ).set_defaults(run=run, reads_settings=False)


def run(args: argparse.Namespace) -> int:
    # Bytes: the page is UTF-8 whatever the terminal's locale says.
    sys.stdout.buffer.write(page().encode())
    return 0


def page() -> str:
    """docs/configuration.md: a title, the intro and one row per declared variable."""
    lines = [
        "# Configuration",
        "",
        f"<!-- Generated from scoreboard/config/variables.py by `{COMMAND}`. -->",
        "",
        INTRO,
        "",
        "| Variable | Default | Value | Meaning |",
        "|---|---|---|---|",
        *(row(variable) for variable in VARIABLES),
    ]
    return "\n".join(lines) + "\n"


def row(variable: Variable[Any]) -> str:
    written = variable.written_default
    cells = (
        f"`{variable.name}`",
        "unset" if written is None else f"`{written}`",
        variable.kind.description,
        variable.meaning,
    )
    return "| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |"
