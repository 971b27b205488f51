"""What readers see of the board: ranked rows, a page of them, and one user's place."""

from __future__ import annotations

from collections.abc import Iterable

from scoreboard.api.models import BoardPage, RankedEntry, UserRank

__all__ = ["BoardPage", "RankedEntry", "UserRank", "ranked", "user_rank_around"]


def ranked(rows: Iterable[tuple[str, str, int]], first_rank: int) -> tuple[RankedEntry, ...]:
    """Number consecutive (userId, username, score) rows from `first_rank` on."""
    return tuple(
        RankedEntry(rank, user, name, score)
        for rank, (user, name, score) in enumerate(rows, start=first_rank)
    )


def user_rank_around(
    version: int, total: int, window: tuple[RankedEntry, ...], user_id: str
) -> UserRank:
    """Split a window of consecutive rows at `user_id`'s row."""
    index = next(i for i, entry in enumerate(window) if entry.user_id == user_id)
    return UserRank(version, total, window[index], window[:index], window[index + 1 :])
