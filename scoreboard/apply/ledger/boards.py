"""The boards in PostgreSQL beside the ledger, the source of truth; Redis keeps the copy nodes read.

Each change is written to PostgreSQL and to the copy under one advisory lock, inside the
transaction (a copy that cannot be written leaves PostgreSQL unchanged). A Redis that lost the
copy lost its mark of completeness too: the next node to read the boards copies them back, under
the same lock, adopting on the way any board only Redis knows (made before the ledger kept boards).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager

import asyncpg

from scoreboard.apply.ledger.postgres import PostgresLedger, postgres_errors_as_unavailable
from scoreboard.boards.model import Board
from scoreboard.boards.registry import RedisBoardStorage
from scoreboard.errors import LedgerUnavailable
from scoreboard.ops.log_throttle import LogThrottle

log = logging.getLogger(__name__)

# Any constant works; it only has to be the same for every process of the deployment.
_BOARDS_LOCK = 0x5C0AEB0A4E
FALLBACK_LOG_SECONDS = 60.0
_INSERT = """INSERT INTO boards (board_id, name, operator, ranking, reset, authoritative)
             VALUES ($1, $2, $3, $4, $5, $6)"""


class LedgerBoardStorage:
    """BoardStorage in PostgreSQL, written through to its copy in Redis."""

    def __init__(self, ledger: PostgresLedger, copy: RedisBoardStorage) -> None:
        self._ledger = ledger
        self._copy = copy
        self._fallbacks = LogThrottle(FALLBACK_LOG_SECONDS)

    async def load(self) -> dict[str, Board]:
        boards = await self._copy.load_complete()
        if boards is not None:
            return boards
        try:
            async with self._locked() as connection:
                boards = await self._copy.load_complete()  # copied back while this node waited?
                if boards is None:
                    boards = await self._restore(connection)
        except LedgerUnavailable:
            # A copy never marked complete (no worker has migrated PostgreSQL for this version
            # yet) is served as it is; an empty one may be a Redis that lost it: 503.
            boards = await self._copy.load()
            if not boards:
                raise
            if (unlogged := self._fallbacks.admit()) is not None:
                log.warning(
                    "PostgreSQL did not answer: serving the %d boards Redis holds (%d times since)",
                    len(boards),
                    unlogged,
                )
        return boards

    async def save(self, board: Board) -> None:
        async with self._locked() as connection:
            await connection.execute(
                f"""{_INSERT} ON CONFLICT (board_id) DO UPDATE SET
                        name = EXCLUDED.name, operator = EXCLUDED.operator,
                        ranking = EXCLUDED.ranking, reset = EXCLUDED.reset,
                        authoritative = EXCLUDED.authoritative""",
                *_row(board),
            )
            await self._copy.save(board)

    async def delete(self, board_id: str) -> bool:
        async with self._locked() as connection:
            deleted = await connection.fetchval(
                "DELETE FROM boards WHERE board_id = $1 RETURNING board_id", board_id
            )
            await self._copy.delete(board_id)
        return deleted is not None

    async def _restore(self, connection: asyncpg.Connection) -> dict[str, Board]:
        only_in_redis = (await self._copy.load()).values()
        await _adopt(connection, only_in_redis)
        rows = await connection.fetch(
            "SELECT board_id, name, operator, ranking, reset, authoritative FROM boards"
        )
        boards = {row["board_id"]: Board(*row.values()) for row in rows}
        await self._copy.replace(boards.values())
        log.info("copied %d boards from PostgreSQL to Redis", len(boards))
        return boards

    @asynccontextmanager
    async def _locked(self) -> AsyncIterator[asyncpg.Connection]:
        async with postgres_errors_as_unavailable(), self._ledger.pool.acquire() as connection:
            async with connection.transaction():
                await connection.execute("SELECT pg_advisory_xact_lock($1)", _BOARDS_LOCK)
                yield connection


async def _adopt(connection: asyncpg.Connection, boards: Iterable[Board]) -> None:
    """Record boards PostgreSQL does not have yet; those it has keep their settings."""
    rows = [_row(board) for board in boards]
    if rows:
        await connection.executemany(f"{_INSERT} ON CONFLICT DO NOTHING", rows)


def _row(board: Board) -> tuple[str, str, str, str, str, bool]:
    return (
        board.board_id,
        board.name,
        board.operator,
        board.order,
        board.reset,
        board.authoritative,
    )
