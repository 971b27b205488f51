"""RabbitMQ: a durable queue, publisher confirms on the web side, manual acks on the worker side."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass

import aio_pika
import aio_pika.abc
import aiormq.exceptions

from scoreboard.config import MAX_PRIORITY
from scoreboard.errors import PoisonMessage, QueueUnavailable
from scoreboard.models import ScoreUpdate, encode_group
from scoreboard.queue import Delivery
from scoreboard.queue.signing import SIGNATURE_HEADER, MessageSigner

log = logging.getLogger(__name__)

PUBLISH_TIMEOUT_SECONDS = 2.0
CONNECT_TIMEOUT_SECONDS = 10.0
MAX_RECONNECT_DELAY_SECONDS = 5.0
# Every way a broker operation can fail without telling us what the broker did.
BROKER_FAILURES = (
    asyncio.TimeoutError,
    aiormq.exceptions.AMQPError,
    aiormq.exceptions.ChannelInvalidStateError,
    ConnectionError,
    OSError,
)


# Added to an update's way to the board at most once per batch; far below BROADCAST_HZ's period.
BATCH_FILL_WAIT_SECONDS = 0.005


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
        arguments={
            "x-dead-letter-exchange": "",
            "x-dead-letter-routing-key": dead_letters,
            "x-max-priority": MAX_PRIORITY,
        },
    )


async def _until_connected(connect: Callable[[], Awaitable[None]], who: str) -> None:
    """Call `connect` until the broker answers, backing off up to 5 seconds."""
    delay = 0.5
    while True:
        try:
            await connect()
            return
        except BROKER_FAILURES as exc:
            log.warning("%s: broker unreachable (%r), retrying in %.1fs", who, exc, delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, MAX_RECONNECT_DELAY_SECONDS)


async def _open(url: str) -> aio_pika.abc.AbstractRobustConnection:
    # Once open, a robust connection reconnects by itself and restores channels and consumers.
    return await aio_pika.connect_robust(url, timeout=CONNECT_TIMEOUT_SECONDS)


class RabbitPublisher:
    """UpdatePublisher that returns only after the broker confirmed the persistent message."""

    def __init__(self, url: str, queue_name: str, signer: MessageSigner | None = None) -> None:
        self._url = url
        self._queue_name = queue_name
        self._signer = signer
        self._connection: aio_pika.abc.AbstractRobustConnection | None = None
        self._channel: aio_pika.abc.AbstractChannel | None = None
        self._connecting: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Connect, or keep trying in the background while publish() answers 503."""
        try:
            await self._connect()
        except BROKER_FAILURES as exc:
            log.warning(
                "web: broker unreachable at start-up (%r); updates get 503 until it is back", exc
            )
            self._connecting = asyncio.create_task(_until_connected(self._connect, "web"))

    async def _connect(self) -> None:
        connection = await _open(self._url)
        try:
            channel = await connection.channel(publisher_confirms=True, on_return_raises=True)
            await declare_queues(channel, self._queue_name)
        except BaseException:
            await connection.close()
            raise
        self._connection, self._channel = connection, channel

    async def publish(self, update: ScoreUpdate, priority: int = 0) -> None:
        await self.publish_group([update], priority)

    async def publish_group(self, updates: Sequence[ScoreUpdate], priority: int = 0) -> None:
        """One persistent message for the whole group, signed and confirmed once."""
        body = encode_group(updates)
        message = aio_pika.Message(
            body,
            content_type="application/json",
            delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
            message_id=updates[0].message_id,
            priority=priority,
            headers={SIGNATURE_HEADER: self._signer.sign(body)} if self._signer else None,
        )
        if self._channel is None:
            raise QueueUnavailable()
        try:
            # mandatory: a message no queue takes is returned as an error, not dropped.
            # asyncio.timeout rather than wait_for: no task of its own for every publish.
            async with asyncio.timeout(PUBLISH_TIMEOUT_SECONDS):
                await self._channel.default_exchange.publish(
                    message, routing_key=self._queue_name, mandatory=True
                )
        except BROKER_FAILURES as exc:
            log.warning("publish of %d updates failed: %r", len(updates), exc)
            raise QueueUnavailable() from exc

    async def close(self) -> None:
        if self._connecting is not None:
            self._connecting.cancel()
        if self._connection is not None:
            await self._connection.close()


