"""Tiers (queue priority, rate limits), runtime limit overrides, and the admin API."""

from __future__ import annotations

import asyncio

import aio_pika
import asyncpg
import pytest
from aiohttp.test_utils import TestClient

from scoreboard.apply.ledger.postgres import PostgresLedger
from scoreboard.apply.ledger.rebuild import ensure_board_matches_ledger
from scoreboard.apply.store.redis_store import RedisLeaderboardStore
from scoreboard.config import Settings
from scoreboard.intake.auth import issue_token
from scoreboard.intake.rate_policy import REFRESH_SECONDS
from scoreboard.models import ScoreUpdate
from scoreboard.queue.in_process import InProcessQueue
from scoreboard.queue.queue_layout import QueueLayout, dead_letter_queue_name
from scoreboard.queue.rabbitmq import RabbitConsumer, RabbitPublisher
from scoreboard.web.app import create_app
from scoreboard.web.keys import STORE
from tests.conftest import JWT_SECRET, RABBITMQ_URL, RABBITMQ_URLS, bearer
from tests.test_rabbitmq import queue_depth

URL = "/api/score/update"


def token(user: str, **claims: object) -> str:
    return issue_token(JWT_SECRET, user, user.title(), extra_claims=claims)


async def post(api: TestClient, user: str, increment: int = 1, **claims: object) -> int:
    response = await api.post(
        URL,
        json={"userId": user, "scoreIncrement": increment},
        headers=bearer(token(user, **claims)),
    )
    return response.status


async def app_with(aiohttp_client, env: dict[str, str], **extra: str) -> TestClient:
    return await aiohttp_client(create_app(Settings.from_env({**env, **extra})))


async def test_premium_updates_overtake_a_backlog_of_free_ones(aiohttp_client, env, namespace):
    api = await app_with(aiohttp_client, env, TIER_PRIORITIES="free=0,premium=5")
    for i in range(40):
        assert await post(api, f"free{i % 4}", tier="free") == 200
    for i in range(3):
        assert await post(api, f"vip{i}", tier="premium") == 200
    consumer = RabbitConsumer(RABBITMQ_URLS, QueueLayout(namespace), prefetch=1)
    await consumer.start()
    order = []
    batches = consumer.batches()
    while len(order) < 5:
        for delivery in await asyncio.wait_for(anext(batches), 5):
            order.append(delivery.update.user_id)
            await delivery.ack()
    await consumer.close()
    assert order[:3] == ["vip0", "vip1", "vip2"]
    assert order[3:] == ["free0", "free1"]


async def test_the_in_process_queue_honours_priority_too():
    queue = InProcessQueue(batch_size=10)
    for user, priority in (("low1", 0), ("high", 5), ("low2", 0)):
        await queue.publish(ScoreUpdate.new(user, user, 1), priority)
    await queue.stop()
    taken = [d.update.user_id async for batch in queue.batches() for d in batch]
    assert taken == ["high", "low1", "low2"]


async def test_each_tier_has_its_own_limit(aiohttp_client, env):
    api = await app_with(
        aiohttp_client, env, RATE_LIMIT="1/minute", RATE_LIMITS="free:2/minute,premium:4/minute"
    )
    free = [await post(api, "fred", tier="free") for _ in range(3)]
    premium = [await post(api, "pam", tier="premium") for _ in range(5)]
    untiered = [await post(api, "una") for _ in range(2)]
    assert free == [200, 200, 429]
    assert premium == [200, 200, 200, 200, 429]
    assert untiered == [200, 429]


ADMIN = bearer(token("root", role="admin"))


async def test_an_override_reaches_every_node_within_seconds(aiohttp_client, env):
    node_a = await app_with(aiohttp_client, env, RATE_LIMITS="free:100/minute")
    node_b = await app_with(aiohttp_client, env, RATE_LIMITS="free:100/minute")
    assert await post(node_b, "fay", tier="free") == 200  # node B has read the overrides now
    saved = await node_a.put("/api/admin/rate-limits", json={"free": "1/minute"}, headers=ADMIN)
    assert saved.status == 200
    await asyncio.sleep(REFRESH_SECONDS + 0.2)
    statuses = [await post(node_b, "gus", tier="free") for _ in range(2)]
    assert statuses == [200, 429]
    # The window counts what a user already did: fay posted within the minute before.
    assert await post(node_b, "fay", tier="free") == 429
    listed = await node_b.get("/api/admin/rate-limits", headers=ADMIN)
    body = await listed.json()
    assert body["overrides"] == {"free": "1/minute"}
    assert body["configured"]["free"] == "100/minute"
    cleared = await node_a.put("/api/admin/rate-limits", json={}, headers=ADMIN)
    assert cleared.status == 200


