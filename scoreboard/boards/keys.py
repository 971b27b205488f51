"""Where a board's data lives in Redis: one key prefix per board and season.

`global` keeps the deployment's own prefix, so its keys are those of a deployment from before
boards existed. Every other board's season n lives under `<prefix>boards:<id>:s<n>:`.
"""

from __future__ import annotations

from scoreboard.boards.model import GLOBAL_BOARD_ID


def season_prefix(prefix: str, board_id: str, season: int) -> str:
    """The key prefix of one season of one board (what RedisLeaderboardStore takes)."""
    if board_id == GLOBAL_BOARD_ID:
        return prefix
    return f"{prefix}boards:{board_id}:s{season}:"


def board_prefix(prefix: str, board_id: str) -> str:
    """The prefix of everything a board other than `global` keeps: every season, its counter."""
    return f"{prefix}boards:{board_id}:"


def current_season_key(prefix: str, board_id: str) -> str:
    """The number of the board's live season (absent: 1, or, with a ledger, lost with Redis)."""
    return f"{board_prefix(prefix, board_id)}season"


# Under a season's prefix: the season's keys match the ledger. Set when a season starts empty
# and when it is rebuilt from the ledger; a Redis that lost the season lost it too.
IN_SYNC_KEY = "ledger-synced"
