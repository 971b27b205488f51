"""An asyncio queue standing in for RabbitMQ in the single-process mode."""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass

from scoreboard.models import ScoreUpdate
from scoreboard.queue import Delivery

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class InProcessDelivery:
    update: ScoreUpdate
    redelivered: bool = False

    async def dead_letter(self, reason: str) -> None:
        log.error("dropping update %s that cannot be applied: %s", self.update.message_id, reason)


class InProcessQueue:
    """Both the publisher and the consumer side, for a worker loop in the web process."""

    def __init__(self, batch_size: int) -> None:
        # (-priority, arrival, update): highest priority first, then first come first served;
        # the stop marker sorts after everything so what was queued is still applied.
        self._queue: asyncio.PriorityQueue[tuple[int, int, ScoreUpdate | None]] = (
            asyncio.PriorityQueue()
        )
        self._arrivals = itertools.count()
        self._batch_size = batch_size
        self._acknowledged: list[str] = []

    async def acknowledge(self, batch: Sequence[Delivery]) -> None:
        # The queue forgot these updates when they were taken: nothing can bring them back.
        self._acknowledged += [delivery.update.message_id for delivery in batch]

    async def confirm_acks(self) -> list[str]:
        confirmed, self._acknowledged = self._acknowledged, []
        return confirmed

    async def publish(self, update: ScoreUpdate, priority: int = 0) -> None:
        self._queue.put_nowait((-priority, next(self._arrivals), update))

    async def publish_group(self, updates: Sequence[ScoreUpdate], priority: int = 0) -> None:
        for update in updates:
            await self.publish(update, priority)

    async def batches(self) -> AsyncIterator[Sequence[InProcessDelivery]]:
        while True:
            first = (await self._queue.get())[2]
            if first is None:
                return
            batch = [InProcessDelivery(first)]
            while len(batch) < self._batch_size and not self._queue.empty():
                update = self._queue.get_nowait()[2]
                if update is None:
                    yield batch
                    return
                batch.append(InProcessDelivery(update))
            yield batch

    async def stop(self) -> None:
        self._queue.put_nowait((1, next(self._arrivals), None))
