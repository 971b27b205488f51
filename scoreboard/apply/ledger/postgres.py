"""The ledger in PostgreSQL: every applied update, written before the worker acknowledges it."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import asyncpg

from scoreboard.apply.ledger.migrations import migrate
from scoreboard.errors import LedgerUnavailable
from scoreboard.models import ScoreUpdate, UserStanding

log = logging.getLogger(__name__)

# Failures that pass: the server restarting, a dropped connection, a transaction to retry.
_TRANSIENT = (
    OSError,
    asyncio.TimeoutError,
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    asyncpg.CannotConnectNowError,
    asyncpg.TooManyConnectionsError,
    asyncpg.exceptions.OperatorInterventionError,
    asyncpg.exceptions.SerializationError,
    asyncpg.exceptions.DeadlockDetectedError,
    asyncpg.exceptions.UndefinedTableError,  # no worker has migrated this database yet
)


@asynccontextmanager
async def _postgres_errors_as_unavailable() -> AsyncIterator[None]:
    try:
        yield
    except _TRANSIENT as exc:
        raise LedgerUnavailable() from exc


@dataclass(frozen=True)
class LedgerEntry:
    """One applied update as the ledger keeps it."""

    entry_id: int
    message_id: str
    user_id: str
    username: str
    increment: int
    resulting_score: int
    accepted_at: datetime
    applied_at: datetime


class PostgresLedger:
    """Records applied updates exactly once and answers from them: history, standings."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    @classmethod
    async def connect(
        cls, url: str, *, run_migrations: bool = False, min_connections: int = 1
    ) -> PostgresLedger:
        """A pool on `url`; with no minimum it opens connections only when first used."""
        async with _postgres_errors_as_unavailable():
            pool = await asyncpg.create_pool(
                url, min_size=min_connections, max_size=4, command_timeout=10
            )
            if run_migrations:
                async with pool.acquire() as connection:
                    await migrate(connection)
        return cls(pool)

    async def close(self) -> None:
        await self._pool.close()

    async def ping(self, timeout: float) -> None:
        """Raise LedgerUnavailable unless PostgreSQL answers within `timeout` seconds."""
        async with _postgres_errors_as_unavailable():
            async with self._pool.acquire(timeout=timeout) as connection:
                await connection.fetchval("SELECT 1", timeout=timeout)

    async def record(self, updates: Sequence[ScoreUpdate]) -> list[int]:
        """Record the updates not recorded yet; return each update's entry id, in order.

        Entry ids grow in the order updates are recorded and rank equal scores on the board.
        """
        users = sorted({u.user_id for u in updates})
        async with _postgres_errors_as_unavailable(), self._pool.acquire() as connection:
            async with connection.transaction():
                # Lock each user's total, in one order everywhere so two workers cannot deadlock;
                # a redelivery racing its first delivery waits here and then finds it recorded.
                await connection.execute(
                    """INSERT INTO user_scores (user_id, username, total, last_entry_id)
                       SELECT user_id, '', 0, 0 FROM unnest($1::text[]) AS user_id
                       ON CONFLICT DO NOTHING""",
                    users,
                )
                totals = {
                    row["user_id"]: row["total"]
                    for row in await connection.fetch(
                        """SELECT user_id, total FROM user_scores
                           WHERE user_id = ANY($1::text[]) ORDER BY user_id FOR UPDATE""",
                        users,
                    )
                }
                entry_ids = {
                    row["message_id"]: row["id"]
                    for row in await connection.fetch(
                        """SELECT message_id, id FROM score_ledger
                           WHERE message_id = ANY($1::text[])""",
                        [u.message_id for u in updates],
                    )
                }
                fresh = _first_deliveries(updates, entry_ids)
                if fresh:
                    entry_ids.update(await _insert_entries(connection, fresh, totals))
        return [entry_ids[u.message_id] for u in updates]

    async def history(self, user_id: str, limit: int, before: int | None) -> list[LedgerEntry]:
        """The user's entries, newest first, older than entry `before` when given."""
        async with _postgres_errors_as_unavailable():
            rows = await self._pool.fetch(
                """SELECT id, message_id, user_id, username, increment, resulting_score,
                          accepted_at, applied_at
                   FROM score_ledger
                   WHERE user_id = $1 AND ($2::bigint IS NULL OR id < $2)
                   ORDER BY id DESC LIMIT $3""",
                user_id,
                before,
                limit,
            )
        return [LedgerEntry(*row.values()) for row in rows]

    async def standings(self) -> list[UserStanding]:
        """Every user's total, latest name and latest entry id: what the board is rebuilt from."""
        async with _postgres_errors_as_unavailable():
            rows = await self._pool.fetch(
                "SELECT user_id, username, total, last_entry_id FROM user_scores WHERE total > 0"
            )
        return [
            UserStanding(r["user_id"], r["username"], r["total"], r["last_entry_id"]) for r in rows
        ]

    async def recently_applied(self, within: timedelta) -> list[tuple[str, datetime]]:
        """(message id, applied at) of the entries recorded within `within`, for deduplication."""
        since = datetime.now(UTC) - within
        async with _postgres_errors_as_unavailable():
            rows = await self._pool.fetch(
                "SELECT message_id, applied_at FROM score_ledger WHERE applied_at > $1", since
            )
        return [(r["message_id"], r["applied_at"]) for r in rows]

    async def last_entry_id(self) -> int:
        async with _postgres_errors_as_unavailable():
            return int(await self._pool.fetchval("SELECT coalesce(max(id), 0) FROM score_ledger"))

    async def record_opening_balances(self, standings: Sequence[UserStanding]) -> None:
        """Take over a board that predates the ledger: one entry per user for what they had."""
        now = datetime.now(UTC).timestamp()
        updates = [
            ScoreUpdate(f"opening-balance:{s.user_id}", s.user_id, s.username, s.score, now)
            for s in sorted(standings, key=lambda s: s.sequence)
        ]
        for start in range(0, len(updates), 1000):
            await self.record(updates[start : start + 1000])

    async def record_removal(self, user_ids: Sequence[str] | None, admin: str) -> None:
        """An admin took users (None: everyone) off the board: their totals restart at 0."""
        async with _postgres_errors_as_unavailable(), self._pool.acquire() as connection:
            async with connection.transaction():
                if user_ids is None:
                    await connection.execute("UPDATE user_scores SET total = 0")
                else:
                    await connection.execute(
                        "UPDATE user_scores SET total = 0 WHERE user_id = ANY($1::text[])",
                        list(user_ids),
                    )
                await connection.execute(
                    """INSERT INTO admin_actions (action, user_ids, admin)
                       VALUES ($1, $2, $3)""",
                    "reset" if user_ids is None else "remove",
                    None if user_ids is None else list(user_ids),
                    admin,
                )


