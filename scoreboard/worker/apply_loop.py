"""Take a batch, apply it exactly once, acknowledge it, broadcast the top 10 if it changed."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass

from scoreboard.broadcast import Broadcaster
from scoreboard.broker import UpdateConsumer
from scoreboard.errors import StoreUnavailable
from scoreboard.models import Leaderboard, ScoreUpdate
from scoreboard.store import LeaderboardStore

log = logging.getLogger(__name__)

MAX_RETRY_DELAY_SECONDS = 5.0


@dataclass
class ApplyStats:
    """What a worker did, for its shutdown summary."""

    batches: int = 0
    updates: int = 0
    broadcasts: int = 0

    def summary(self) -> str:
        return f"{self.updates} updates in {self.batches} batches, {self.broadcasts} broadcasts"


async def apply_batches(
    consumer: UpdateConsumer,
    store: LeaderboardStore,
    broadcaster: Broadcaster,
    stats: ApplyStats,
) -> None:
    """Run until the consumer stops; an update is acknowledged only once the store holds it."""
    async for batch in consumer.batches():
        board = await _apply_until_stored(store, batch.updates)
        await batch.ack()
        stats.batches += 1
        stats.updates += len(batch.updates)
        if board is None:
            continue
        try:
            await broadcaster.broadcast_top10(board)
            stats.broadcasts += 1
        except Exception:  # a lost broadcast is superseded by the next one; never stop applying
            log.exception("broadcast of version %d failed", board.version)


async def _apply_until_stored(
    store: LeaderboardStore, updates: Sequence[ScoreUpdate]
) -> Leaderboard | None:
    delay = 0.1
    while True:
        try:
            return await store.apply(updates)
        except StoreUnavailable:
            log.warning("store unavailable, retrying %d updates in %.1fs", len(updates), delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, MAX_RETRY_DELAY_SECONDS)
