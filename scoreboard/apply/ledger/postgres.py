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
from scoreboard.boards.model import GLOBAL_BOARD, GLOBAL_BOARD_ID, Board
from scoreboard.boards.values import Place, place_after, value_after
from scoreboard.errors import LedgerUnavailable
from scoreboard.models import ScoreUpdate, UserStanding

log = logging.getLogger(__name__)

# Global's only season keeps its running totals in user_scores; every other in board_scores.
_GLOBAL_SEASON = (GLOBAL_BOARD_ID, 1)
_Key = tuple[str, int, str]  # board id, season, user id

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
async def postgres_errors_as_unavailable() -> AsyncIterator[None]:
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
    board_id: str = GLOBAL_BOARD_ID
    season: int = 1


class PostgresLedger:
    """Records applied updates exactly once and answers from them: history, standings."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    @classmethod
    async def connect(
        cls, url: str, *, run_migrations: bool = False, min_connections: int = 1
    ) -> PostgresLedger:
        """A pool on `url`; with no minimum it opens connections only when first used."""
        async with postgres_errors_as_unavailable():
            pool = await asyncpg.create_pool(
                url, min_size=min_connections, max_size=4, command_timeout=10
            )
            if run_migrations:
                async with pool.acquire() as connection:
                    await migrate(connection)
        return cls(pool)

    @property
    def pool(self) -> asyncpg.Pool:
        """The connections, for the other tables of this database (closed seasons)."""
        return self._pool

    async def close(self) -> None:
        await self._pool.close()

    async def ping(self, timeout: float) -> None:
        """Raise LedgerUnavailable unless PostgreSQL answers within `timeout` seconds."""
        async with postgres_errors_as_unavailable():
            async with self._pool.acquire(timeout=timeout) as connection:
                await connection.fetchval("SELECT 1", timeout=timeout)

    async def record(self, updates: Sequence[ScoreUpdate]) -> list[int]:
        """Record the updates not recorded yet, of any board; return each one's entry id, in order.

        Entry ids grow in the order updates are recorded and rank equal scores on every board.
        """
        async with postgres_errors_as_unavailable(), self._pool.acquire() as connection:
            async with connection.transaction():
                values = await _lock_values(connection, sorted({_key(u) for u in updates}))
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
                    entry_ids.update(await _insert_entries(connection, fresh, values))
        return [entry_ids[u.message_id] for u in updates]

    async def history(
        self, user_id: str, limit: int, before: int | None, board_id: str | None = None
    ) -> list[LedgerEntry]:
        """The user's entries, newest first, older than entry `before` when given; on one board
        when `board_id` is given, else on every board."""
        on_board = "" if board_id is None else "AND board_id = $4"
        async with postgres_errors_as_unavailable():
            rows = await self._pool.fetch(
                f"""SELECT id, message_id, user_id, username, increment, resulting_score,
                           accepted_at, applied_at, board_id, season
                    FROM score_ledger
                    WHERE user_id = $1 AND ($2::bigint IS NULL OR id < $2) {on_board}
                    ORDER BY id DESC LIMIT $3""",
                user_id,
                before,
                limit,
                *([] if board_id is None else [board_id]),
            )
        return [LedgerEntry(*row.values()) for row in rows]

    async def standings(
        self, board_id: str = GLOBAL_BOARD_ID, season: int = 1
    ) -> list[UserStanding]:
        """Every user's value on the board's season, latest name and the entry that set the
        value: what the board is rebuilt from."""
        async with postgres_errors_as_unavailable(), self._pool.acquire() as connection:
            return await _standings(connection, board_id, season)

    async def recently_applied(
        self, within: timedelta, season: tuple[str, int] | None = None
    ) -> list[tuple[str, datetime]]:
        """(message id, applied at) of the entries recorded within `within`, for deduplication;
        of one (board, season) when given, else of every board."""
        async with postgres_errors_as_unavailable(), self._pool.acquire() as connection:
            return await _recently_applied(connection, within, season)

    async def rebuild_source(
        self, board_id: str, season: int, within: timedelta, remembered: tuple[str, int] | None
    ) -> tuple[list[UserStanding], list[tuple[str, datetime]]]:
        """standings() and recently_applied() read from one snapshot: an update recorded by
        another worker meanwhile is in both or in neither (never remembered as applied while
        missing from the standings, which would lose it)."""
        async with postgres_errors_as_unavailable(), self._pool.acquire() as connection:
            async with connection.transaction(isolation="repeatable_read", readonly=True):
                standings = await _standings(connection, board_id, season)
                recent = await _recently_applied(connection, within, remembered)
        return standings, recent

    async def has_values(self, board_id: str, season: int) -> bool:
        """Whether the ledger recorded anything in this season of a board other than global."""
        async with postgres_errors_as_unavailable():
            return bool(
                await self._pool.fetchval(
                    """SELECT EXISTS (SELECT 1 FROM board_scores
                                      WHERE board_id = $1 AND season = $2)""",
                    board_id,
                    season,
                )
            )

    async def last_entry_id(self) -> int:
        async with postgres_errors_as_unavailable():
            return int(await self._pool.fetchval("SELECT coalesce(max(id), 0) FROM score_ledger"))

    async def record_opening_balances(
        self, standings: Sequence[UserStanding], board: Board = GLOBAL_BOARD, season: int = 1
    ) -> None:
        """Take over a board's season that predates the ledger: one entry per user for what
        they had."""
        now = datetime.now(UTC).timestamp()
        # Global's ids are those of the versions before boards: an opening balance is taken once.
        scope = "" if board.board_id == GLOBAL_BOARD_ID else f"{board.board_id}:{season}:"
        updates = [
            ScoreUpdate(
                f"opening-balance:{scope}{s.user_id}",
                s.user_id,
                s.username,
                s.score,
                now,
                board_id=board.board_id,
                season=season,
                operator=board.operator,
                order=board.order,
            )
            for s in sorted(standings, key=lambda s: s.sequence)
        ]
        for start in range(0, len(updates), 1000):
            await self.record(updates[start : start + 1000])

    async def record_removal(
        self,
        user_ids: Sequence[str] | None,
        admin: str,
        seasons: Sequence[tuple[str, int]] = (_GLOBAL_SEASON,),
    ) -> None:
        """An admin took users (None: everyone, on `global` only) off these (board, season)s:
        their values there are gone, so a rebuild does not bring them back (an `incr` value
        restarts at 0). The action is recorded with its board, or NULL for several."""
        on_boards = [(board, season) for board, season in seasons if board != GLOBAL_BOARD_ID]
        if user_ids is None and on_boards:
            raise ValueError("only global's board is reset whole")
        async with postgres_errors_as_unavailable(), self._pool.acquire() as connection:
            async with connection.transaction():
                if _GLOBAL_SEASON in seasons and user_ids is None:
                    await connection.execute("UPDATE user_scores SET total = 0")
                elif _GLOBAL_SEASON in seasons:
                    await connection.execute(
                        "UPDATE user_scores SET total = 0 WHERE user_id = ANY($1::text[])",
                        list(user_ids or ()),
                    )
                if on_boards:
                    boards, numbers = zip(*on_boards, strict=True)
                    await connection.execute(
                        """UPDATE board_scores AS s SET score = NULL
                           FROM unnest($1::text[], $2::integer[]) AS v(board_id, season)
                           WHERE (s.board_id, s.season) = (v.board_id, v.season)
                             AND s.user_id = ANY($3::text[])""",
                        list(boards),
                        list(numbers),
                        list(user_ids or ()),
                    )
                await connection.execute(
                    """INSERT INTO admin_actions (action, user_ids, admin, board_id)
                       VALUES ($1, $2, $3, $4)""",
                    "reset" if user_ids is None else "remove",
                    None if user_ids is None else list(user_ids),
                    admin,
                    seasons[0][0] if len(seasons) == 1 else None,
                )


async def _standings(
    connection: asyncpg.Connection, board_id: str, season: int
) -> list[UserStanding]:
    if (board_id, season) == _GLOBAL_SEASON:
        rows = await connection.fetch(
            """SELECT user_id, username, total AS score, last_entry_id FROM user_scores
               WHERE total > 0"""
        )
    else:
        rows = await connection.fetch(
            """SELECT user_id, username, score,
                      coalesce(reached_seq, last_entry_id) AS last_entry_id, latest_seq
               FROM board_scores
               WHERE board_id = $1 AND season = $2 AND score IS NOT NULL""",
            board_id,
            season,
        )
    return [
        UserStanding(
            r["user_id"], r["username"], r["score"], r["last_entry_id"], r.get("latest_seq")
        )
        for r in rows
    ]


async def _recently_applied(
    connection: asyncpg.Connection, within: timedelta, season: tuple[str, int] | None
) -> list[tuple[str, datetime]]:
    since = datetime.now(UTC) - within
    on_season = "" if season is None else "AND board_id = $2 AND season = $3"
    rows = await connection.fetch(
        f"""SELECT message_id, applied_at FROM score_ledger
            WHERE applied_at > $1 {on_season}""",
        since,
        *(season or ()),
    )
    return [(r["message_id"], r["applied_at"]) for r in rows]


def _key(update: ScoreUpdate) -> _Key:
    return (update.board_id, update.season, update.user_id)


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


async def _lock_values(connection: asyncpg.Connection, keys: Sequence[_Key]) -> dict[_Key, Place]:
    """The current value of each (board, season, user) in `keys`, sorted, each row locked until
    the transaction ends.

    Global's rows first, then the other boards', each in `keys`' order (the "C" collation sorts
    as Python does): one order everywhere, so two workers cannot deadlock; a redelivery racing
    its first delivery waits here and then finds it recorded.
    """
    users = [user for board, season, user in keys if (board, season) == _GLOBAL_SEASON]
    others = [key for key in keys if key[:2] != _GLOBAL_SEASON]
    values: dict[_Key, Place] = {}
    if users:
        await connection.execute(
            """INSERT INTO user_scores (user_id, username, total, last_entry_id)
               SELECT user_id, '', 0, 0 FROM unnest($1::text[]) AS user_id
               ON CONFLICT DO NOTHING""",
            users,
        )
        for row in await connection.fetch(
            """SELECT user_id, total FROM user_scores WHERE user_id = ANY($1::text[])
               ORDER BY user_id COLLATE "C" FOR UPDATE""",
            users,
        ):
            # 0 is no value on global: a total only grows, and a removal restarts it at 0.
            values[(*_GLOBAL_SEASON, row["user_id"])] = Place(row["total"] or None, None, None)
    if others:
        columns = [list(column) for column in zip(*others, strict=True)]
        await connection.execute(
            """INSERT INTO board_scores (board_id, season, user_id, username, last_entry_id)
               SELECT *, '', 0 FROM unnest($1::text[], $2::integer[], $3::text[])
               ON CONFLICT DO NOTHING""",
            *columns,
        )
        for row in await connection.fetch(
            """SELECT s.board_id, s.season, s.user_id, s.score, s.reached_seq, s.latest_seq
               FROM board_scores AS s
               JOIN unnest($1::text[], $2::integer[], $3::text[]) AS k(board_id, season, user_id)
                 USING (board_id, season, user_id)
               ORDER BY s.board_id COLLATE "C", s.season, s.user_id COLLATE "C"
               FOR UPDATE OF s""",
            *columns,
        ):
            values[(row["board_id"], row["season"], row["user_id"])] = Place(
                row["score"], row["reached_seq"], row["latest_seq"]
            )
    return values


async def _insert_entries(
    connection: asyncpg.Connection, fresh: Sequence[ScoreUpdate], places: dict[_Key, Place]
) -> dict[str, int]:
    resulting, changed = [], []
    for update in fresh:
        key = _key(update)
        before = places[key]
        after = _place_after(update, before)
        places[key] = after
        resulting.append(after.value)
        changed.append(after.value != before.value or after.reached != before.reached)
    rows = await connection.fetch(
        """INSERT INTO score_ledger (message_id, board_id, season, user_id, username, increment,
                                     resulting_score, accepted_at, accepted_seq)
           SELECT * FROM unnest($1::text[], $2::text[], $3::integer[], $4::text[], $5::text[],
                                $6::bigint[], $7::bigint[], $8::timestamptz[], $9::bigint[])
           RETURNING message_id, id""",
        [u.message_id for u in fresh],
        [u.board_id for u in fresh],
        [u.season for u in fresh],
        [u.user_id for u in fresh],
        [u.username for u in fresh],
        [u.increment for u in fresh],
        resulting,
        [datetime.fromtimestamp(u.accepted_at, UTC) for u in fresh],
        [u.accepted_seq for u in fresh],
    )
    entry_ids = {row["message_id"]: row["id"] for row in rows}
    # The rows took their ids in the order of `fresh`, the order their values were computed in.
    latest: dict[_Key, _Latest] = {}
    for update, value_changed in zip(fresh, changed, strict=True):
        key = _key(update)
        set_by = latest[key].set_by if key in latest else None
        if value_changed:
            set_by = entry_ids[update.message_id]
        latest[key] = _Latest(update.username, set_by)
    await _save_values(connection, latest, places)
    return entry_ids


def _place_after(update: ScoreUpdate, before: Place) -> Place:
    """The user's place once `update` is applied: by acceptance order when it carries one (any
    order of application ends the same), else in the order recorded (global, older messages)."""
    if update.accepted_seq is not None:
        return place_after(
            update.operator, update.order, before, update.increment, update.accepted_seq
        )
    new = value_after(update.operator, update.order, before.value, update.increment)
    return before if new is None else before._replace(value=new)


@dataclass(frozen=True)
class _Latest:
    """What a batch leaves of one user on one board: the newest entry's name, and the newest
    entry that changed the value (None: none did, the user keeps their place)."""

    username: str
    set_by: int | None


async def _save_values(
    connection: asyncpg.Connection, latest: dict[_Key, _Latest], places: dict[_Key, Place]
) -> None:
    on_global = {key: last for key, last in latest.items() if key[:2] == _GLOBAL_SEASON}
    others = {key: last for key, last in latest.items() if key[:2] != _GLOBAL_SEASON}
    if on_global:
        await connection.execute(
            """UPDATE user_scores AS s
               SET username = v.username, total = v.total,
                   last_entry_id = coalesce(v.set_by, s.last_entry_id)
               FROM unnest($1::text[], $2::text[], $3::bigint[], $4::bigint[])
                    AS v(user_id, username, total, set_by)
               WHERE s.user_id = v.user_id""",
            [user for _, _, user in on_global],
            [last.username for last in on_global.values()],
            [places[key].value for key in on_global],
            [last.set_by for last in on_global.values()],
        )
    if others:
        await connection.execute(
            """UPDATE board_scores AS s
               SET username = v.username, score = v.score,
                   last_entry_id = coalesce(v.set_by, s.last_entry_id),
                   reached_seq = v.reached_seq, latest_seq = v.latest_seq
               FROM unnest($1::text[], $2::integer[], $3::text[], $4::text[], $5::bigint[],
                           $6::bigint[], $7::bigint[], $8::bigint[])
                    AS v(board_id, season, user_id, username, score, set_by, reached_seq,
                         latest_seq)
               WHERE (s.board_id, s.season, s.user_id) = (v.board_id, v.season, v.user_id)""",
            [board for board, _, _ in others],
            [season for _, season, _ in others],
            [user for _, _, user in others],
            [last.username for last in others.values()],
            [places[key].value for key in others],
            [last.set_by for last in others.values()],
            [places[key].reached for key in others],
            [places[key].latest for key in others],
        )
