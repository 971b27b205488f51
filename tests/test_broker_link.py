"""Several broker URLs: a process uses the first node that answers, and keeps trying the others."""

from __future__ import annotations

import asyncio

import pytest

from scoreboard.errors import QueueUnavailable
from scoreboard.models import ScoreUpdate
from scoreboard.queue.broker_link import connect_first
from scoreboard.queue.queue_layout import QueueLayout
from scoreboard.queue.rabbitmq import RabbitConsumer, RabbitPublisher
from tests.conftest import RABBITMQ_URL
from tests.processes import free_port
from tests.test_rabbitmq import queue_depth


def nobody() -> str:
    """The URL of a node that does not answer: nothing listens on its port."""
    return f"amqp://guest:guest@127.0.0.1:{free_port()}/"


async def test_the_first_node_that_answers_is_used(namespace, delete_queues):
    urls = (nobody(), nobody(), RABBITMQ_URL)
    publisher = RabbitPublisher(urls, QueueLayout(namespace))
    await publisher.start()
    update = ScoreUpdate.new("alice", "Alice", 1)
    await publisher.publish(update)
    await publisher.close()
    assert await queue_depth(namespace) == 1
    consumer = RabbitConsumer(urls, QueueLayout(namespace), prefetch=10)
    await consumer.start()
    [delivery] = await asyncio.wait_for(anext(consumer.batches()), 5)
    assert delivery.update == update
    await consumer.close()


async def test_each_round_starts_after_the_node_used_last():
    urls = (RABBITMQ_URL, nobody(), RABBITMQ_URL + "?name=second")
    first, index = await connect_first(urls)
    await first.close()
    assert index == 0
    second, index = await connect_first(urls, start=index + 1)
    await second.close()
    assert index == 2  # the dead node in between was skipped


async def test_with_no_node_answering_a_web_node_starts_and_answers_503(namespace):
    publisher = RabbitPublisher((nobody(), nobody()), QueueLayout(namespace))
    await publisher.start()  # does not wait for the broker
    with pytest.raises(QueueUnavailable):
        await publisher.publish(ScoreUpdate.new("alice", "Alice", 1))
    await publisher.close()
