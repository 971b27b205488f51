"""RabbitMQ: durable queues, publisher confirms on the web side, manual acks on the worker side."""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass

import aio_pika
import aio_pika.abc
import aiormq.abc
import aiormq.exceptions
import orjson

from scoreboard.errors import PoisonMessage, QueueLayoutConflict, QueueUnavailable
from scoreboard.models import GROUP_FORMAT, ScoreUpdate, decode_message, encode_group
from scoreboard.queue import Delivery
from scoreboard.queue.broker_link import BROKER_FAILURES, CONNECT_TIMEOUT_SECONDS, BrokerLink
from scoreboard.queue.priority_levels import WeightedLevels, weight
from scoreboard.queue.queue_declaring import declare_queues, existing_levels
from scoreboard.queue.queue_layout import QueueLayout, UpdateQueue
from scoreboard.queue.signing import SIGNATURE_HEADER, MessageSigner

log = logging.getLogger(__name__)

PUBLISH_TIMEOUT_SECONDS = 2.0

# Why an update was dead-lettered on its own, out of a message that carried others with it.
REASON_HEADER = "x-scoreboard-reason"

# Added to an update's way to the board at most once per batch; far below BROADCAST_HZ's period.
BATCH_FILL_WAIT_SECONDS = 0.005


class RabbitPublisher:
    """UpdatePublisher that returns only after the broker confirmed the persistent message."""

    def __init__(
        self, urls: tuple[str, ...], layout: QueueLayout, signer: MessageSigner | None = None
    ) -> None:
        self._layout = layout
        self._signer = signer
        self._channel: aio_pika.abc.AbstractChannel | None = None
        self._renewing: asyncio.Task[None] | None = None
        self._link = BrokerLink(urls, "web", self._set_up)

    async def start(self) -> None:
        """Connect, or keep trying in the background while publish() answers 503.

        Raises QueueLayoutConflict when the queues exist with another type or arguments.
        """
        try:
            await self._link.connect()
        except BROKER_FAILURES as exc:
            log.warning(
                "web: broker unreachable at start-up (%r); updates get 503 until it is back", exc
            )
        self._link.keep_connected()

    async def conflict(self) -> QueueLayoutConflict:
        """Wait until a reconnection finds the queues at odds with the configuration."""
        return await self._link.conflict_found()

    async def _set_up(self, connection: aio_pika.abc.AbstractConnection) -> None:
        await declare_queues(connection, self._layout)
        self._channel = await self._open_channel(connection)

    async def _open_channel(
        self, connection: aio_pika.abc.AbstractConnection
    ) -> aio_pika.abc.AbstractChannel:
        channel = await connection.channel(publisher_confirms=True, on_return_raises=True)
        channel.close_callbacks.add(self._on_channel_close)
        return channel

    def _renew(self, channel: aio_pika.abc.AbstractChannel) -> None:
        """Publish on a fresh channel from now on; until it is open, publishes get 503.

        RabbitMQ 3.10 nacks every publish of a channel that first sent to a quorum queue while
        the queue's leader was being elected, long after a new one is; a new channel is fine.
        """
        if channel is not self._channel or self._renewing is not None:
            return  # renewed already, or being renewed
        self._channel = None
        self._renewing = asyncio.create_task(self._replace(channel))

    async def _replace(self, old: aio_pika.abc.AbstractChannel) -> None:
        try:
            connection = self._link.connection
            if connection is not None and not connection.is_closed:
                self._channel = await self._open_channel(connection)
                log.info("web: publishing on a new channel after the broker refused a message")
            await old.close()
        except BROKER_FAILURES as exc:
            log.warning("web: could not open a new channel (%r); reconnecting", exc)
            self._link.drop()
        finally:
            self._renewing = None

    def _on_channel_close(self, channel: object, _exc: BaseException | None) -> None:
        if channel is self._channel:
            self._channel = None
            self._link.drop()  # the broker closed the channel: start afresh on a new connection

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
            # Kept on quorum queues too: a dead letter replayed goes back to its level's queue.
            priority=priority,
            headers={SIGNATURE_HEADER: self._signer.sign(body)} if self._signer else None,
        )
        channel = self._channel
        if channel is None or channel.is_closed:
            raise QueueUnavailable()
        try:
            # mandatory: a message no queue takes is returned as an error, not dropped.
            # asyncio.timeout rather than wait_for: no task of its own for every publish.
            async with asyncio.timeout(PUBLISH_TIMEOUT_SECONDS):
                await channel.default_exchange.publish(
                    message, routing_key=self._layout.queue_for(priority), mandatory=True
                )
        except BROKER_FAILURES as exc:
            log.warning("publish of %d updates failed: %r", len(updates), exc)
            if isinstance(exc, aiormq.exceptions.DeliveryError) and not isinstance(
                exc,
                aiormq.exceptions.PublishError,  # a returned message: no queue took it
            ):
                self._renew(channel)  # a nack
            raise QueueUnavailable() from exc

    async def close(self) -> None:
        if self._renewing is not None:
            self._renewing.cancel()
        await self._link.close()


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
    """UpdateConsumer of every update queue of a layout, taking higher priority levels first.

    Each update queue is consumed on a channel of its own; a batch takes at most `prefetch`
    messages, from the levels by weight (priority_levels.py). One channel per queue keeps each
    channel's deliveries in the order they are settled, which acknowledge() relies on.

    The queue of level n lends the worker up to (n + 1) × `prefetch` unacked messages: the
    levels' windows stand in the ratio of their weights, so the broker keeps each level's inbox
    supplied in its share even when the worker takes messages faster than the broker refills
    them (a level whose inbox ran dry for a moment would lose its turn to the others). One
    queue of level 0, classic or quorum, holds `prefetch`, as before.
    """

    def __init__(
        self,
        urls: tuple[str, ...],
        layout: QueueLayout,
        prefetch: int,
        signer: MessageSigner | None = None,
    ) -> None:
        self._signer = signer
        self._layout = layout
        self._prefetch = prefetch
        self._windows: dict[aiormq.abc.AbstractChannel, int] = {}  # prefetch of each channel
        self._inboxes: dict[int, deque[aio_pika.abc.AbstractIncomingMessage]] = {
            level: deque() for level in layout.levels
        }
        self._arrived = asyncio.Event()  # some inbox holds a message, or stop() was called
        self._stop_called = False  # take no new consumer
        self._stopping = False  # no message comes any more: end batches() once all are taken
        self._levels = WeightedLevels()
        self._consuming: list[tuple[aio_pika.abc.AbstractQueue, str]] = []
        self._dead_letter_channel: aio_pika.abc.AbstractChannel | None = None
        # Update ids whose message was acked, by the channel the ack went out on.
        self._unconfirmed: dict[aiormq.abc.AbstractChannel, list[str]] = {}
        self.dead_lettered = 0  # updates dead-lettered before they reached the apply loop
        self._link = BrokerLink(urls, "worker", self._set_up)

    @property
    def connected(self) -> bool:
        """Whether it is connected and consuming now (the link reconnects by itself)."""
        connection = self._link.connection
        return connection is not None and not connection.is_closed and bool(self._consuming)

    async def start(self) -> None:
        """Start consuming, waiting for the broker as long as it takes.

        Raises QueueLayoutConflict when the queues exist with another type or arguments.
        """
        await self._link.connect_patiently()
        self._link.keep_connected()

    async def conflict(self) -> QueueLayoutConflict:
        """Wait until a reconnection finds the queues at odds with the configuration."""
        return await self._link.conflict_found()

    async def _set_up(self, connection: aio_pika.abc.AbstractConnection) -> None:
        await declare_queues(connection, self._layout)
        if self._stop_called:
            return
        leftover = await existing_levels(connection, self._layout)
        if leftover:
            log.warning(
                "consuming the queues of priority levels %s too: TIER_PRIORITIES no longer "
                "gives them, but they exist and may hold accepted updates",
                leftover,
            )
        queues = [*self._layout.update_queues, *map(self._layout.update_queue, leftover)]
        self._windows = {}
        consuming = [await self._consume(connection, queue) for queue in queues]
        self._consuming, self._dead_letter_channel = consuming, None

    async def _consume(
        self, connection: aio_pika.abc.AbstractConnection, queue: UpdateQueue
    ) -> tuple[aio_pika.abc.AbstractQueue, str]:
        channel = await connection.channel()
        window = self._prefetch * weight(queue.level)
        await channel.set_qos(prefetch_count=window)
        self._windows[await channel.get_underlay_channel()] = window
        declared = await channel.get_queue(queue.name, ensure=False)

        async def receive(message: aio_pika.abc.AbstractIncomingMessage) -> None:
            self._hold(queue.level, message)

        tag = await declared.consume(receive)
        channel.close_callbacks.add(self._on_channel_close)
        return declared, tag

    def _on_channel_close(self, channel: object, _exc: BaseException | None) -> None:
        # A consumer the broker closed would take no more messages: start afresh.
        if not self._stop_called:
            self._link.drop()

    def _hold(self, level: int, message: aio_pika.abc.AbstractIncomingMessage) -> None:
        """Keep a delivery until a batch takes it."""
        self._inboxes.setdefault(level, deque()).append(message)
        self._arrived.set()

    def _waiting(self) -> int:
        return sum(len(inbox) for inbox in self._inboxes.values())

    async def batches(self) -> AsyncIterator[Sequence[RabbitDelivery]]:
        while True:
            await self._arrived.wait()
            if not self._stopping and self._waiting() < self._prefetch:
                # Under load a moment's wait fills the batch, and each batch costs a Redis
                # script, a ledger transaction and an ack however few updates it holds.
                await asyncio.sleep(BATCH_FILL_WAIT_SECONDS)
            messages = self._levels.take(self._inboxes, self._prefetch)
            if not self._waiting() and not self._stopping:
                self._arrived.clear()
            batch = [d for m in messages for d in await self._decode(m)]
            if batch:
                yield batch
            if self._stopping and not self._waiting():
                return

    async def acknowledge(self, batch: Sequence[Delivery]) -> None:
        """One ack per channel for the whole batch: its last delivery tag, with multiple set.

        An AMQP multiple ack settles every outstanding delivery up to that tag on the channel.
        That is the batch and nothing more, because the apply loop settles a batch (applies or
        dead-letters every update of it) before it takes the next, and all the updates of one
        message are in one batch. A rejected message is no longer outstanding: the ack goes on
        the last message of each channel that was not rejected (acking a rejected tag would be
        a channel error). A batch holds deliveries of one channel per priority level, each
        channel's in the order it delivered them, and of an old channel too when the connection
        was made again in between.
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
                    window = self._windows.get(channel, self._prefetch)
                    await channel.basic_qos(prefetch_count=window)
            except BROKER_FAILURES as exc:
                log.info("%d acks could not be confirmed (%r); kept for a day", len(ids), exc)
                continue
            confirmed += ids
        return confirmed

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
                    copy, routing_key=self._layout.dead_letter_queue, mandatory=True
                )
        except BROKER_FAILURES as exc:
            await carrier.reject(f"its update {index} could not be dead-lettered: {exc!r}", True)

    async def _confirming_channel(self) -> aio_pika.abc.AbstractChannel:
        if self._dead_letter_channel is None or self._dead_letter_channel.is_closed:
            connection = self._link.connection
            if connection is None:
                raise ConnectionError("not connected")
            self._dead_letter_channel = await connection.channel(
                publisher_confirms=True, on_return_raises=True
            )
        return self._dead_letter_channel

    async def stop(self) -> None:
        self._stop_called = True
        for queue, consumer_tag in self._consuming:
            try:
                await queue.cancel(consumer_tag)
            except BROKER_FAILURES as exc:
                log.warning("could not cancel the consumer of %s: %r", queue.name, exc)
        # Only now: what was delivered before each consumer's cancel-ok is in the inboxes.
        self._stopping = True
        self._arrived.set()

    async def close(self) -> None:
        await self._link.close()
