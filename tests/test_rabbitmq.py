"""The RabbitMQ publisher and consumer on the real broker: confirms, batches, redelivery, poison."""

from __future__ import annotations

import asyncio

import aio_pika
import pytest

from scoreboard.broker.rabbitmq import RabbitConsumer, RabbitPublisher, dead_letter_queue_name
from scoreboard.models import ScoreUpdate
from tests.conftest import RABBITMQ_URL


async def next_batch(consumer: RabbitConsumer, expected: int):
    """Collect batches until `expected` updates arrived (a batch holds what was ready)."""
    updates, batches = [], []
    iterator = consumer.batches()
    while len(updates) < expected:
        batch = await asyncio.wait_for(anext(iterator), 5)
        batches.append(batch)
        updates.extend(batch.updates)
    return updates, batches


async def queue_depth(name: str) -> int:
    connection = await aio_pika.connect(RABBITMQ_URL)
    async with connection:
        queue = await (await connection.channel()).declare_queue(name, passive=True)
        return queue.declaration_result.message_count


@pytest.fixture
async def publisher(namespace: str, delete_queues: None):
    publisher = await RabbitPublisher.connect(RABBITMQ_URL, namespace)
    yield publisher
    await publisher.close()


async def test_published_updates_arrive_intact_and_acked_ones_leave(publisher, namespace):
    sent = [ScoreUpdate.new(f"user{i}", f"User {i}", i + 1) for i in range(5)]
    for update in sent:
        await publisher.publish(update)
    consumer = RabbitConsumer(RABBITMQ_URL, namespace, prefetch=10)
    await consumer.start()
    received, batches = await next_batch(consumer, 5)
    assert received == sent
    for batch in batches:
        await batch.ack()
    await consumer.stop()
    await consumer.close()
    assert await queue_depth(namespace) == 0


async def test_unacknowledged_updates_are_redelivered_to_the_next_consumer(publisher, namespace):
    update = ScoreUpdate.new("alice", "Alice", 3)
    await publisher.publish(update)
    crashed = RabbitConsumer(RABBITMQ_URL, namespace, prefetch=10)
    await crashed.start()
    assert (await next_batch(crashed, 1))[0] == [update]
    await crashed.close()  # closes without acking, like a killed worker

    successor = RabbitConsumer(RABBITMQ_URL, namespace, prefetch=10)
    await successor.start()
    received, batches = await next_batch(successor, 1)
    assert received == [update]
    await batches[0].ack()
    await successor.close()


async def test_poison_messages_go_to_the_dead_letter_queue(publisher, namespace):
    connection = await aio_pika.connect(RABBITMQ_URL)
    async with connection:
        channel = await connection.channel()
        for body in (b"not json", b'{"v": 1, "id": "x"}', b'{"v": 99}'):
            await channel.default_exchange.publish(aio_pika.Message(body), routing_key=namespace)
    good = ScoreUpdate.new("alice", "Alice", 1)
    await publisher.publish(good)
    consumer = RabbitConsumer(RABBITMQ_URL, namespace, prefetch=10)
    await consumer.start()
    received, batches = await next_batch(consumer, 1)
    assert received == [good]
    await batches[-1].ack()
    await consumer.close()
    assert consumer.dead_lettered == 3
    assert await queue_depth(dead_letter_queue_name(namespace)) == 3
    assert await queue_depth(namespace) == 0


async def test_prefetch_bounds_a_batch(publisher, namespace):
    for _ in range(7):
        await publisher.publish(ScoreUpdate.new("alice", "Alice", 1))
    consumer = RabbitConsumer(RABBITMQ_URL, namespace, prefetch=3)
    await consumer.start()
    _, batches = await next_batch(consumer, 3)
    assert all(len(batch.updates) <= 3 for batch in batches)
    await consumer.close()


async def test_stop_ends_the_batches_after_what_was_taken(publisher, namespace):
    consumer = RabbitConsumer(RABBITMQ_URL, namespace, prefetch=10)
    await consumer.start()
    await consumer.stop()
    assert [batch async for batch in consumer.batches()] == []
    await consumer.close()
