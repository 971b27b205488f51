"""RabbitMQ: a durable queue, publisher confirms on the web side, manual acks on the worker side."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass

import aio_pika
import aio_pika.abc
import aiormq.exceptions

from scoreboard.errors import PoisonMessage, QueueUnavailable
from scoreboard.models import ScoreUpdate

log = logging.getLogger(__name__)

PUBLISH_TIMEOUT_SECONDS = 2.0
CONNECT_TIMEOUT_SECONDS = 10.0
# Every way a publish can fail without us knowing whether the broker kept the message.
_PUBLISH_FAILURES = (
    asyncio.TimeoutError,
    aiormq.exceptions.AMQPError,
    aiormq.exceptions.ChannelInvalidStateError,
    ConnectionError,
    OSError,
)


def dead_letter_queue_name(queue_name: str) -> str:
    return f"{queue_name}.dead"


async def declare_queues(
    channel: aio_pika.abc.AbstractChannel, queue_name: str
) -> aio_pika.abc.AbstractQueue:
    """Declare the durable update queue and its dead-letter queue (same arguments everywhere)."""
    dead_letters = dead_letter_queue_name(queue_name)
    await channel.declare_queue(dead_letters, durable=True)
    return await channel.declare_queue(
        queue_name,
        durable=True,
        arguments={"x-dead-letter-exchange": "", "x-dead-letter-routing-key": dead_letters},
    )


class RabbitPublisher:
    """UpdatePublisher that returns only after the broker confirmed the persistent message."""

    def __init__(
        self,
        connection: aio_pika.abc.AbstractRobustConnection,
        channel: aio_pika.abc.AbstractChannel,
        queue_name: str,
    ) -> None:
        self._connection = connection
        self._channel = channel
        self._queue_name = queue_name

    @classmethod
    async def connect(cls, url: str, queue_name: str) -> RabbitPublisher:
        connection = await aio_pika.connect_robust(url, timeout=CONNECT_TIMEOUT_SECONDS)
        channel = await connection.channel(publisher_confirms=True, on_return_raises=True)
        await declare_queues(channel, queue_name)
        return cls(connection, channel, queue_name)

    async def publish(self, update: ScoreUpdate) -> None:
        message = aio_pika.Message(
            update.to_message(),
            content_type="application/json",
            delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
            message_id=update.message_id,
        )
        try:
            # mandatory: a message no queue takes is returned as an error, not dropped.
            await asyncio.wait_for(
                self._channel.default_exchange.publish(
                    message, routing_key=self._queue_name, mandatory=True
                ),
                PUBLISH_TIMEOUT_SECONDS,
            )
        except _PUBLISH_FAILURES as exc:
            log.warning("publish of %s failed: %r", update.message_id, exc)
            raise QueueUnavailable() from exc

    async def close(self) -> None:
        await self._connection.close()


@dataclass(frozen=True)
class RabbitBatch:
    """Decoded updates and the deliveries that carried them."""

    updates: Sequence[ScoreUpdate]
    deliveries: Sequence[aio_pika.abc.AbstractIncomingMessage]

    async def ack(self) -> None:
        for delivery in self.deliveries:
            try:
                await delivery.ack()
            except _PUBLISH_FAILURES as exc:
                # The channel died: the broker redelivers, and the store skips what it applied.
                log.warning("ack failed, the message will be redelivered: %r", exc)


class RabbitConsumer:
    """UpdateConsumer over a robust connection; at most `prefetch` unacked messages at a time."""

    def __init__(self, url: str, queue_name: str, prefetch: int) -> None:
        self._url = url
        self._queue_name = queue_name
        self._prefetch = prefetch
        self._inbox: asyncio.Queue[aio_pika.abc.AbstractIncomingMessage | None] = asyncio.Queue()
        self._connection: aio_pika.abc.AbstractRobustConnection | None = None
        self._queue: aio_pika.abc.AbstractQueue | None = None
        self._consumer_tag: str | None = None
        self.dead_lettered = 0

    async def start(self) -> None:
        self._connection = await aio_pika.connect_robust(self._url, timeout=CONNECT_TIMEOUT_SECONDS)
        channel = await self._connection.channel()
        await channel.set_qos(prefetch_count=self._prefetch)
        self._queue = await declare_queues(channel, self._queue_name)
        self._consumer_tag = await self._queue.consume(self._inbox.put)

    async def batches(self) -> AsyncIterator[RabbitBatch]:
        while True:
            first = await self._inbox.get()
            if first is None:
                return
            deliveries = [first]
            stopping = False
            while len(deliveries) < self._prefetch and not self._inbox.empty():
                delivery = self._inbox.get_nowait()
                if delivery is None:
                    stopping = True
                    break
                deliveries.append(delivery)
            batch = await self._decode(deliveries)
            if batch.deliveries:
                yield batch
            if stopping:
                return

    async def _decode(self, deliveries: list[aio_pika.abc.AbstractIncomingMessage]) -> RabbitBatch:
        updates, good = [], []
        for delivery in deliveries:
            try:
                updates.append(ScoreUpdate.from_message(delivery.body))
                good.append(delivery)
            except PoisonMessage as exc:
                self.dead_lettered += 1
                log.error("dead-lettering message %s: %s", delivery.message_id, exc)
                await delivery.reject(requeue=False)
        return RabbitBatch(updates, good)

    async def stop(self) -> None:
        if self._queue is not None and self._consumer_tag is not None:
            try:
                await self._queue.cancel(self._consumer_tag)
            except _PUBLISH_FAILURES as exc:
                log.warning("could not cancel the consumer: %r", exc)
        self._inbox.put_nowait(None)

    async def close(self) -> None:
        if self._connection is not None:
            await self._connection.close()
