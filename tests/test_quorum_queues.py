"""QUEUE_TYPE=quorum on the real broker: a queue per priority level, the broker's delivery limit,
dead letters, and a queue of the other type refused by name."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import aio_pika
import pytest
from aiohttp.test_utils import TestClient

from scoreboard.config import Settings
from scoreboard.errors import QueueLayoutConflict
from scoreboard.intake.auth import issue_token
from scoreboard.models import ScoreUpdate
from scoreboard.queue.dead_letters import DeadLetters
from scoreboard.queue.queue_declaring import declare_queues
from scoreboard.queue.queue_depth import QueueProbe
from scoreboard.queue.queue_layout import QueueLayout
from scoreboard.queue.rabbitmq import RabbitConsumer, RabbitPublisher
from scoreboard.web.app import create_app
from tests.conftest import JWT_SECRET, RABBITMQ_URL, RABBITMQ_URLS, bearer
from tests.private_services import PrivateRabbitMQ
from tests.processes import Processes, run_to_exit
from tests.test_rabbitmq import queue_depth, started

CONFLICT_EXIT = os.EX_CONFIG


def quorum(namespace: str, *priorities: int, delivery_limit: int = 4) -> QueueLayout:
    return QueueLayout(namespace, "quorum", frozenset(priorities), delivery_limit)


async def declared_as(name: str, arguments: dict) -> bool:
    """Whether the queue exists with these arguments (RabbitMQ refuses a redeclare otherwise)."""
    connection = await aio_pika.connect(RABBITMQ_URL)
    async with connection:
        channel = await connection.channel()
        try:
            await channel.declare_queue(name, passive=True)
            await channel.declare_queue(name, durable=True, arguments=arguments)
            return True
        except aio_pika.exceptions.ChannelPreconditionFailed:
            return False


async def take(
    consumer: RabbitConsumer, count: int, ack: bool = True, apply_seconds: float = 0.0
) -> list[ScoreUpdate]:
    """The next `count` updates in the order the consumer's batches hand them out."""
    taken = []
    batches = consumer.batches()
    while len(taken) < count:
        batch = await asyncio.wait_for(anext(batches), 10)
        taken.extend(d.update for d in batch)
        await asyncio.sleep(apply_seconds)
        if ack:
            await consumer.acknowledge(batch)
    return taken


async def test_updates_go_to_the_quorum_queue_of_their_priority_level(namespace, delete_queues):
    layout = quorum(namespace, 5)
    publisher = await started(RabbitPublisher(RABBITMQ_URLS, layout))
    low, high, higher = (ScoreUpdate.new(u, u, 1) for u in ("low", "high", "higher"))
    await publisher.publish(low, priority=0)
    await publisher.publish(high, priority=5)
    await publisher.publish(higher, priority=7)  # no level 7: the highest below it
    await publisher.close()
    for queue in layout.update_queues:
        assert queue.arguments["x-queue-type"] == "quorum"
        assert await declared_as(queue.name, queue.arguments)
    assert await declared_as(f"{namespace}.dead", {"x-queue-type": "quorum"})
    assert (await queue_depth(namespace), await queue_depth(f"{namespace}.p5")) == (1, 2)
    probe = QueueProbe(RABBITMQ_URLS, layout)
    assert await probe.depths() == {"main": 3, "dead_letter": 0}
    await probe.close()

    consumer = RabbitConsumer(RABBITMQ_URLS, layout, prefetch=10)
    await consumer.start()
    assert sorted(u.user_id for u in await take(consumer, 3)) == ["high", "higher", "low"]
    await consumer.close()
    assert await probe.depths() == {"main": 0, "dead_letter": 0}
    await probe.close()


def token(user: str, tier: str) -> str:
    return issue_token(JWT_SECRET, user, user.title(), extra_claims={"tier": tier})


async def post(api: TestClient, user: str, tier: str) -> int:
    response = await api.post(
        "/api/score/update",
        json={"userId": user, "scoreIncrement": 1},
        headers=bearer(token(user, tier)),
    )
    return response.status


async def test_under_a_backlog_premium_overtakes_and_free_still_moves(aiohttp_client, env):
    env = {**env, "QUEUE_TYPE": "quorum", "TIER_PRIORITIES": "free=0,premium=5"}
    env["RATE_LIMIT"] = "1000/minute"
    settings = Settings.from_env(env)
    api = await aiohttp_client(create_app(settings))
    # Free updates queue first; the premium ones arrive behind the whole free backlog.
    for i in range(60):
        assert await post(api, f"free{i % 6}", "free") == 200
    for i in range(60):
        assert await post(api, f"vip{i % 6}", "premium") == 200
    consumer = RabbitConsumer(RABBITMQ_URLS, QueueLayout.of(settings), prefetch=10)
    await consumer.start()
    # As under a backlog: the worker, busy, finds its windows of both levels full.
    await asyncio.sleep(1.0)
    order = [u.user_id for u in await take(consumer, 120, apply_seconds=0.005)]
    await consumer.close()
    premium = [i for i, user in enumerate(order) if user.startswith("vip")]
    free = [i for i, user in enumerate(order) if user.startswith("free")]
    print("positions of premium updates:", premium, "of free updates:", free)
    # (a) premium overtakes: all 60 are through while most of the free backlog still waits
    assert max(premium) < 80, order
    # (b) free is not starved: about one in seven goes through while premium ones wait
    assert min(free) < 10 and sum(1 for i in free if i < max(premium)) >= 7, order