def _first_deliveries(
    updates: Sequence[ScoreUpdate], recorded: dict[str, int]
) -> list[ScoreUpdate]:
    """The updates not in the ledger yet, each once even if the batch holds it twice."""
    seen = set(recorded)
    fresh = []
    for update in updates:
        if update.message_id not in seen:
            seen.add(update.message_id)
            fresh.append(update)
    return fresh


async def _insert_entries(
    connection: asyncpg.Connection, fresh: Sequence[ScoreUpdate], totals: dict[str, int]
) -> dict[str, int]:
    resulting = []
    for update in fresh:
        totals[update.user_id] += update.increment
        resulting.append(totals[update.user_id])
    rows = await connection.fetch(
        """INSERT INTO score_ledger
               (message_id, user_id, username, increment, resulting_score, accepted_at)
           SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::bigint[], $5::bigint[],
                                $6::timestamptz[])
           RETURNING message_id, id""",
        [u.message_id for u in fresh],
        [u.user_id for u in fresh],
        [u.username for u in fresh],
        [u.increment for u in fresh],
        resulting,
        [datetime.fromtimestamp(u.accepted_at, UTC) for u in fresh],
    )
    entry_ids = {row["message_id"]: row["id"] for row in rows}
    latest: dict[str, tuple[str, int, int]] = {}
    for update in fresh:
        previous = latest.get(update.user_id)
        entry_id = entry_ids[update.message_id]
        if previous is None or entry_id > previous[2]:
            latest[update.user_id] = (update.username, totals[update.user_id], entry_id)
    await connection.execute(
        """UPDATE user_scores AS s
           SET username = v.username, total = v.total, last_entry_id = v.last_entry_id
           FROM unnest($1::text[], $2::text[], $3::bigint[], $4::bigint[])
                AS v(user_id, username, total, last_entry_id)
           WHERE s.user_id = v.user_id""",
        list(latest),
        [v[0] for v in latest.values()],
        [v[1] for v in latest.values()],
        [v[2] for v in latest.values()],
    )
    return entry_ids
