"""Rebuilding a Redis board's season from the ledger, by hand or when a worker finds it lost."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from scoreboard.apply.ledger.postgres import PostgresLedger
from scoreboard.apply.ledger.seasons import LedgerSeasons
from scoreboard.apply.store import DEDUPLICATION_TTL_SECONDS
from scoreboard.apply.store.redis_store import RedisLeaderboardStore
from scoreboard.boards.model import GLOBAL_BOARD_ID
from scoreboard.errors import SeasonClosed
from scoreboard.models import Leaderboard

log = logging.getLogger(__name__)

_DEDUPLICATION_WINDOW = timedelta(seconds=DEDUPLICATION_TTL_SECONDS)


@dataclass(frozen=True)
class RebuildReport:
    """What a rebuild restored, and how long it took."""

    users: int
    remembered_messages: int
    seconds: float
    board: Leaderboard


async def rebuild_board(ledger: PostgresLedger, store: RedisLeaderboardStore) -> RebuildReport:
    """Make the store's board season exactly what the ledger says, then let workers apply again.

    `store` is global's, or another board's season from its `for_board()`.
    """
    started = time.monotonic()
    board_id, season = store.board.board_id, store.season
    # The board counts as rebuilt only on this server: a failover meanwhile means rebuild again.
    server = await store.server_id()
    # Messages still in the queue may be redelivered: the rebuilt board already counts them.
    # (Global's rebuild remembers every board's: a Redis that lost global lost them all.)
    standings, recent = await ledger.rebuild_source(
        board_id,
        season,
        _DEDUPLICATION_WINDOW,
        None if board_id == GLOBAL_BOARD_ID else (board_id, season),
    )
    now = datetime.now(UTC)
    remembered = [
        (message_id, int((applied_at + _DEDUPLICATION_WINDOW - now).total_seconds()))
        for message_id, applied_at in recent
    ]
    # Clients drop a version they have seen; the lost counter may have run past the ledger's
    # entry count (rebuilds bump it too), so the clock in milliseconds is the floor as well.
    floor = max(await ledger.last_entry_id(), int(time.time() * 1000))
    board = await store.restore(standings, remembered, version_floor=floor)
    await store.mark_synced(server)
    report = RebuildReport(len(standings), len(remembered), time.monotonic() - started, board)
    log.info(
        "rebuilt board %s season %d from the ledger: %d users, %d message ids remembered, %.2fs",
        store.board.board_id,
        store.season,
        report.users,
        report.remembered_messages,
        report.seconds,
    )
    return report


async def ensure_board_matches_ledger(
    ledger: PostgresLedger, store: RedisLeaderboardStore, seasons: LedgerSeasons | None = None
) -> Leaderboard | None:
    """Rebuild the store's board season if Redis lost it; return it rebuilt when its subscribers
    should see it (`global`'s, or a board's live season), else None.

    Another board's season needs `seasons`: the live number Redis lost is restored first, and a
    season already archived as closed is never brought back (SeasonClosed).
    """
    if await store.synced():
        return None
    board_id = store.board.board_id
    live = store.season
    if board_id != GLOBAL_BOARD_ID:
        if seasons is None:
            raise ValueError(f"rebuilding a season of board {board_id!r} needs its seasons")
        live = (await seasons.current(board_id)).number
        if store.season <= await seasons.archived_in_ledger(board_id):
            raise SeasonClosed(f"board {board_id!r} season {store.season} is archived")
    rebuilt = await rebuild_if_lost(ledger, store)
    return rebuilt if store.season == live else None


async def rebuild_if_lost(
    ledger: PostgresLedger, store: RedisLeaderboardStore
) -> Leaderboard | None:
    """Rebuild the store's board season unless it matches the ledger (Redis lost it, or may
    have lost writes to it: a restart, a failover, see RedisLeaderboardStore.synced); None if
    nothing was done.

    One process rebuilds at a time; the others wait for it and then find the board in place.
    """
    if await store.synced():
        return None
    async with store.rebuild_lock():
        return await rebuild_holding_lock(ledger, store)


async def rebuild_holding_lock(
    ledger: PostgresLedger, store: RedisLeaderboardStore
) -> Leaderboard | None:
    """rebuild_if_lost() for a caller that holds the store's rebuild lock."""
    if await store.synced():
        return None
    await _record_what_the_ledger_lacks(ledger, store)
    return (await rebuild_board(ledger, store)).board


async def _record_what_the_ledger_lacks(
    ledger: PostgresLedger, store: RedisLeaderboardStore
) -> None:
    """A board Redis holds and the ledger never recorded (kept before the ledger was set up)
    is recorded as opening balances, so the rebuild keeps it."""
    on_board = await store.standings()
    if not on_board:
        return
    board, season = store.board, store.season
    if board.board_id == GLOBAL_BOARD_ID:
        unrecorded = await ledger.last_entry_id() == 0
    else:
        unrecorded = not await ledger.has_values(board.board_id, season)
    if unrecorded:
        log.info(
            "recording board %s season %d of %d users in the ledger",
            board.board_id,
            season,
            len(on_board),
        )
        await ledger.record_opening_balances(on_board, board, season)
