"""RabbitMQ: a durable queue, publisher confirms on the web side, manual acks on the worker side."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass

import aio_pika
import aio_pika.abc
import aiormq.abc
import aiormq.exceptions
import orjson

from scoreboard.config import MAX_PRIORITY
from scoreboard.errors import PoisonMessage, QueueUnavailable
from scoreboard.models import GROUP_FORMAT, ScoreUpdate, decode_message, encode_group
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


# Why an update was dead-lettered on its own, out of a message that carried others with it.
REASON_HEADER = "x-scoreboard-reason"

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


@dataclass(eq=False)
class _Carrier:
    """One AMQP message as taken from the queue, and the updates it carries."""

    message: aio_pika.abc.AbstractIncomingMessage
    updates: int  # entries in the message, malformed ones included
    # Rejected (dead-lettered whole, or handed back): no longer outstanding, never to be acked.
    rejected: bool = False

    async def reject(self, reason: str, requeue: bool = False) -> None:
        log.error("dead-lettering message %s: %s", self.message.message_id, reason)
        self.rejected = True
        try:
            await self.message.reject(requeue=requeue)
        except BROKER_FAILURES as exc:
            log.warning("reject failed, the message will be redelivered: %r", exc)


@dataclass(frozen=True)
class RabbitDelivery:
    """A decoded update, the AMQP message that carried it and its place in that message."""

    update: ScoreUpdate
    carrier: _Carrier
    index: int
    consumer: RabbitConsumer

    @property
    def message(self) -> aio_pika.abc.AbstractIncomingMessage:
        return self.carrier.message

    @property
    def redelivered(self) -> bool:
        return bool(self.message.redelivered)

    async def ack(self) -> None:
        """Ack the whole message: only for a message of this one update (use acknowledge())."""
        try:
            await self.message.ack()
        except BROKER_FAILURES as exc:
            # The channel died: the broker redelivers, and the store skips what it applied.
            log.warning("ack failed, the message will be redelivered: %r", exc)

    async def dead_letter(self, reason: str = "the store refused it") -> None:
        await self.consumer.dead_letter_entry(self.carrier, self.index, reason)


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
        self._dead_letter_channel: aio_pika.abc.AbstractChannel | None = None
        # Update ids whose message was acked, by the channel the ack went out on.
        self._unconfirmed: dict[aiormq.abc.AbstractChannel, list[str]] = {}
        self.dead_lettered = 0  # updates dead-lettered before they reached the apply loop

    async def start(self) -> None:
        """Start consuming, waiting for the broker as long as it takes."""
        await _until_connected(self._connect, "worker")

    @property
    def connected(self) -> bool:
        """Whether its connection is up now; a robust one reconnects and resumes by itself."""
        return self._connection is not None and self._connection.connected.is_set()

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
            batch = [d for m in messages for d in await self._decode(m)]
            if batch:
                yield batch
            if stopping:
                return

    async def acknowledge(self, batch: Sequence[Delivery]) -> None:
        """One ack per channel for the whole batch: its last delivery tag, with multiple set.

        An AMQP multiple ack settles every outstanding delivery up to that tag on the channel.
        That is the batch and nothing more, because the apply loop settles a batch (applies or
        dead-letters every update of it) before it takes the next, and all the updates of one
        message are in one batch. A rejected message is no longer outstanding: the ack goes on
        the last message of each channel that was not rejected (acking a rejected tag would be
        a channel error). A batch can hold deliveries of two channels when the connection was
        restored in between.
        """
        carriers: dict[int, tuple[_Carrier, list[str]]] = {}
        for delivery in batch:
            assert isinstance(delivery, RabbitDelivery)
            ids = carriers.setdefault(id(delivery.carrier), (delivery.carrier, []))[1]
            ids.append(delivery.update.message_id)
        last_on_channel: dict[aiormq.abc.AbstractChannel, _Carrier] = {}
        settled: dict[aiormq.abc.AbstractChannel, list[str]] = {}
        gone = 0
        for carrier, ids in carriers.values():
            if carrier.rejected:
                continue
            try:
                channel = carrier.message.channel
            except BROKER_FAILURES:
                gone += 1  # its channel closed: the broker redelivers it, the store skips it
                continue
            last_on_channel[channel] = carrier
            settled.setdefault(channel, []).extend(ids)
        if gone:
            log.warning("%d applied messages could not be acked and will be redelivered", gone)
        for channel, carrier in last_on_channel.items():
            try:
                await carrier.message.ack(multiple=True)
            except BROKER_FAILURES as exc:
                log.warning("ack failed, the messages will be redelivered: %r", exc)
                continue
            self._unconfirmed.setdefault(channel, []).extend(settled[channel])

    async def confirm_acks(self) -> list[str]:
        """Ids of applied updates whose ack the broker has processed: they cannot come back.

        An ack has no reply, but the broker processes a channel's methods in order: once a
        basic.qos sent after the acks on the same channel is answered, the acks are settled.
        A channel that closed in between (its messages return to the queue) confirms nothing.
        """
        pending, self._unconfirmed = self._unconfirmed, {}
        confirmed: list[str] = []
        for channel, ids in pending.items():
            try:
                async with asyncio.timeout(CONNECT_TIMEOUT_SECONDS):
                    await channel.basic_qos(prefetch_count=self._prefetch)
            except BROKER_FAILURES as exc:
                log.info("%d acks could not be confirmed (%r); kept for a day", len(ids), exc)
                continue
            confirmed += ids
        return confirmed

    def _take_ready(self, messages: list[aio_pika.abc.AbstractIncomingMessage]) -> bool:
        """Move what the inbox holds into `messages`, up to prefetch; True at the stop marker."""
        while len(messages) < self._prefetch and not self._inbox.empty():
            message = self._inbox.get_nowait()
            if message is None:
                return True
            messages.append(message)
        return False

    async def _decode(self, message: aio_pika.abc.AbstractIncomingMessage) -> list[RabbitDelivery]:
        """A delivery per valid update; what is not a valid update is dead-lettered."""
        try:
            if self._signer is not None and not self._signer.verify(
                message.body, (message.headers or {}).get(SIGNATURE_HEADER)
            ):
                raise PoisonMessage("missing or wrong signature")
            entries = decode_message(message.body)
            if all(isinstance(entry, PoisonMessage) for entry in entries):
                # Nothing in it to apply: it goes aside whole, and no delivery is left to ack it.
                raise PoisonMessage(f"none of its {len(entries)} updates is valid: {entries[0]}")
        except PoisonMessage as exc:
            self.dead_lettered += 1
            await _Carrier(message, 1).reject(str(exc))
            return []
        carrier = _Carrier(message, len(entries))
        deliveries = []
        for index, entry in enumerate(entries):
            if isinstance(entry, PoisonMessage):
                self.dead_lettered += 1
                await self.dead_letter_entry(carrier, index, str(entry))
            else:
                deliveries.append(RabbitDelivery(entry, carrier, index, self))
        return deliveries

    async def dead_letter_entry(self, carrier: _Carrier, index: int, reason: str) -> None:
        """Move one update of a message to the dead-letter queue, its neighbours staying.

        A message of that update alone is rejected to the dead-letter queue. Otherwise a copy
        holding just that entry goes there, and the message is acked with its batch; should the
        copy fail, the whole message goes back to the queue (what was applied is skipped then).
        """
        if carrier.updates == 1:
            await carrier.reject(reason)
            return
        if carrier.rejected:
            return  # handed back already: the entry is tried again with the rest
        message = carrier.message
        log.error(
            "dead-lettering update %d of message %s on its own: %s",
            index,
            message.message_id,
            reason,
        )
        entry = orjson.loads(message.body)["updates"][index]
        body = b'{"v":%d,"updates":[%s]}' % (GROUP_FORMAT, orjson.dumps(entry))
        headers: dict[str, aio_pika.abc.FieldValue] = {REASON_HEADER: reason}
        if self._signer is not None:
            headers[SIGNATURE_HEADER] = self._signer.sign(body)
        message_id = entry.get("id") if isinstance(entry, dict) else None
        copy = aio_pika.Message(
            body,
            content_type="application/json",
            delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
            message_id=message_id if isinstance(message_id, str) else message.message_id,
            headers=headers,
        )
        try:
            channel = await self._confirming_channel()
            async with asyncio.timeout(PUBLISH_TIMEOUT_SECONDS):
                await channel.default_exchange.publish(
                    copy, routing_key=dead_letter_queue_name(self._queue_name), mandatory=True
                )
        except BROKER_FAILURES as exc:
            await carrier.reject(f"its update {index} could not be dead-lettered: {exc!r}", True)

    async def _confirming_channel(self) -> aio_pika.abc.AbstractChannel:
        if self._dead_letter_channel is None or self._dead_letter_channel.is_closed:
            if self._connection is None:
                raise ConnectionError("not connected")
            self._dead_letter_channel = await self._connection.channel(
                publisher_confirms=True, on_return_raises=True
            )
        return self._dead_letter_channel

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
                                k: v
                                for k, v in (message.headers or {}).items()
                                if k not in ("x-death", REASON_HEADER)
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
    headers = message.headers or {}
    deaths = headers.get("x-death") or []
    first_death = deaths[0] if isinstance(deaths, list) and deaths else {}
    # An update dead-lettered out of a group is a copy published there, not a rejected message.
    reason = headers.get(REASON_HEADER) or (
        first_death.get("reason", "") if isinstance(first_death, dict) else ""
    )
    return {
        "messageId": message.message_id,
        "body": message.body.decode(errors="replace")[:2000],
        "reason": str(reason),
        "signed": SIGNATURE_HEADER in (message.headers or {}),
    }