@dataclass(frozen=True)
class RabbitDelivery:
    """A decoded update and the AMQP message that carried it."""

    update: ScoreUpdate
    message: aio_pika.abc.AbstractIncomingMessage

    @property
    def redelivered(self) -> bool:
        return bool(self.message.redelivered)

    async def ack(self, multiple: bool = False) -> None:
        try:
            await self.message.ack(multiple=multiple)
        except BROKER_FAILURES as exc:
            # The channel died: the broker redelivers, and the store skips what it applied.
            log.warning("ack failed, the message will be redelivered: %r", exc)

    async def dead_letter(self) -> None:
        await _dead_letter(self.message, "the store refused it")


async def _dead_letter(message: aio_pika.abc.AbstractIncomingMessage, reason: str) -> None:
    log.error("dead-lettering message %s: %s", message.message_id, reason)
    try:
        await message.reject(requeue=False)
    except BROKER_FAILURES as exc:
        log.warning("reject failed, the message will be redelivered: %r", exc)


class RabbitConsumer:
    """UpdateConsumer over a robust connection; at most `prefetch` unacked messages at a time."""

    def __init__(
        self, url: str, queue_name: str, prefetch: int, signer: MessageSigner | None = None
    ) -> None:
        self._url = url
        self._signer = signer
        self._queue_name = queue_name
        self._prefetch = prefetch
        self._inbox: asyncio.Queue[aio_pika.abc.AbstractIncomingMessage | None] = asyncio.Queue()
        self._connection: aio_pika.abc.AbstractRobustConnection | None = None
        self._queue: aio_pika.abc.AbstractQueue | None = None
        self._consumer_tag: str | None = None
        self.dead_lettered = 0

    async def start(self) -> None:
        """Start consuming, waiting for the broker as long as it takes."""
        await _until_connected(self._connect, "worker")

    async def _connect(self) -> None:
        connection = await _open(self._url)
        try:
            channel = await connection.channel()
            await channel.set_qos(prefetch_count=self._prefetch)
            queue = await declare_queues(channel, self._queue_name)
            self._consumer_tag = await queue.consume(self._inbox.put)
        except BaseException:
            await connection.close()
            raise
        self._connection, self._queue = connection, queue

    async def batches(self) -> AsyncIterator[Sequence[RabbitDelivery]]:
        while True:
            first = await self._inbox.get()
            if first is None:
                return
            messages = [first]
            stopping = self._take_ready(messages)
            if not stopping and len(messages) < self._prefetch:
                # Under load a moment's wait fills the batch, and each batch costs a Redis
                # script, a ledger transaction and an ack however few updates it holds.
                await asyncio.sleep(BATCH_FILL_WAIT_SECONDS)
                stopping = self._take_ready(messages)
            batch = [d for d in [await self._decode(m) for m in messages] if d is not None]
            if batch:
                yield batch
            if stopping:
                return

    async def acknowledge(self, batch: Sequence[Delivery]) -> None:
        """One ack per channel for the whole batch: its last delivery tag, with multiple set.

        An AMQP multiple ack settles every outstanding delivery up to that tag on the channel.
        That is the batch and nothing more, because the apply loop settles a batch (acks it,
        or rejects its dead letters) before it takes the next; a batch can hold deliveries of
        two channels when the connection was restored in between.
        """
        last_on_channel: dict[int, RabbitDelivery] = {}
        gone = 0
        for delivery in batch:
            assert isinstance(delivery, RabbitDelivery)
            try:
                last_on_channel[id(delivery.message.channel)] = delivery
            except BROKER_FAILURES:
                gone += 1  # its channel closed: the broker redelivers it, the store skips it
        if gone:
            log.warning("%d applied updates could not be acked and will be redelivered", gone)
        for delivery in last_on_channel.values():
            await delivery.ack(multiple=True)

    def _take_ready(self, messages: list[aio_pika.abc.AbstractIncomingMessage]) -> bool:
        """Move what the inbox holds into `messages`, up to prefetch; True at the stop marker."""
        while len(messages) < self._prefetch and not self._inbox.empty():
            message = self._inbox.get_nowait()
            if message is None:
                return True
            messages.append(message)
        return False

    async def _decode(self, message: aio_pika.abc.AbstractIncomingMessage) -> RabbitDelivery | None:
        """The delivery, or None once a message that is not a valid update is dead-lettered."""
        try:
            if self._signer is not None and not self._signer.verify(
                message.body, (message.headers or {}).get(SIGNATURE_HEADER)
            ):
                raise PoisonMessage("missing or wrong signature")
            return RabbitDelivery(ScoreUpdate.from_message(message.body), message)
        except PoisonMessage as exc:
            self.dead_lettered += 1
            await _dead_letter(message, str(exc))
            return None

    async def stop(self) -> None:
        if self._queue is not None and self._consumer_tag is not None:
            try:
                await self._queue.cancel(self._consumer_tag)
            except BROKER_FAILURES as exc:
                log.warning("could not cancel the consumer: %r", exc)
        self._inbox.put_nowait(None)

    async def close(self) -> None:
        if self._connection is not None:
            await self._connection.close()


