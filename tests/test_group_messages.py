"""The worker on messages carrying groups of updates (format 2), next to format-1 messages."""

from __future__ import annotations

import asyncio
import json

import aio_pika
import pytest
import redis.asyncio as redis

from scoreboard.apply.apply_loop import ApplyStats, apply_batches
from scoreboard.apply.redeliveries import RedeliveryCounter
from scoreboard.apply.store.redis_store import RedisLeaderboardStore
from scoreboard.models import ScoreUpdate, encode_group
from scoreboard.push.broadcast import Broadcaster
from scoreboard.queue.dead_letters import DeadLetters
from scoreboard.queue.queue_declaring import declare_queues
from scoreboard.queue.queue_layout import QueueLayout, dead_letter_queue_name
from scoreboard.queue.rabbitmq import RabbitConsumer, RabbitPublisher
from scoreboard.queue.signing import SIGNATURE_HEADER, MessageSigner
from tests.conftest import RABBITMQ_URL, RABBITMQ_URLS, REDIS_URL
from tests.test_apply_loop import RecordingEmitter
from tests.test_rabbitmq import queue_depth, started


@pytest.fixture
async def client():
    client = redis.from_url(REDIS_URL)
    yield client
    await client.aclose()


async def publish_raw(namespace: str, *bodies: bytes, signer: MessageSigner | None = None) -> None:
    """Publish message bodies as they are, the way an older or a hostile publisher would."""
    connection = await aio_pika.connect(RABBITMQ_URL)
    async with connection:
        channel = await connection.channel()
        await declare_queues(connection, QueueLayout(namespace))
        for body in bodies:
            headers = {SIGNATURE_HEADER: signer.sign(body)} if signer else None
            await channel.default_exchange.publish(
                aio_pika.Message(body, headers=headers), routing_key=namespace
            )


async def publish_groups(namespace: str, *groups: list[ScoreUpdate], signer=None) -> None:
    publisher = await started(RabbitPublisher(RABBITMQ_URLS, QueueLayout(namespace), signer))
    for group in groups:
        await publisher.publish_group(group)
    await publisher.close()


class Worker:
    """The apply loop on a real consumer and the Redis store, until told to stop."""

    def __init__(
        self,
        namespace: str,
        client: redis.Redis,
        prefetch: int = 10,
        signer: MessageSigner | None = None,
        store: RedisLeaderboardStore | None = None,
    ) -> None:
        self.consumer = RabbitConsumer(RABBITMQ_URLS, QueueLayout(namespace), prefetch, signer)
        self.store = store or RedisLeaderboardStore(client, f"{namespace}:")
        self.redeliveries = RedeliveryCounter(client, f"{namespace}:")
        self.stats = ApplyStats()
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Worker:
        await self.consumer.start()
        self._task = asyncio.create_task(
            apply_batches(
                self.consumer,
                self.store,
                Broadcaster(RecordingEmitter()),
                self.stats,
                self.redeliveries,
            )
        )
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.consumer.stop()
        assert self._task is not None
        await asyncio.wait_for(self._task, 5)
        await self.consumer.close()

    async def settled(self, updates: int) -> None:
        """Wait until `updates` updates were applied or dead-lettered."""
        for _ in range(200):
            done = self.stats.updates + self.stats.dead_lettered + self.consumer.dead_lettered
            if done >= updates:
                return
            await asyncio.sleep(0.02)
        raise AssertionError(f"only {self.stats} settled")

    async def scores(self) -> dict[str, int]:
        page = await self.store.board_page(0, 100)
        return {row.user_id: row.score for row in page.entries}


def totals(updates: list[ScoreUpdate]) -> dict[str, int]:
    expected: dict[str, int] = {}
    for update in updates:
        expected[update.user_id] = expected.get(update.user_id, 0) + update.increment
    return expected


async def test_a_group_message_applies_every_update_once_and_leaves(
    namespace, delete_queues, client
):
    groups = [[ScoreUpdate.new(f"u{i % 7}", "U", i + 1) for i in range(n, n + 30)] for n in (0, 30)]
    await publish_groups(namespace, *groups)
    async with Worker(namespace, client, prefetch=1) as worker:  # a batch of one message
        await worker.settled(60)
        await asyncio.sleep(0.1)
        assert worker.stats.updates == 60
        assert worker.stats.batches == 2, "every update of a message in one batch"
        assert await worker.scores() == totals(groups[0] + groups[1])
    assert await queue_depth(namespace) == 0
    assert await queue_depth(dead_letter_queue_name(namespace)) == 0


async def test_format_1_messages_left_by_an_older_version_are_applied_with_groups(
    namespace, delete_queues, client
):
    older = [ScoreUpdate.new("alice", "Alice", 2), ScoreUpdate.new("bob", "Bob", 3)]
    group = [ScoreUpdate.new("alice", "Alice", 5), ScoreUpdate.new("carol", "Carol", 1)]
    await publish_raw(namespace, older[0].message, encode_group(group), older[1].message)
    async with Worker(namespace, client) as worker:
        await worker.settled(4)
        assert await worker.scores() == {"alice": 7, "bob": 3, "carol": 1}
    assert await queue_depth(namespace) == 0


