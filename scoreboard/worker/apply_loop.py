"""Take a batch, apply it exactly once, acknowledge it, broadcast the top 10 if it changed."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar

from scoreboard.broadcast import Broadcaster
from scoreboard.broker import Delivery, UpdateConsumer
from scoreboard.errors import StoreUnavailable
from scoreboard.models import Leaderboard, ScoreUpdate
from scoreboard.store import LeaderboardStore
from scoreboard.worker.redeliveries import RedeliveryCounter

log = logging.getLogger(__name__)

MAX_RETRY_DELAY_SECONDS = 5.0
T = TypeVar("T")


@dataclass
class ApplyStats:
    """What a worker did, for its shutdown summary."""

    batches: int = 0
    updates: int = 0
    broadcasts: int = 0
    dead_lettered: int = 0

    def summary(self) -> str:
        return (
            f"{self.updates} updates in {self.batches} batches, {self.broadcasts} broadcasts, "
            f"{self.dead_lettered} dead-lettered"
        )


async def apply_batches(
    consumer: UpdateConsumer,
    store: LeaderboardStore,
    broadcaster: Broadcaster,
    stats: ApplyStats,
    redeliveries: RedeliveryCounter | None = None,
) -> None:
    """Run until the consumer stops; an update is acknowledged only once the store holds it."""
    async for batch in consumer.batches():
        if redeliveries is not None:
            batch = await _set_aside_repeat_offenders(batch, redeliveries, stats)
        board = await _apply(batch, store, stats)
        stats.batches += 1
        if board is None:
            continue
        try:
            await broadcaster.broadcast_top10(board)
            stats.broadcasts += 1
        except Exception:  # a lost broadcast is superseded by the next one; never stop applying
            log.exception("broadcast of version %d failed", board.version)


async def _set_aside_repeat_offenders(
    batch: Sequence[Delivery], redeliveries: RedeliveryCounter, stats: ApplyStats
) -> list[Delivery]:
    """Dead-letter messages that came back too often: each return is a worker that died on it."""
    returned = [d.update.message_id for d in batch if d.redelivered]
    exhausted = await _until_stored(lambda: redeliveries.exhausted(returned))
    kept = []
    for delivery in batch:
        if delivery.update.message_id in exhausted:
            log.error("update %s was redelivered too often", delivery.update.message_id)
            await delivery.dead_letter()
            stats.dead_lettered += 1
        else:
            kept.append(delivery)
    return kept


async def _apply(
    batch: Sequence[Delivery], store: LeaderboardStore, stats: ApplyStats
) -> Leaderboard | None:
    """Apply and ack the batch; if the store refuses it, isolate and dead-letter the culprits."""
    if not batch:
        return None
    updates: list[ScoreUpdate] = [d.update for d in batch]
    try:
        board = await _until_stored(lambda: store.apply(updates))
    except Exception:
        if len(batch) == 1:
            log.exception("update %s cannot be applied", batch[0].update.message_id)
            await batch[0].dead_letter()
            stats.dead_lettered += 1
            return None
        log.warning("a batch of %d was refused; applying its updates one by one", len(batch))
        boards = [await _apply([delivery], store, stats) for delivery in batch]
        return next((b for b in reversed(boards) if b is not None), None)
    for delivery in batch:
        await delivery.ack()
    stats.updates += len(batch)
    return board


async def _until_stored(attempt: Callable[[], Awaitable[T]]) -> T:
    """Retry `attempt` while the store is unavailable, backing off up to 5 seconds."""
    delay = 0.1
    while True:
        try:
            return await attempt()
        except StoreUnavailable:
            log.warning("store unavailable, retrying in %.1fs", delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, MAX_RETRY_DELAY_SECONDS)
