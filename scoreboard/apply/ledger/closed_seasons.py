"""Closed seasons in PostgreSQL, beside the ledger: read out of Redis once, then off Redis."""

from __future__ import annotations

import redis.asyncio as redis

from scoreboard.apply.ledger.postgres import PostgresLedger, postgres_errors_as_unavailable
from scoreboard.apply.ledger.rebuild import rebuild_holding_lock
from scoreboard.apply.store.rankings import BoardPage, ranked
from scoreboard.apply.store.redis_store import RedisLeaderboardStore
from scoreboard.boards.closed_seasons import ClosedSeason
from scoreboard.boards.contents import remove_keys_under
from scoreboard.boards.keys import season_prefix
from scoreboard.boards.model import Board
from scoreboard.boards.seasons import SeasonEnd


class PostgresClosedSeasons:
    def __init__(
        self, ledger: PostgresLedger, client: redis.Redis, prefix: str, store: RedisLeaderboardStore
    ) -> None:
        self._ledger = ledger
        self._client = client
        self._prefix = prefix
        self._store = store

    async def keep(self, board: Board, end: SeasonEnd, kept: int) -> bool:
        season = self._store.for_board(board, end.number)
        archived = False
        if not await self._contains(board.board_id, end.number):
            # One archiver at a time, so a season Redis lost since it ended comes back from
            # the ledger once, before its standings are read.
            async with season.rebuild_lock():
                if not await self._contains(board.board_id, end.number):
                    await rebuild_holding_lock(self._ledger, season)
                    archived = await self._insert(board.board_id, end, season, kept)
        # Its rows are in PostgreSQL now: every key of the season goes.
        prefix = season_prefix(self._prefix, board.board_id, end.number)
        await remove_keys_under(self._client, prefix)
        return archived

    async def _insert(
        self, board_id: str, end: SeasonEnd, season: RedisLeaderboardStore, kept: int
    ) -> bool:
        standings = await season.standings()  # in rank order
        version = (await season.leaderboard()).version
        rows = [
            (board_id, end.number, rank, s.user_id, s.username, s.score)
            for rank, s in enumerate(standings, start=1)
        ]
        async with postgres_errors_as_unavailable(), self._ledger.pool.acquire() as connection:
            async with connection.transaction():
                inserted = await connection.fetchval(
                    """INSERT INTO closed_seasons
                           (board_id, season, started_at, ended_at, entries, version)
                       VALUES ($1, $2, $3, $4, $5, $6)
                       ON CONFLICT DO NOTHING RETURNING season""",
                    board_id,
                    end.number,
                    end.started_at,
                    end.ended_at,
                    len(rows),
                    version,
                )
                if inserted is None:  # another worker archived it meanwhile
                    return False
                await connection.copy_records_to_table("closed_season_entries", records=rows)
                await connection.execute(
                    """DELETE FROM closed_seasons WHERE board_id = $1 AND season NOT IN (
                           SELECT season FROM closed_seasons WHERE board_id = $1
                           ORDER BY season DESC LIMIT $2)""",
                    board_id,
                    kept,
                )
        return True

    async def _contains(self, board_id: str, season: int) -> bool:
        async with postgres_errors_as_unavailable():
            found = await self._ledger.pool.fetchval(
                "SELECT 1 FROM closed_seasons WHERE board_id = $1 AND season = $2",
                board_id,
                season,
            )
        return found is not None

    async def listed(self, board_id: str) -> list[ClosedSeason]:
        async with postgres_errors_as_unavailable():
            rows = await self._ledger.pool.fetch(
                """SELECT season, started_at, ended_at, entries, version FROM closed_seasons
                   WHERE board_id = $1 ORDER BY season DESC""",
                board_id,
            )
        return [ClosedSeason(*row.values()) for row in rows]

    async def forget(self, board_id: str) -> None:
        async with postgres_errors_as_unavailable():
            await self._ledger.pool.execute(
                "DELETE FROM closed_seasons WHERE board_id = $1", board_id
            )

    async def page(self, board: Board, season: int, offset: int, limit: int) -> BoardPage | None:
        async with postgres_errors_as_unavailable(), self._ledger.pool.acquire() as connection:
            described = await connection.fetchrow(
                "SELECT entries, version FROM closed_seasons WHERE board_id = $1 AND season = $2",
                board.board_id,
                season,
            )
            if described is None:
                return None
            rows = await connection.fetch(
                """SELECT user_id, username, score FROM closed_season_entries
                   WHERE board_id = $1 AND season = $2 AND rank > $3::bigint
                   ORDER BY rank LIMIT $4""",
                board.board_id,
                season,
                offset,
                limit,
            )
        entries = ranked(((r["user_id"], r["username"], r["score"]) for r in rows), offset + 1)
        return BoardPage(described["version"], described["entries"], entries)
