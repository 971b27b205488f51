"""`token`: print a token signed with JWT_SECRET, for development and demos."""

from __future__ import annotations

import argparse
import re
import sys

from scoreboard.config import Settings
from scoreboard.intake.auth import issue_token

_DURATION = re.compile(r"^(\d+)([smhd]?)$")
_UNIT_SECONDS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(text: str) -> int:
    """'90', '90s', '15m', '1h' or '7d' in seconds."""
    match = _DURATION.match(text.strip())
    if not match or int(match.group(1)) == 0:
        raise argparse.ArgumentTypeError(f"not a duration like 15m, 1h or 7d: {text!r}")
    return int(match.group(1)) * _UNIT_SECONDS[match.group(2)]


def add_parser(commands: argparse._SubParsersAction) -> None:
    token = commands.add_parser("token", help="print a token signed with JWT_SECRET")
    token.add_argument("--sub", required=True, help="the user id the token speaks for")
    token.add_argument("--name", help="the name shown on the board")
    token.add_argument("--tier", help="the user's tier, e.g. premium (rate limit, priority)")
    token.add_argument("--role", choices=["admin"], help="admin: may use /api/admin")
    token.add_argument(
        "--ttl", type=parse_duration, default=3600, help="lifetime, e.g. 15m, 1h, 7d"
    )
    token.set_defaults(run=run)


def run(args: argparse.Namespace, settings: Settings) -> int:
    if settings.jwt_secret_generated:
        print(
            "JWT_SECRET is not set: a token signed with a random secret would be useless",
            file=sys.stderr,
        )
        return 2
    extra = {claim: value for claim, value in (("tier", args.tier), ("role", args.role)) if value}
    print(issue_token(settings.jwt_secret.value, args.sub, args.name, args.ttl, extra))
    return 0
