"""An asyncio queue standing in for RabbitMQ in the single-process mode."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass

from scoreboard.models import ScoreUpdate


@dataclass(frozen=True)
class InProcessBatch:
    updates: Sequence[ScoreUpdate]

    async def ack(self) -> None:
        """Nothing to do: the queue forgets an update once it is taken."""


class InProcessQueue:
    """Both the publisher and the consumer side, for a worker loop in the web process."""

    def __init__(self, batch_size: int) -> None:
        self._queue: asyncio.Queue[ScoreUpdate | None] = asyncio.Queue()
        self._batch_size = batch_size

    async def publish(self, update: ScoreUpdate) -> None:
        self._queue.put_nowait(update)

    async def batches(self) -> AsyncIterator[InProcessBatch]:
        while True:
            first = await self._queue.get()
            if first is None:
                return
            updates = [first]
            while len(updates) < self._batch_size and not self._queue.empty():
                update = self._queue.get_nowait()
                if update is None:
                    yield InProcessBatch(updates)
                    return
                updates.append(update)
            yield InProcessBatch(updates)

    async def stop(self) -> None:
        self._queue.put_nowait(None)
