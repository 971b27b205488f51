"""The worker's apply loop on real RabbitMQ and Redis: acks, poison isolation, crash loops."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime
from typing import Any

import aio_pika
import pytest
import redis.asyncio as redis

from scoreboard.apply.apply_loop import ApplyStats, Ledgered, apply_batches
from scoreboard.apply.ledger.rebuild import ensure_board_matches_ledger
from scoreboard.apply.ledger.seasons import LedgerSeasons
from scoreboard.apply.redeliveries import RedeliveryCounter
from scoreboard.apply.store.redis_store import RedisLeaderboardStore
from scoreboard.boards.model import Board
from scoreboard.boards.seasons import RedisSeasons
from scoreboard.models import ScoreUpdate
from scoreboard.push.broadcast import Broadcaster
from scoreboard.queue.queue_layout import QueueLayout, dead_letter_queue_name
from scoreboard.queue.rabbitmq import RabbitConsumer, RabbitPublisher
from tests.conftest import RABBITMQ_URL, RABBITMQ_URLS, REDIS_URL
from tests.test_rabbitmq import queue_depth, started


class RecordingEmitter:
    """Stands in for Socket.IO: keeps what would have been emitted."""

    def __init__(self) -> None:
        self.events: list[tuple[str, Any]] = []

    async def emit(
        self, event: str, data: Any, namespace: str | None = None, **options: Any
    ) -> None:
        self.events.append((event, data))


@pytest.fixture
async def client():
    client = redis.from_url(REDIS_URL)
    yield client
    await client.aclose()


async def publish(namespace: str, updates: list[ScoreUpdate]) -> None:
    publisher = await started(RabbitPublisher(RABBITMQ_URLS, QueueLayout(namespace)))
    for update in updates:
        await publisher.publish(update)
    await publisher.close()


async def run_until(condition, consumer: RabbitConsumer, task: asyncio.Task) -> None:
    for _ in range(100):
        if await condition():
            break
        await asyncio.sleep(0.05)
    await consumer.stop()
    await asyncio.wait_for(task, 5)
    await consumer.close()


async def test_a_batch_is_applied_acked_and_broadcast(namespace, delete_queues, client):
    await publish(
        namespace, [ScoreUpdate.new("alice", "Alice", 5), ScoreUpdate.new("bob", "Bob", 7)]
    )
    store = RedisLeaderboardStore(client, f"{namespace}:")
    consumer = RabbitConsumer(RABBITMQ_URLS, QueueLayout(namespace), prefetch=10)
    await consumer.start()
    emitter, stats = RecordingEmitter(), ApplyStats()
    task = asyncio.create_task(apply_batches(consumer, store, Broadcaster(emitter), stats))

    async def two_applied() -> bool:
        return stats.updates == 2

    await run_until(two_applied, consumer, task)
    assert await queue_depth(namespace) == 0
    event, payload = emitter.events[-1]
    assert event == "leaderboardUpdate"
    assert payload["top10"] == [
        {"userId": "bob", "username": "Bob", "score": 7},
        {"userId": "alice", "username": "Alice", "score": 5},
    ]


async def test_an_update_the_store_refuses_is_dead_lettered_and_the_rest_applied(
    namespace, delete_queues, client
):
    # Corrupt state for one user makes the apply script fail for every batch holding them.
    await client.hset(f"{namespace}:members", "broken", "0000000000000001:broken")
    await publish(
        namespace,
        [
            ScoreUpdate.new("alice", "Alice", 1),
            ScoreUpdate.new("broken", "B", 1),
            ScoreUpdate.new("carol", "Carol", 3),
        ],
    )
    store = RedisLeaderboardStore(client, f"{namespace}:")
    consumer = RabbitConsumer(RABBITMQ_URLS, QueueLayout(namespace), prefetch=10)
    await consumer.start()
    stats = ApplyStats()
    task = asyncio.create_task(
        apply_batches(consumer, store, Broadcaster(RecordingEmitter()), stats)
    )

    async def settled() -> bool:
        return stats.updates + stats.dead_lettered == 3

    await run_until(settled, consumer, task)
    assert (stats.updates, stats.dead_lettered) == (2, 1)
    board = await store.leaderboard()
    assert [(e.user_id, e.score) for e in board.top] == [("carol", 3), ("alice", 1)]
    assert await queue_depth(dead_letter_queue_name(namespace)) == 1
    assert await queue_depth(namespace) == 0


async def test_a_message_redelivered_too_often_is_set_aside(namespace, delete_queues, client):
    killer = ScoreUpdate.new("alice", "Alice", 1)
    await publish(namespace, [killer])
    crashed = RabbitConsumer(RABBITMQ_URLS, QueueLayout(namespace), prefetch=10)
    await crashed.start()
    await asyncio.wait_for(anext(crashed.batches()), 5)
    await crashed.close()  # a worker died holding it

    consumer = RabbitConsumer(RABBITMQ_URLS, QueueLayout(namespace), prefetch=10)
    await consumer.start()
    stats = ApplyStats()
    counter = RedeliveryCounter(client, f"{namespace}:", limit=0)
    store = RedisLeaderboardStore(client, f"{namespace}:")
    task = asyncio.create_task(
        apply_batches(consumer, store, Broadcaster(RecordingEmitter()), stats, counter)
    )

    async def dead_lettered() -> bool:
        return stats.dead_lettered == 1

    await run_until(dead_lettered, consumer, task)
    assert stats.updates == 0
    assert await queue_depth(dead_letter_queue_name(namespace)) == 1


async def test_redeliveries_are_counted_across_workers(namespace, client):
    first = RedeliveryCounter(client, f"{namespace}:", limit=2)
    second = RedeliveryCounter(client, f"{namespace}:", limit=2)
    assert await first.exhausted(["m1", "m2"]) == set()
    assert await second.exhausted(["m1"]) == set()
    assert await first.exhausted(["m1", "m2"]) == {"m1"}
    assert await first.exhausted([]) == set()


async def test_the_same_message_delivered_twice_is_applied_once(namespace, delete_queues, client):
    update = ScoreUpdate.new("alice", "Alice", 5)
    await publish(namespace, [update, update, ScoreUpdate.new("alice", "Alice", 1)])
    store = RedisLeaderboardStore(client, f"{namespace}:")
    consumer = RabbitConsumer(RABBITMQ_URLS, QueueLayout(namespace), prefetch=1)  # one per batch
    await consumer.start()
    stats = ApplyStats()
    task = asyncio.create_task(
        apply_batches(consumer, store, Broadcaster(RecordingEmitter()), stats)
    )

    async def all_acked() -> bool:
        return stats.updates == 3

    await run_until(all_acked, consumer, task)
    board = await store.leaderboard()
    assert [(e.user_id, e.score) for e in board.top] == [("alice", 6)]
    assert await queue_depth(namespace) == 0


async def test_large_batches_with_a_poison_message_inside_are_settled_exactly(
    namespace, delete_queues, client
):
    users = [f"u{i}" for i in range(6)]
    first = [ScoreUpdate.new(users[i % 6], "U", 1) for i in range(40)]
    second = [ScoreUpdate.new(users[i % 6], "U", 2) for i in range(40)]
    await publish(namespace, first)
    connection = await aio_pika.connect(RABBITMQ_URL)
    async with connection:
        channel = await connection.channel()
        await channel.default_exchange.publish(aio_pika.Message(b"not json"), routing_key=namespace)
    await publish(namespace, second)
    store = RedisLeaderboardStore(client, f"{namespace}:")
    consumer = RabbitConsumer(RABBITMQ_URLS, QueueLayout(namespace), prefetch=50)
    await consumer.start()
    stats = ApplyStats()
    task = asyncio.create_task(
        apply_batches(consumer, store, Broadcaster(RecordingEmitter()), stats)
    )

    async def all_applied() -> bool:
        return stats.updates == 80

    await run_until(all_applied, consumer, task)
    assert stats.batches < 80, "the updates came in batches"
    board = await store.leaderboard()
    expected = {user: 0 for user in users}
    for update in first + second:
        expected[update.user_id] += update.increment
    assert {e.user_id: e.score for e in board.top} == expected
    assert await queue_depth(namespace) == 0, "every applied update acknowledged"
    assert await queue_depth(dead_letter_queue_name(namespace)) == 1


def test_applied_updates_are_summed_up_in_one_info_line_per_interval(caplog):
    from scoreboard.apply import apply_loop

    now = [0.0]
    summary = apply_loop.AppliedSummary(clock=lambda: now[0])
    with caplog.at_level(logging.INFO, logger="scoreboard.apply.apply_loop"):
        for _ in range(100):
            summary.note(50)
            now[0] += 0.125  # 100 batches over 12.5 seconds
    lines = [r.getMessage() for r in caplog.records]
    assert lines == [
        "applied 2050 updates in 41 batches in the last 5s",
        "applied 2000 updates in 40 batches in the last 5s",
    ]


async def test_with_a_ledger_every_board_in_a_batch_is_recorded_and_applied(
    namespace, delete_queues, client, ledger, caplog
):
    laps = Board("laps", "Lap times", operator="best", order="asc")
    updates = [
        ScoreUpdate.new("alice", "Alice", 5),
        ScoreUpdate.new("bob", "Bob", 61, board=laps),
        ScoreUpdate.new("alice", "Alice", 58, board=laps),
        ScoreUpdate.new("bob", "Bob", 64, board=laps),  # no better: bob keeps 61
        ScoreUpdate.new("bob", "Bob", 2),
    ]
    publisher = await started(RabbitPublisher(RABBITMQ_URLS, QueueLayout(namespace)))
    await publisher.publish_group(updates)  # one message: one batch
    await publisher.close()
    store = RedisLeaderboardStore(client, f"{namespace}:", ledger_backed=True)
    await ensure_board_matches_ledger(ledger, store)  # what a worker does at start-up
    seasons = LedgerSeasons(ledger, RedisSeasons(client, f"{namespace}:"))
    await seasons.create("laps", datetime.now(UTC))  # what an admin creating the board does
    consumer = RabbitConsumer(RABBITMQ_URLS, QueueLayout(namespace), prefetch=10)
    await consumer.start()
    stats = ApplyStats()
    ledgered = Ledgered(ledger, store, seasons)
    task = asyncio.create_task(
        apply_batches(consumer, store, Broadcaster(RecordingEmitter()), stats, None, ledgered)
    )

    async def all_applied() -> bool:
        return stats.updates == len(updates)

    with caplog.at_level(logging.WARNING, logger="scoreboard.apply.apply_loop"):
        await run_until(all_applied, consumer, task)
    assert (stats.batches, stats.dead_lettered) == (1, 0)
    assert caplog.records == [], "both boards applied together, not one update at a time"
    on_laps = store.for_board(laps)
    assert [(r.user_id, r.score) for r in (await on_laps.board_page(0, 10)).entries] == [
        ("alice", 58),
        ("bob", 61),
    ]
    assert [(r.user_id, r.score) for r in (await store.board_page(0, 10)).entries] == [
        ("alice", 5),
        ("bob", 2),
    ]
    # The ledger holds both boards, places included: either rebuilds to what Redis has.
    for board, board_id in ((on_laps, "laps"), (store, "global")):
        in_ledger = {s.user_id: s for s in await ledger.standings(board_id, 1)}
        assert in_ledger == {s.user_id: s for s in await board.standings()}


async def test_with_a_ledger_an_update_its_web_node_cancelled_is_not_recorded(
    namespace, delete_queues, client, ledger
):
    """A publish that timed out is cancelled (the client got 503); when its message reaches a
    worker after all, neither Redis nor the ledger counts it, so no rebuild brings it back."""
    store = RedisLeaderboardStore(client, f"{namespace}:", ledger_backed=True)
    await ensure_board_matches_ledger(ledger, store)
    kept, given_up = ScoreUpdate.new("ann", "Ann", 5), ScoreUpdate.new("ann", "Ann", 100)
    for update in (kept, given_up):
        await store.reserve(update, 10**12)
    assert await store.release(given_up), "the web node cancels the update it answered 503 for"
    await publish(namespace, [kept, given_up])
    consumer = RabbitConsumer(RABBITMQ_URLS, QueueLayout(namespace), prefetch=10)
    await consumer.start()
    stats = ApplyStats()
    seasons = LedgerSeasons(ledger, RedisSeasons(client, f"{namespace}:"))
    task = asyncio.create_task(
        apply_batches(
            consumer,
            store,
            Broadcaster(RecordingEmitter()),
            stats,
            None,
            Ledgered(ledger, store, seasons),
        )
    )

    async def settled() -> bool:
        return await queue_depth(namespace) == 0 and stats.batches > 0

    await run_until(settled, consumer, task)
    assert [(s.user_id, s.score) for s in await ledger.standings()] == [("ann", 5)]
    assert [(s.user_id, s.score) for s in await store.standings()] == [("ann", 5)]
    history = await ledger.history("ann", limit=10, before=None)
    assert [e.message_id for e in history] == [kept.message_id]


async def test_with_a_ledger_an_update_a_worker_claimed_can_no_longer_be_cancelled(
    namespace, client, ledger
):
    store = RedisLeaderboardStore(client, f"{namespace}:", ledger_backed=True)
    update = ScoreUpdate.new("bo", "Bo", 3)
    await store.reserve(update, 10**12)
    assert await store.claim([update.message_id]) == set()
    assert not await store.release(update), "the worker is recording it: the update stands"
    assert await store.claim([update.message_id]) == set(), "a redelivery is claimed again"
