"""An asyncio queue standing in for RabbitMQ in the single-process mode."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass

from scoreboard.models import ScoreUpdate

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class InProcessDelivery:
    update: ScoreUpdate
    redelivered: bool = False

    async def ack(self) -> None:
        """Nothing to do: the queue forgets an update once it is taken."""

    async def dead_letter(self) -> None:
        log.error("dropping update %s that cannot be applied", self.update.message_id)


class InProcessQueue:
    """Both the publisher and the consumer side, for a worker loop in the web process."""

    def __init__(self, batch_size: int) -> None:
        self._queue: asyncio.Queue[ScoreUpdate | None] = asyncio.Queue()
        self._batch_size = batch_size

    async def publish(self, update: ScoreUpdate) -> None:
        self._queue.put_nowait(update)

    async def batches(self) -> AsyncIterator[Sequence[InProcessDelivery]]:
        while True:
            first = await self._queue.get()
            if first is None:
                return
            batch = [InProcessDelivery(first)]
            while len(batch) < self._batch_size and not self._queue.empty():
                update = self._queue.get_nowait()
                if update is None:
                    yield batch
                    return
                batch.append(InProcessDelivery(update))
            yield batch

    async def stop(self) -> None:
        self._queue.put_nowait(None)
