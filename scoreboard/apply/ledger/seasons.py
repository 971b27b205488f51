"""Seasons kept in Redis and recorded in PostgreSQL, so that Redis can lose them.

Redis decides (the live number is what reserve.lua reads, the move a compare-and-set there);
PostgreSQL records each season's start and end once Redis has them (`board_seasons`). A board
whose live number Redis lost gets it back on the first read, from the latest of three records:
`board_seasons`, the ledger's values (`board_scores`: a season an update was recorded in) and
the closed seasons (`closed_seasons`: the one after the last archived).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import UTC, datetime

from scoreboard.apply.ledger.postgres import PostgresLedger, postgres_errors_as_unavailable
from scoreboard.boards.seasons import (
    FIRST_SEASON,
    RedisSeasons,
    Season,
    SeasonEnd,
    SeasonsRecord,
)
from scoreboard.errors import LedgerUnavailable

log = logging.getLogger(__name__)


class LedgerSeasons:
    """Seasons (the protocol of scoreboard/boards/seasons.py) with PostgreSQL behind Redis."""

    def __init__(self, ledger: PostgresLedger, seasons: RedisSeasons) -> None:
        self._ledger = ledger
        self._redis = seasons

    async def current(self, board_id: str) -> Season:
        [season] = await self._live([board_id])
        return season

    async def numbers(self, board_ids: Sequence[str]) -> list[int]:
        return [season.number for season in await self._live(board_ids)]

    async def _live(self, board_ids: Sequence[str]) -> list[Season]:
        seasons = await self._redis.read(board_ids)
        return [
            await self._restore(board_id) if season is None else season
            for board_id, season in zip(board_ids, seasons, strict=True)
        ]

    async def _restore(self, board_id: str) -> Season:
        record = await self.recorded(board_id)
        if await self._redis.restore(board_id, record):
            log.info(
                "board %s: live season %d restored from PostgreSQL (%d ended, not archived yet)",
                board_id,
                record.live.number,
                len(record.closing),
            )
        return await self._redis.current(board_id)

    async def begin(self, board_id: str, at: datetime) -> None:
        await self._redis.begin(board_id, at)
        live = await self.current(board_id)
        await self._record_start(board_id, live.number, live.started_at or at, replace=False)

    async def create(self, board_id: str, at: datetime) -> None:
        await self._redis.create(board_id, at)
        await self._record_start(board_id, FIRST_SEASON, at, replace=True)

    async def _record_start(self, board_id: str, season: int, at: datetime, replace: bool) -> None:
        started = (
            "EXCLUDED.started_at" if replace else "coalesce(s.started_at, EXCLUDED.started_at)"
        )
        async with postgres_errors_as_unavailable():
            await self._ledger.pool.execute(
                f"""INSERT INTO board_seasons AS s (board_id, season, started_at)
                    VALUES ($1, $2, $3)
                    ON CONFLICT (board_id, season) DO UPDATE SET started_at = {started}""",
                board_id,
                season,
                at,
            )

    async def forget(self, board_id: str) -> None:
        await self._redis.forget(board_id)
        # The ledger's running values go too (its entries, the board's history, stay): a board
        # made again under this id starts from season 1 with no values.
        async with postgres_errors_as_unavailable(), self._ledger.pool.acquire() as connection:
            async with connection.transaction():
                await connection.execute("DELETE FROM board_seasons WHERE board_id = $1", board_id)
                await connection.execute("DELETE FROM board_scores WHERE board_id = $1", board_id)

    async def move(
        self, board_id: str, season: int, ended_at: datetime, next_starts_at: datetime
    ) -> int | None:
        version = await self._redis.move(board_id, season, ended_at, next_starts_at)
        if version is not None:
            try:
                await self._record_move(board_id, season, ended_at, next_starts_at)
            except LedgerUnavailable:
                # The move stands (Redis decides); only a Redis lost before the next one would
                # miss it, and then the ledger's values still tell the season once it has any.
                log.warning(
                    "board %s: season %d started but PostgreSQL could not record it",
                    board_id,
                    season + 1,
                )
        return version

    async def _record_move(
        self, board_id: str, season: int, ended_at: datetime, next_starts_at: datetime
    ) -> None:
        async with postgres_errors_as_unavailable(), self._ledger.pool.acquire() as connection:
            async with connection.transaction():
                await connection.execute(
                    """INSERT INTO board_seasons (board_id, season, started_at, ended_at)
                       VALUES ($1, $2, NULL, $3)
                       ON CONFLICT (board_id, season) DO UPDATE SET ended_at = EXCLUDED.ended_at""",
                    board_id,
                    season,
                    ended_at,
                )
                await connection.execute(
                    """INSERT INTO board_seasons (board_id, season, started_at) VALUES ($1, $2, $3)
                       ON CONFLICT (board_id, season) DO UPDATE SET started_at = $3""",
                    board_id,
                    season + 1,
                    next_starts_at,
                )

    async def pending(self, board_id: str, season: int) -> int | None:
        return await self._redis.pending(board_id, season)

    async def ended(self, board_id: str, season: int) -> SeasonEnd | None:
        return await self._redis.ended(board_id, season)

    async def archived(self, board_id: str) -> int:
        return await self._redis.archived(board_id)

    async def mark_archived(self, board_id: str, season: int) -> None:
        await self._redis.mark_archived(board_id, season)

    async def archived_in_ledger(self, board_id: str) -> int:
        """The highest season of the board archived in PostgreSQL (0: none): seasons are
        archived in order, so every season up to it is closed."""
        async with postgres_errors_as_unavailable():
            return int(
                await self._ledger.pool.fetchval(
                    "SELECT coalesce(max(season), 0) FROM closed_seasons WHERE board_id = $1",
                    board_id,
                )
            )

    async def recorded(self, board_id: str) -> SeasonsRecord:
        """The board's seasons as PostgreSQL knows them."""
        async with postgres_errors_as_unavailable(), self._ledger.pool.acquire() as connection:
            latest = await connection.fetchrow(
                """SELECT (SELECT max(season) FROM board_seasons WHERE board_id = $1) AS recorded,
                          (SELECT max(season) FROM board_scores WHERE board_id = $1) AS scored,
                          (SELECT max(season) FROM closed_seasons WHERE board_id = $1) AS closed""",
                board_id,
            )
            archived = latest["closed"] or 0
            live = max(latest["recorded"] or FIRST_SEASON, latest["scored"] or FIRST_SEASON)
            live = max(live, archived + 1)
            rows = await connection.fetch(
                """SELECT season, started_at, ended_at FROM board_seasons
                   WHERE board_id = $1 AND season > $2""",
                board_id,
                archived,
            )
        times = {row["season"]: (row["started_at"], row["ended_at"]) for row in rows}
        closing = []
        for number in range(archived + 1, live):
            started, ended = times.get(number, (None, None))
            # Not recorded: it ended when the next one started, or, not known either, now.
            ended = ended or times.get(number + 1, (None, None))[0] or datetime.now(UTC)
            closing.append(SeasonEnd(board_id, number, started, ended))
        return SeasonsRecord(
            Season(live, times.get(live, (None, None))[0]), archived, tuple(closing)
        )