async def test_the_broker_dead_letters_a_message_returned_past_the_delivery_limit(
    namespace, delete_queues
):
    layout = quorum(namespace, 5, delivery_limit=1)
    publisher = await started(RabbitPublisher(RABBITMQ_URLS, layout))
    killer = ScoreUpdate.new("alice", "Alice", 3)
    await publisher.publish(killer, priority=5)
    await publisher.close()
    for _ in range(2):  # a worker takes it and dies, twice
        crashed = RabbitConsumer(RABBITMQ_URLS, layout, prefetch=10)
        await crashed.start()
        assert await take(crashed, 1, ack=False) == [killer]
        await crashed.close()
    for _ in range(50):
        if await queue_depth(f"{namespace}.dead") == 1:
            break
        await asyncio.sleep(0.1)
    assert await queue_depth(f"{namespace}.p5") == 0
    dead_letters = DeadLetters(RABBITMQ_URLS, layout)
    [letter] = await dead_letters.peek(10)
    assert letter["reason"] == "delivery_limit"
    assert killer.message_id in letter["body"]
    # Replayed, it goes back to the queue of its priority level, and is applied from there.
    assert await dead_letters.replay(10) == 1
    assert (await queue_depth(f"{namespace}.p5"), await queue_depth(f"{namespace}.dead")) == (1, 0)
    consumer = RabbitConsumer(RABBITMQ_URLS, layout, prefetch=10)
    await consumer.start()
    assert await take(consumer, 1) == [killer]
    await consumer.close()


async def test_a_level_tier_priorities_no_longer_gives_is_still_drained(namespace, delete_queues):
    publisher = await started(RabbitPublisher(RABBITMQ_URLS, quorum(namespace, 5)))
    stranded = ScoreUpdate.new("vip", "Vip", 1)
    await publisher.publish(stranded, priority=5)
    await publisher.close()
    consumer = RabbitConsumer(RABBITMQ_URLS, quorum(namespace), prefetch=10)  # premium=5 gone
    await consumer.start()
    assert await take(consumer, 1) == [stranded]
    await consumer.close()


async def test_a_classic_queue_is_not_taken_for_a_quorum_one(namespace, delete_queues):
    connection = await aio_pika.connect(RABBITMQ_URL)
    async with connection:
        await declare_queues(connection, QueueLayout(namespace))
        with pytest.raises(QueueLayoutConflict) as refused:
            await declare_queues(connection, quorum(namespace, 5))
    message = str(refused.value)
    assert f"queue {namespace!r} is a classic queue, but QUEUE_TYPE is quorum" in message
    # Found before anything was created: no quorum queue of a level was left behind.
    with pytest.raises(aio_pika.exceptions.ChannelNotFoundEntity):
        await queue_depth(f"{namespace}.p5")


async def test_a_quorum_queue_is_not_taken_for_a_classic_one(namespace, delete_queues):
    connection = await aio_pika.connect(RABBITMQ_URL)
    async with connection:
        await declare_queues(connection, quorum(namespace))
        with pytest.raises(QueueLayoutConflict) as refused:
            await declare_queues(connection, QueueLayout(namespace))
    assert f"queue {namespace!r} is a quorum queue, but QUEUE_TYPE is classic" in str(refused.value)


async def test_another_delivery_limit_is_refused_with_what_the_broker_said(
    namespace, delete_queues
):
    connection = await aio_pika.connect(RABBITMQ_URL)
    async with connection:
        await declare_queues(connection, quorum(namespace, delivery_limit=4))
        with pytest.raises(QueueLayoutConflict) as refused:
            await declare_queues(connection, quorum(namespace, delivery_limit=9))
    assert "QUEUE_DELIVERY_LIMIT=9" in str(refused.value)
    assert "inequivalent arg 'x-delivery-limit'" in str(refused.value)


@pytest.mark.parametrize("script", ["server.py", "worker.py"])
async def test_a_process_configured_quorum_refuses_an_existing_classic_queue(
    env, namespace, script: str
):
    connection = await aio_pika.connect(RABBITMQ_URL)
    async with connection:
        await declare_queues(connection, QueueLayout(namespace))  # what classic processes made
    quorum_env = {**env, "QUEUE_TYPE": "quorum", "METRICS_PORT": "0"}
    finished = await asyncio.to_thread(run_to_exit, script, quorum_env, timeout=30)
    assert finished.returncode == CONFLICT_EXIT, finished.output
    assert (
        f"queue {namespace!r} is a classic queue, but QUEUE_TYPE is quorum: RabbitMQ cannot "
        "change the type of a queue"
    ) in finished.output
    assert "Traceback" not in finished.output
    assert await declared_as(namespace, QueueLayout(namespace).update_queue(0).arguments)


async def test_processes_that_find_the_type_changed_on_reconnecting_stop(
    private_rabbitmq: PrivateRabbitMQ, env, namespace, tmp_path: Path
):
    env = {**env, "RABBITMQ_URL": private_rabbitmq.url, "QUEUE_TYPE": "quorum"}
    env["METRICS_PORT"] = "0"
    with Processes(tmp_path) as running:
        web = running.start_web(env)
        worker = running.start_worker(env)
        # Someone replaces the queues with classic ones, then the connections drop.
        connection = await aio_pika.connect(private_rabbitmq.url)
        async with connection:
            channel = await connection.channel()
            for queue in (namespace, f"{namespace}.dead"):
                await channel.queue_delete(queue)
            await declare_queues(connection, QueueLayout(namespace))
        await asyncio.to_thread(private_rabbitmq.ctl, "close_all_connections", "test")
        for process in (web, worker):
            finished = await asyncio.to_thread(process.wait, 30)
            assert finished.returncode == CONFLICT_EXIT, finished.output
            assert f"queue {namespace!r} is a classic queue, but QUEUE_TYPE is quorum" in (
                finished.output
            )
            assert "Traceback" not in finished.output, finished.output
