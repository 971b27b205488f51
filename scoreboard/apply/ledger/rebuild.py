"""Rebuilding the Redis board from the ledger, by hand or when a worker finds Redis emptied."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from scoreboard.apply.ledger.postgres import PostgresLedger
from scoreboard.apply.store import DEDUPLICATION_TTL_SECONDS
from scoreboard.apply.store.redis_store import RedisLeaderboardStore
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
    # The board counts as rebuilt only on this server: a failover meanwhile means rebuild again.
    server = await store.server_id()
    standings = await ledger.standings(store.board.board_id, store.season)
    now = datetime.now(UTC)
    # Messages still in the queue may be redelivered: the rebuilt board already counts them.
    remembered = [
        (message_id, int((applied_at + _DEDUPLICATION_WINDOW - now).total_seconds()))
        for message_id, applied_at in await ledger.recently_applied(_DEDUPLICATION_WINDOW)
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
    ledger: PostgresLedger, store: RedisLeaderboardStore
) -> Leaderboard | None:
    """Rebuild global's board if Redis lost it, or may have lost writes to it (a restart, a
    failover: see RedisLeaderboardStore.synced); return it rebuilt, None if nothing was done.

    One process rebuilds at a time; the others wait for it and then find the board in place.
    """
    if await store.synced():
        return None
    async with store.rebuild_lock():
        if await store.synced():
            return None
        on_board = await store.standings()
        if on_board and await ledger.last_entry_id() == 0:
            log.info("recording the existing board of %d users in the empty ledger", len(on_board))
            await ledger.record_opening_balances(on_board)
        return (await rebuild_board(ledger, store)).board
