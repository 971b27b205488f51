"""Asking RabbitMQ how many messages wait: the readiness check and the queue-depth gauge."""

from __future__ import annotations

import asyncio
import logging

import aio_pika
import aio_pika.abc
import aiormq.exceptions

from scoreboard.errors import QueueUnavailable
from scoreboard.queue.broker_link import BROKER_FAILURES, connect_first
from scoreboard.queue.queue_layout import QueueLayout

log = logging.getLogger(__name__)

PROBE_TIMEOUT_SECONDS = 1.0


class QueueProbe:
    """Passive declares of the update queues and the dead-letter queue on a connection of its own.

    Its own connection, opened on first use: the publisher's channel must never be closed by a
    probe of a queue that does not exist (RabbitMQ closes the channel on a passive declare miss).
    """

    def __init__(
        self, urls: tuple[str, ...], layout: QueueLayout, timeout: float = PROBE_TIMEOUT_SECONDS
    ) -> None:
        self._urls = urls
        # "main" adds up the update queues: one, or one per priority level with quorum queues.
        self._queues = {
            "main": [queue.name for queue in layout.update_queues],
            "dead_letter": [layout.dead_letter_queue],
        }
        self._timeout = timeout
        self._connection: aio_pika.abc.AbstractConnection | None = None
        self._channel: aio_pika.abc.AbstractChannel | None = None

    async def depths(self) -> dict[str, int | None]:
        """Messages ready per queue ("main", "dead_letter"); None for one not declared yet.

        Raises QueueUnavailable when the broker does not answer within the timeout.
        """
        try:
            async with asyncio.timeout(self._timeout):
                return {role: await self._total(names) for role, names in self._queues.items()}
        except BROKER_FAILURES as exc:
            await self.close()
            raise QueueUnavailable() from exc

    async def _total(self, queue_names: list[str]) -> int | None:
        depths = [depth for name in queue_names if (depth := await self._depth(name)) is not None]
        return sum(depths) if depths else None

    async def _depth(self, queue_name: str) -> int | None:
        channel = await self._open_channel()
        try:
            queue = await channel.declare_queue(queue_name, passive=True)
        except aiormq.exceptions.ChannelNotFoundEntity:
            self._channel = None  # the broker closed it
            return None
        result = queue.declaration_result
        return int(result.message_count or 0)

    async def _open_channel(self) -> aio_pika.abc.AbstractChannel:
        if self._connection is None or self._connection.is_closed:
            self._connection, _ = await connect_first(self._urls, self._timeout)
            self._channel = None
        if self._channel is None or self._channel.is_closed:
            self._channel = await self._connection.channel(publisher_confirms=False)
        return self._channel

    async def close(self) -> None:
        connection, self._connection, self._channel = self._connection, None, None
        if connection is None or connection.is_closed:
            return
        try:
            # Bounded too: a broker that stopped answering would never confirm the close.
            async with asyncio.timeout(self._timeout):
                await connection.close()
        except BROKER_FAILURES as exc:
            log.debug("closing the queue probe's connection failed: %r", exc)