async def dead_letters(namespace: str) -> list[dict[str, object]]:
    return await DeadLetters(RABBITMQ_URLS, QueueLayout(namespace)).peek(10)


async def test_a_malformed_entry_is_dead_lettered_alone_and_its_neighbours_applied(
    namespace, delete_queues, client
):
    signer = MessageSigner("k" * 32)
    alice, bob = ScoreUpdate.new("alice", "Alice", 4), ScoreUpdate.new("bob", "Bob", 6)
    malformed = b'{"id":"m-1","userId":"eve","increment":-5}'
    body = b'{"v":2,"updates":[%s,%s,%s]}' % (alice.entry, malformed, bob.entry)
    await publish_raw(namespace, body, signer=signer)
    async with Worker(namespace, client, signer=signer) as worker:
        await worker.settled(3)
        await asyncio.sleep(0.1)
        assert await worker.scores() == {"alice": 4, "bob": 6}
    assert await queue_depth(namespace) == 0
    [letter] = await dead_letters(namespace)
    assert json.loads(str(letter["body"])) == {"v": 2, "updates": [json.loads(malformed)]}
    assert letter["signed"] and "missing or mistyped" in str(letter["reason"])


async def test_an_update_the_store_refuses_is_dead_lettered_alone_and_replayable(
    namespace, delete_queues, client
):
    signer = MessageSigner("k" * 32)
    # Corrupt state for one user makes the apply script refuse every batch holding them.
    await client.hset(f"{namespace}:members", "broken", "0000000000000001:broken")
    refused = ScoreUpdate.new("broken", "B", 9)
    group = [ScoreUpdate.new("alice", "Alice", 1), refused, ScoreUpdate.new("carol", "Carol", 3)]
    await publish_groups(namespace, group, signer=signer)
    async with Worker(namespace, client, signer=signer) as worker:
        await worker.settled(3)
        await asyncio.sleep(0.1)
        assert (worker.stats.updates, worker.stats.dead_lettered) == (2, 1)
        assert await worker.scores() == {"alice": 1, "carol": 3}
    assert await queue_depth(namespace) == 0
    [letter] = await dead_letters(namespace)
    assert letter["messageId"] == refused.message_id
    assert json.loads(str(letter["body"]))["updates"] == [json.loads(refused.entry)]
    assert letter["reason"] == "the store refused it"

    # Once the user's state is repaired, the admin's replay applies it, and only it.
    await client.hdel(f"{namespace}:members", "broken")
    assert await DeadLetters(RABBITMQ_URLS, QueueLayout(namespace)).replay(10) == 1
    async with Worker(namespace, client, signer=signer) as worker:
        await worker.settled(1)
        assert await worker.scores() == {"alice": 1, "carol": 3, "broken": 9}
    assert await queue_depth(dead_letter_queue_name(namespace)) == 0


async def test_a_group_redelivered_after_a_worker_died_mid_group_counts_once(
    namespace, delete_queues, client
):
    group = [ScoreUpdate.new(f"u{i % 3}", "U", 10**i) for i in range(6)]
    await publish_groups(namespace, group)
    crashed = RabbitConsumer(RABBITMQ_URLS, QueueLayout(namespace), prefetch=10)
    await crashed.start()
    batch = await asyncio.wait_for(anext(crashed.batches()), 5)
    assert [d.update for d in batch] == group
    # It applied half the group, then died before acknowledging anything.
    await RedisLeaderboardStore(client, f"{namespace}:").apply(group[:3])
    await crashed.close()

    async with Worker(namespace, client) as worker:
        await worker.settled(6)
        await asyncio.sleep(0.1)
        assert await worker.scores() == totals(group)
    assert await queue_depth(namespace) == 0


async def test_a_batch_ending_in_a_rejected_message_is_acked_without_a_channel_error(
    namespace, delete_queues, client
):
    await client.hset(f"{namespace}:members", "broken", "0000000000000001:broken")
    group = [ScoreUpdate.new("alice", "Alice", 1), ScoreUpdate.new("bob", "Bob", 2)]
    refused = ScoreUpdate.new("broken", "B", 1)
    await publish_raw(namespace, encode_group(group), refused.message, b"not json")
    async with Worker(namespace, client) as worker:
        await worker.settled(4)
        await asyncio.sleep(0.2)
        assert await worker.scores() == {"alice": 1, "bob": 2}
    assert await queue_depth(namespace) == 0
    assert await queue_depth(dead_letter_queue_name(namespace)) == 2
    # Acking a rejected tag would have closed the channel and had the group delivered again.
    assert not [key async for key in client.scan_iter(match=f"{namespace}:redeliveries:*")]


async def test_a_group_with_no_valid_update_goes_aside_whole_and_leaves_the_queue(
    namespace, delete_queues, client
):
    broken = b'{"v":2,"updates":[{"id":"x-1","userId":"eve"},{"id":"x-2","increment":"9"}]}'
    await publish_raw(namespace, broken)
    async with Worker(namespace, client) as worker:
        await worker.settled(1)
        await asyncio.sleep(0.1)
    # Once the worker is gone, a message it had not settled would be back in the queue.
    assert await queue_depth(namespace) == 0
    [letter] = await dead_letters(namespace)
    assert letter["body"] == broken.decode()
    assert letter["reason"] == "rejected"
