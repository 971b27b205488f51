"""The RabbitMQ publisher and consumer on the real broker: confirms, batches, redelivery, poison."""

from __future__ import annotations

import asyncio

import aio_pika
import pytest

from scoreboard.models import ScoreUpdate
from scoreboard.queue.queue_declaring import declare_queues
from scoreboard.queue.queue_layout import QueueLayout, dead_letter_queue_name
from scoreboard.queue.rabbitmq import RabbitConsumer, RabbitPublisher
from scoreboard.queue.signing import SIGNATURE_HEADER, MessageSigner
from tests.conftest import RABBITMQ_URL, RABBITMQ_URLS


async def next_batch(consumer: RabbitConsumer, expected: int):
    """Collect deliveries until `expected` updates arrived (a batch holds what was ready)."""
    deliveries, batches = [], []
    iterator = consumer.batches()
    while len(deliveries) < expected:
        batch = await asyncio.wait_for(anext(iterator), 5)
        batches.append(batch)
        deliveries.extend(batch)
    return [d.update for d in deliveries], deliveries


async def ack_all(deliveries) -> None:
    for delivery in deliveries:
        await delivery.ack()


async def started(publisher: RabbitPublisher) -> RabbitPublisher:
    await publisher.start()
    return publisher


async def queue_depth(name: str) -> int:
    connection = await aio_pika.connect(RABBITMQ_URL)
    async with connection:
        queue = await (await connection.channel()).declare_queue(name, passive=True)
        return queue.declaration_result.message_count


@pytest.fixture
async def publisher(namespace: str, delete_queues: None):
    publisher = await started(RabbitPublisher(RABBITMQ_URLS, QueueLayout(namespace)))
    yield publisher
    await publisher.close()


async def test_published_updates_arrive_intact_and_acked_ones_leave(publisher, namespace):
    sent = [ScoreUpdate.new(f"user{i}", f"User {i}", i + 1) for i in range(5)]
    for update in sent:
        await publisher.publish(update)
    consumer = RabbitConsumer(RABBITMQ_URLS, QueueLayout(namespace), prefetch=10)
    await consumer.start()
    received, deliveries = await next_batch(consumer, 5)
    assert received == sent
    assert not any(d.redelivered for d in deliveries)
    await ack_all(deliveries)
    await consumer.stop()
    await consumer.close()
    assert await queue_depth(namespace) == 0


async def test_unacknowledged_updates_are_redelivered_to_the_next_consumer(publisher, namespace):
    update = ScoreUpdate.new("alice", "Alice", 3)
    await publisher.publish(update)
    crashed = RabbitConsumer(RABBITMQ_URLS, QueueLayout(namespace), prefetch=10)
    await crashed.start()
    assert (await next_batch(crashed, 1))[0] == [update]
    await crashed.close()  # closes without acking, like a killed worker

    successor = RabbitConsumer(RABBITMQ_URLS, QueueLayout(namespace), prefetch=10)
    await successor.start()
    received, deliveries = await next_batch(successor, 1)
    assert received == [update]
    assert deliveries[0].redelivered
    await ack_all(deliveries)
    await successor.close()


async def test_poison_messages_go_to_the_dead_letter_queue(publisher, namespace):
    connection = await aio_pika.connect(RABBITMQ_URL)
    async with connection:
        channel = await connection.channel()
        for body in (b"not json", b'{"v": 1, "id": "x"}', b'{"v": 99}'):
            await channel.default_exchange.publish(aio_pika.Message(body), routing_key=namespace)
    good = ScoreUpdate.new("alice", "Alice", 1)
    await publisher.publish(good)
    consumer = RabbitConsumer(RABBITMQ_URLS, QueueLayout(namespace), prefetch=10)
    await consumer.start()
    received, deliveries = await next_batch(consumer, 1)
    assert received == [good]
    await ack_all(deliveries)
    await consumer.close()
    assert consumer.dead_lettered == 3
    assert await queue_depth(dead_letter_queue_name(namespace)) == 3
    assert await queue_depth(namespace) == 0