class DeadLetters:
    """The dead-letter queue, for admins: look at what is there, send it back to be applied."""

    def __init__(self, url: str, queue_name: str) -> None:
        self._url = url
        self._queue_name = queue_name

    async def peek(self, limit: int) -> list[dict[str, object]]:
        """Up to `limit` dead letters, oldest first; they stay in the queue."""
        try:
            connection = await aio_pika.connect(self._url, timeout=CONNECT_TIMEOUT_SECONDS)
            async with connection:
                channel = await connection.channel()
                queue = await channel.get_queue(dead_letter_queue_name(self._queue_name))
                letters = []
                for _ in range(limit):
                    message = await queue.get(no_ack=False, fail=False)
                    if message is None:
                        break
                    letters.append(_describe(message))
                # Closing the channel unacknowledged puts every peeked message back.
            return letters
        except BROKER_FAILURES as exc:
            raise QueueUnavailable() from exc

    async def replay(self, limit: int) -> int:
        """Move up to `limit` dead letters back to the update queue; return how many moved."""
        moved = 0
        try:
            connection = await aio_pika.connect(self._url, timeout=CONNECT_TIMEOUT_SECONDS)
            async with connection:
                channel = await connection.channel(publisher_confirms=True, on_return_raises=True)
                dead = await channel.get_queue(dead_letter_queue_name(self._queue_name))
                while moved < limit:
                    message = await dead.get(no_ack=False, fail=False)
                    if message is None:
                        break
                    await channel.default_exchange.publish(
                        aio_pika.Message(
                            message.body,
                            content_type=message.content_type,
                            delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                            message_id=message.message_id,
                            priority=message.priority,
                            headers={
                                k: v for k, v in (message.headers or {}).items() if k != "x-death"
                            },
                        ),
                        routing_key=self._queue_name,
                        mandatory=True,
                    )
                    # Acknowledged only once the broker confirmed the copy: nothing is lost.
                    await message.ack()
                    moved += 1
        except BROKER_FAILURES as exc:
            raise QueueUnavailable() from exc
        return moved


def _describe(message: aio_pika.abc.AbstractIncomingMessage) -> dict[str, object]:
    deaths = (message.headers or {}).get("x-death") or []
    first_death = deaths[0] if isinstance(deaths, list) and deaths else {}
    return {
        "messageId": message.message_id,
        "body": message.body.decode(errors="replace")[:2000],
        "reason": str(first_death.get("reason", "")) if isinstance(first_death, dict) else "",
        "signed": SIGNATURE_HEADER in (message.headers or {}),
    }
