"""Redis memory follows failures, not updates: applied ids go once their acks are confirmed."""

from __future__ import annotations

import asyncio

import pytest
import redis.asyncio as redis

from scoreboard.apply.store import DEDUPLICATION_TTL_SECONDS, FORGET_GRACE_SECONDS
from scoreboard.apply.store.memory_store import MemoryLeaderboardStore
from scoreboard.apply.store.redis_store import RedisLeaderboardStore
from scoreboard.models import ScoreUpdate
from scoreboard.queue.queue_layout import QueueLayout
from scoreboard.queue.rabbitmq import RabbitConsumer
from tests.conftest import RABBITMQ_URLS, REDIS_URL
from tests.test_group_messages import Worker, publish_groups, totals
from tests.test_rabbitmq import queue_depth


@pytest.fixture
async def client():
    client = redis.from_url(REDIS_URL)
    yield client
    await client.aclose()


async def remembered(client: redis.Redis, namespace: str) -> dict[str, int]:
    """Every message id the store remembers, with the seconds it has left."""
    keys = [key async for key in client.scan_iter(match=f"{namespace}:msg:*", count=1000)]
    return {key.decode().rsplit(":", 1)[1]: await client.ttl(key) for key in keys}


async def until_forgotten(client: redis.Redis, namespace: str, keep: int = 0) -> None:
    for _ in range(100):
        if len(await remembered(client, namespace)) <= keep:
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"{len(await remembered(client, namespace))} ids still remembered")


async def test_applied_and_acked_updates_leave_no_key_behind(namespace, delete_queues, client):
    groups = [[ScoreUpdate.new(f"u{i % 13}", "U", 1 + i % 5) for i in range(50)] for _ in range(8)]
    await publish_groups(namespace, *groups)
    store = RedisLeaderboardStore(client, f"{namespace}:", forget_grace_seconds=0)
    async with Worker(namespace, client, prefetch=3, store=store) as worker:
        await worker.settled(400)
        await until_forgotten(client, namespace)
        assert await worker.scores() == totals([u for group in groups for u in group])
    assert await queue_depth(namespace) == 0


async def test_by_default_a_forgotten_id_is_still_recognised_for_a_grace(
    namespace, delete_queues, client
):
    group = [ScoreUpdate.new("alice", "Alice", 1), ScoreUpdate.new("bob", "Bob", 2)]
    await publish_groups(namespace, group)
    async with Worker(namespace, client) as worker:
        await worker.settled(2)
        for _ in range(50):
            left = await remembered(client, namespace)
            if all(ttl <= FORGET_GRACE_SECONDS for ttl in left.values()):
                break
            await asyncio.sleep(0.1)
    assert sorted(left) == sorted(u.message_id for u in group)
    assert all(0 < ttl <= FORGET_GRACE_SECONDS for ttl in left.values()), left


async def test_an_update_applied_but_never_acked_keeps_its_key_and_its_redelivery_is_skipped(
    namespace, delete_queues, client
):
    group = [ScoreUpdate.new("alice", "Alice", 5), ScoreUpdate.new("bob", "Bob", 7)]
    await publish_groups(namespace, group)
    crashed = RabbitConsumer(RABBITMQ_URLS, QueueLayout(namespace), prefetch=10)
    await crashed.start()
    await asyncio.wait_for(anext(crashed.batches()), 5)
    await RedisLeaderboardStore(client, f"{namespace}:").apply(group)
    await crashed.close()  # died after applying, before acking
    left = await remembered(client, namespace)
    assert sorted(left) == sorted(u.message_id for u in group)
    assert all(ttl > DEDUPLICATION_TTL_SECONDS - 60 for ttl in left.values())

    store = RedisLeaderboardStore(client, f"{namespace}:", forget_grace_seconds=0)
    async with Worker(namespace, client, store=store) as worker:
        await worker.settled(2)
        assert await worker.scores() == {"alice": 5, "bob": 7}  # the redelivery was skipped
        await until_forgotten(client, namespace)
    assert await queue_depth(namespace) == 0


async def test_a_cancelled_publish_stays_remembered_for_a_day(namespace, delete_queues, client):
    cancelled, applied = ScoreUpdate.new("alice", "Alice", 5), ScoreUpdate.new("bob", "Bob", 7)
    store = RedisLeaderboardStore(client, f"{namespace}:", forget_grace_seconds=0)
    await store.reserve(cancelled, 10**9)
    assert await store.release(cancelled)  # the web node gave the publish up...
    await publish_groups(namespace, [cancelled, applied])  # ...but the broker had it after all
    async with Worker(namespace, client, store=store) as worker:
        await worker.settled(2)
        await until_forgotten(client, namespace, keep=1)
        assert await worker.scores() == {"bob": 7}
    left = await remembered(client, namespace)
    assert list(left) == [cancelled.message_id]
    assert left[cancelled.message_id] > DEDUPLICATION_TTL_SECONDS - 60


@pytest.mark.parametrize("kind", ["redis", "memory"])
async def test_a_store_forgets_applied_ids_only(kind, namespace, client):
    store = (
        MemoryLeaderboardStore()
        if kind == "memory"
        else RedisLeaderboardStore(client, f"{namespace}:", forget_grace_seconds=0)
    )
    applied, cancelled = ScoreUpdate.new("alice", "Alice", 5), ScoreUpdate.new("bob", "Bob", 7)
    await store.reserve(cancelled, 10**9)
    await store.release(cancelled)
    await store.apply([applied])
    await store.apply([ScoreUpdate.new("carol", "Carol", 1)], forget=[applied.message_id])
    await store.forget([cancelled.message_id])
    # Only to show what was forgotten: in service a forgotten id never comes back.
    await store.apply([applied, cancelled])
    page = await store.board_page(0, 10)
    assert {e.user_id: e.score for e in page.entries} == {"alice": 10, "carol": 1}