async def test_prefetch_bounds_a_batch(publisher, namespace):
    for _ in range(7):
        await publisher.publish(ScoreUpdate.new("alice", "Alice", 1))
    consumer = RabbitConsumer(RABBITMQ_URLS, QueueLayout(namespace), prefetch=3)
    await consumer.start()
    _, deliveries = await next_batch(consumer, 3)
    assert len(deliveries) <= 3
    await consumer.close()


async def test_stop_ends_the_batches_after_what_was_taken(publisher, namespace):
    consumer = RabbitConsumer(RABBITMQ_URLS, QueueLayout(namespace), prefetch=10)
    await consumer.start()
    await consumer.stop()
    assert [batch async for batch in consumer.batches()] == []
    await consumer.close()


async def test_signed_messages_pass_and_unsigned_or_tampered_ones_are_dead_lettered(
    namespace, delete_queues
):
    signer = MessageSigner("k" * 32)
    signed = ScoreUpdate.new("alice", "Alice", 2)
    forged = ScoreUpdate.new("mallory", "Mallory", 1_000_000).message
    connection = await aio_pika.connect(RABBITMQ_URL)
    async with connection:
        channel = await connection.channel()
        await declare_queues(connection, QueueLayout(namespace))
        exchange = channel.default_exchange
        await exchange.publish(aio_pika.Message(forged), routing_key=namespace)
        wrong_key = MessageSigner("x" * 32).sign(forged)
        await exchange.publish(
            aio_pika.Message(forged, headers={SIGNATURE_HEADER: wrong_key}), routing_key=namespace
        )
        tampered = signed.message.replace(b'"increment":2', b'"increment":9')
        await exchange.publish(
            aio_pika.Message(tampered, headers={SIGNATURE_HEADER: signer.sign(signed.message)}),
            routing_key=namespace,
        )
    publisher = await started(RabbitPublisher(RABBITMQ_URLS, QueueLayout(namespace), signer))
    await publisher.publish(signed)  # last, so the consumer passes the forgeries first
    await publisher.close()
    consumer = RabbitConsumer(RABBITMQ_URLS, QueueLayout(namespace), prefetch=10, signer=signer)
    await consumer.start()
    received, deliveries = await next_batch(consumer, 1)
    assert received == [signed]
    await ack_all(deliveries)
    await consumer.close()
    assert consumer.dead_lettered == 3
    assert await queue_depth(dead_letter_queue_name(namespace)) == 3


async def test_dead_letter_moves_a_delivery_aside(publisher, namespace):
    await publisher.publish(ScoreUpdate.new("alice", "Alice", 1))
    consumer = RabbitConsumer(RABBITMQ_URLS, QueueLayout(namespace), prefetch=10)
    await consumer.start()
    _, deliveries = await next_batch(consumer, 1)
    await deliveries[0].dead_letter()
    await consumer.close()
    assert await queue_depth(dead_letter_queue_name(namespace)) == 1
    assert await queue_depth(namespace) == 0


class HeldMessage:
    """What the consumer reads of a delivery: body and headers (no broker needed to batch)."""

    def __init__(self, update: ScoreUpdate) -> None:
        self.body = update.message
        self.headers: dict[str, object] = {}


async def test_a_batch_waits_a_moment_for_updates_still_arriving():
    consumer = RabbitConsumer(RABBITMQ_URLS, QueueLayout("not-consumed"), prefetch=10)
    first, second = ScoreUpdate.new("alice", "Alice", 1), ScoreUpdate.new("bob", "Bob", 2)
    consumer._hold(0, HeldMessage(first))  # as aio-pika hands deliveries over
    asyncio.get_running_loop().call_later(0.002, consumer._hold, 0, HeldMessage(second))
    batch = await asyncio.wait_for(anext(consumer.batches()), 5)
    assert [delivery.update for delivery in batch] == [first, second]
