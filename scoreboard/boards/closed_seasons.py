"""Closed seasons: a board's final standings at the end of each season, the newest few kept.

Kept in PostgreSQL with a ledger (scoreboard/apply/ledger/closed_seasons.py), else in Redis (the
season's rows stay under its keys), or in memory in the single process.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

import redis.asyncio as redis

from scoreboard.apply.store.memory_store import MemoryLeaderboardStore
from scoreboard.apply.store.rankings import BoardPage, RankedEntry
from scoreboard.apply.store.redis_store import RedisLeaderboardStore
from scoreboard.boards.contents import remove_keys_under
from scoreboard.boards.keys import board_prefix, season_prefix
from scoreboard.boards.model import Board
from scoreboard.boards.seasons import SeasonEnd
from scoreboard.redis_errors import redis_errors_as_unavailable


@dataclass(frozen=True)
class ClosedSeason:
    number: int
    started_at: datetime | None
    ended_at: datetime
    entries: int  # users ranked
    version: int  # of its top 10 when it closed


class ClosedSeasons(Protocol):
    async def keep(self, board: Board, end: SeasonEnd, kept: int) -> bool:
        """Archive the season from its live store, once however many callers race; drop what
        only a live season needs; keep the newest `kept` seasons of the board. True when this
        call archived it."""
        ...

    async def listed(self, board_id: str) -> list[ClosedSeason]:
        """The board's closed seasons, newest first."""
        ...

    async def page(self, board: Board, season: int, offset: int, limit: int) -> BoardPage | None:
        """Rows of a closed season from rank `offset + 1`; None when it is not a closed season."""
        ...

    async def forget(self, board_id: str) -> None:
        """The board is removed: its closed seasons go too (a board made again under its id
        starts from season 1)."""
        ...


class RedisClosedSeasons:
    """The rows of a closed season stay under its keys; a hash per board describes each one."""

    def __init__(self, client: redis.Redis, prefix: str, store: RedisLeaderboardStore) -> None:
        self._client = client
        self._prefix = prefix
        self._store = store

    async def keep(self, board: Board, end: SeasonEnd, kept: int) -> bool:
        started = "" if end.started_at is None else end.started_at.isoformat()
        season = self._store.for_board(board, end.number)
        closed_key = self._key(board.board_id)
        archived = await season.keep_in_place(closed_key, started, end.ended_at.isoformat())
        async with redis_errors_as_unavailable():
            numbers = sorted((int(n) for n in await self._client.hkeys(closed_key)), reverse=True)
            for old in numbers[kept:]:
                await self._client.hdel(closed_key, str(old))
        for old in numbers[kept:]:
            await remove_keys_under(self._client, season_prefix(self._prefix, board.board_id, old))
        return archived

    async def listed(self, board_id: str) -> list[ClosedSeason]:
        async with redis_errors_as_unavailable():
            described = await self._client.hgetall(self._key(board_id))
        seasons = [_described(int(n), json.loads(raw)) for n, raw in described.items()]
        return sorted(seasons, key=lambda s: s.number, reverse=True)

    async def page(self, board: Board, season: int, offset: int, limit: int) -> BoardPage | None:
        async with redis_errors_as_unavailable():
            if not await self._client.hexists(self._key(board.board_id), str(season)):
                return None
        return await self._store.for_board(board, season).board_page(offset, limit)

    async def forget(self, board_id: str) -> None:
        pass  # under the board's prefix: removed with its keys

    def _key(self, board_id: str) -> str:
        return f"{board_prefix(self._prefix, board_id)}closed"


def _described(number: int, fields: dict[str, object]) -> ClosedSeason:
    started, ended = fields["startedAt"], fields["endedAt"]
    assert isinstance(ended, str) and isinstance(started, str)
    return ClosedSeason(
        number,
        datetime.fromisoformat(started) if started else None,
        datetime.fromisoformat(ended),
        int(str(fields["entries"])),
        int(str(fields["version"])),
    )


class MemoryClosedSeasons:
    """The single process's closed seasons, their rows copied out of its store."""

    def __init__(self, store: MemoryLeaderboardStore) -> None:
        self._store = store
        self._closed: dict[str, dict[int, tuple[ClosedSeason, tuple[RankedEntry, ...]]]] = {}

    async def keep(self, board: Board, end: SeasonEnd, kept: int) -> bool:
        closed = self._closed.setdefault(board.board_id, {})
        if end.number in closed:
            return False
        season = self._store.for_board(board, end.number)
        rows = (await season.board_page(0, season.user_count())).entries
        version = (await season.leaderboard()).version
        described = ClosedSeason(end.number, end.started_at, end.ended_at, len(rows), version)
        closed[end.number] = (described, rows)
        self._store.drop_season(board.board_id, end.number)
        for old in sorted(closed, reverse=True)[kept:]:
            del closed[old]
        return True

    async def listed(self, board_id: str) -> list[ClosedSeason]:
        closed = self._closed.get(board_id, {})
        return [closed[n][0] for n in sorted(closed, reverse=True)]

    async def page(self, board: Board, season: int, offset: int, limit: int) -> BoardPage | None:
        found = self._closed.get(board.board_id, {}).get(season)
        if found is None:
            return None
        described, rows = found
        return BoardPage(described.version, described.entries, rows[offset : offset + limit])

    async def forget(self, board_id: str) -> None:
        self._closed.pop(board_id, None)
