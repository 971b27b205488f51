"""What readers see of the board: ranked rows, a page of them, and one user's place."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class RankedEntry:
    """One row of the board with its 1-based rank."""

    rank: int
    user_id: str
    username: str
    score: int

    def to_json(self) -> dict[str, Any]:
        return {
            "rank": self.rank,
            "userId": self.user_id,
            "username": self.username,
            "score": self.score,
        }


def ranked(rows: Iterable[tuple[str, str, int]], first_rank: int) -> tuple[RankedEntry, ...]:
    """Number consecutive (userId, username, score) rows from `first_rank` on."""
    return tuple(
        RankedEntry(rank, user, name, score)
        for rank, (user, name, score) in enumerate(rows, start=first_rank)
    )


@dataclass(frozen=True)
class BoardPage:
    """Consecutive rows of the board, read together with its version and size."""

    version: int  # the version of the top 10 at the moment of the read
    total: int  # users on the board
    entries: tuple[RankedEntry, ...]

    def to_json(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "total": self.total,
            "entries": [entry.to_json() for entry in self.entries],
        }


@dataclass(frozen=True)
class UserRank:
    """A user's row and up to N neighbours on each side, read at one moment."""

    version: int
    total: int
    user: RankedEntry
    above: tuple[RankedEntry, ...]  # better ranked, best first
    below: tuple[RankedEntry, ...]  # worse ranked, best first

    @classmethod
    def around(
        cls, version: int, total: int, window: tuple[RankedEntry, ...], user_id: str
    ) -> UserRank:
        """Split a window of consecutive rows at `user_id`'s row."""
        index = next(i for i, entry in enumerate(window) if entry.user_id == user_id)
        return cls(version, total, window[index], window[:index], window[index + 1 :])

    def to_json(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "total": self.total,
            "user": self.user.to_json(),
            "above": [entry.to_json() for entry in self.above],
            "below": [entry.to_json() for entry in self.below],
        }