@pytest.mark.parametrize("body", [[1], {"free": 5}, {"free": "lots"}, {"": "1/minute"}])
async def test_bad_overrides_are_400(api, body):
    response = await api.put("/api/admin/rate-limits", json=body, headers=ADMIN)
    assert response.status == 400


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("DELETE", "/api/admin/users/alice"),
        ("POST", "/api/admin/board/reset"),
        ("GET", "/api/admin/dead-letters"),
        ("POST", "/api/admin/dead-letters/replay"),
        ("GET", "/api/admin/rate-limits"),
        ("PUT", "/api/admin/rate-limits"),
    ],
)
async def test_admin_routes_refuse_other_users(api, method: str, path: str):
    response = await api.request(method, path, json={}, headers=bearer(token("alice")))
    assert response.status == 403
    assert await response.json() == {
        "status": "error",
        "message": "This needs a token with role admin",
    }
    anonymous = await api.request(method, path, json={})
    assert anonymous.status == 401


async def test_removing_a_user_and_resetting_the_board(aiohttp_client, env, database_url):
    api = await app_with(aiohttp_client, env, DATABASE_URL=database_url)
    ledger = await PostgresLedger.connect(database_url, run_migrations=True)
    board = api.app[STORE]
    assert isinstance(board, RedisLeaderboardStore)
    await ensure_board_matches_ledger(ledger, board)  # what a worker does at start-up
    updates = [ScoreUpdate.new(u, u.title(), n) for u, n in (("alice", 5), ("bob", 9), ("cat", 2))]
    await board.apply(updates)
    await ledger.record(updates)
    assert await post(api, "alice", 1) == 200  # newScore 6: alice has an accepted total

    removed = await api.delete("/api/admin/users/alice", headers=ADMIN)
    assert removed.status == 200
    assert [e.user_id for e in (await board.leaderboard()).top] == ["bob", "cat"]
    again = await api.post(
        URL, json={"userId": "alice", "scoreIncrement": 1}, headers=bearer(token("alice"))
    )
    assert (await again.json())["newScore"] == 1  # alice starts over
    totals = {s.user_id: s.score for s in await ledger.standings()}
    assert "alice" not in totals and totals["bob"] == 9

    reset = await api.post("/api/admin/board/reset", headers=ADMIN)
    assert reset.status == 200
    assert (await board.leaderboard()).top == ()
    assert await ledger.standings() == []
    connection = await asyncpg.connect(database_url)
    actions = await connection.fetch(
        "SELECT action, user_ids, admin FROM admin_actions ORDER BY id"
    )
    await connection.close()
    assert [tuple(a.values()) for a in actions] == [
        ("remove", ["alice"], "root"),
        ("reset", None, "root"),
    ]
    await ledger.close()


async def test_dead_letters_are_listed_and_replayed(api, namespace):
    connection = await aio_pika.connect(RABBITMQ_URL)
    async with connection:
        channel = await connection.channel()
        stranded = ScoreUpdate.new("alice", "Alice", 3)
        for body in (stranded.message, b"not json"):
            await channel.default_exchange.publish(
                aio_pika.Message(body, message_id="m"),
                routing_key=dead_letter_queue_name(namespace),
            )
    listed = await api.get("/api/admin/dead-letters?limit=10", headers=ADMIN)
    letters = (await listed.json())["deadLetters"]
    assert [letter["body"] for letter in letters] == [stranded.message.decode(), "not json"]
    assert await queue_depth(dead_letter_queue_name(namespace)) == 2  # peeking leaves them

    replayed = await api.post("/api/admin/dead-letters/replay", headers=ADMIN)
    assert (await replayed.json())["replayed"] == 2
    assert await queue_depth(dead_letter_queue_name(namespace)) == 0
    assert await queue_depth(namespace) == 2
    consumer = RabbitConsumer(RABBITMQ_URLS, QueueLayout(namespace), prefetch=10)
    await consumer.start()
    batch = await asyncio.wait_for(anext(consumer.batches()), 5)
    assert [d.update for d in batch] == [stranded]  # the poison went back to the dead letters
    await batch[0].ack()
    await consumer.close()


async def test_single_process_mode_has_no_dead_letter_queue(aiohttp_client):
    api = await aiohttp_client(create_app(Settings.from_env({"JWT_SECRET": JWT_SECRET})))
    response = await api.get("/api/admin/dead-letters", headers=ADMIN)
    assert response.status == 404


async def test_rabbit_publisher_sets_priority(namespace, delete_queues):
    publisher = RabbitPublisher(RABBITMQ_URLS, QueueLayout(namespace))
    await publisher.start()
    await publisher.publish(ScoreUpdate.new("a", "A", 1), priority=7)
    await publisher.close()
    consumer = RabbitConsumer(RABBITMQ_URLS, QueueLayout(namespace), prefetch=1)
    await consumer.start()
    [delivery] = await asyncio.wait_for(anext(consumer.batches()), 5)
    assert delivery.message.priority == 7
    await delivery.ack()
    await consumer.close()
