"""Idempotency-Key on POST /api/score/update, in both modes: a retry never counts twice."""

from __future__ import annotations

import asyncio

import aio_pika
import pytest
from aiohttp.test_utils import TestClient

from scoreboard.config import Settings
from scoreboard.queue.queue_declaring import declare_queues
from scoreboard.queue.queue_layout import QueueLayout
from scoreboard.web.app import create_app
from tests.conftest import JWT_SECRET, RABBITMQ_URL, TokenFactory, bearer
from tests.test_score_api import queued_messages

URL = "/api/score/update"


@pytest.fixture(params=["distributed", "single-process"])
async def any_api(request, aiohttp_client, env) -> TestClient:
    settings = Settings.from_env(
        env if request.param == "distributed" else {"JWT_SECRET": JWT_SECRET}
    )
    return await aiohttp_client(create_app(settings))


async def post(api: TestClient, token: str, body: dict, key: str | None):
    headers = bearer(token)
    if key is not None:
        headers["Idempotency-Key"] = key
    return await api.post(URL, json=body, headers=headers)


async def test_a_retry_returns_the_first_answer_and_counts_once(any_api, make_token: TokenFactory):
    alice = make_token("alice")
    first = await post(any_api, alice, {"userId": "alice", "scoreIncrement": 5}, "game-42")
    retry = await post(any_api, alice, {"scoreIncrement": 5, "userId": "alice"}, "game-42")
    assert (
        await first.json()
        == await retry.json()
        == {
            "status": "success",
            "message": "Score update queued",
            "newScore": 5,
        }
    )
    assert "Idempotent-Replayed" not in first.headers
    assert retry.headers["Idempotent-Replayed"] == "true"
    later = await post(any_api, alice, {"userId": "alice", "scoreIncrement": 1}, None)
    assert (await later.json())["newScore"] == 6


async def test_the_same_key_with_another_body_is_409(any_api, make_token: TokenFactory):
    alice = make_token("alice")
    await post(any_api, alice, {"userId": "alice", "scoreIncrement": 5}, "k1")
    other = await post(any_api, alice, {"userId": "alice", "scoreIncrement": 6}, "k1")
    assert other.status == 409
    assert await other.json() == {
        "status": "error",
        "message": "Idempotency-Key was already used with a different request",
    }


async def test_keys_belong_to_their_user(any_api, make_token: TokenFactory):
    first = await post(any_api, make_token("alice"), {"userId": "alice", "scoreIncrement": 5}, "k")
    second = await post(any_api, make_token("bob"), {"userId": "bob", "scoreIncrement": 7}, "k")
    assert ((await first.json())["newScore"], (await second.json())["newScore"]) == (5, 7)


@pytest.mark.parametrize(
    "key", ["", "x" * 256, "tab\there", "naïve"], ids=["empty", "256", "tab", "non-ascii"]
)
async def test_malformed_keys_are_400(any_api, make_token: TokenFactory, key: str):
    response = await post(
        any_api, make_token("alice"), {"userId": "alice", "scoreIncrement": 1}, key
    )
    assert response.status == 400
    assert await response.json() == {
        "status": "error",
        "message": "Idempotency-Key must be 1 to 255 printable ASCII characters",
    }


async def test_a_255_character_key_is_accepted(any_api, make_token: TokenFactory):
    response = await post(
        any_api, make_token("alice"), {"userId": "alice", "scoreIncrement": 1}, "k" * 255
    )
    assert response.status == 200


async def test_concurrent_retries_queue_one_update(api, make_token: TokenFactory, namespace: str):
    alice = make_token("alice")
    responses = await asyncio.gather(
        *(post(api, alice, {"userId": "alice", "scoreIncrement": 3}, "burst") for _ in range(10))
    )
    statuses = sorted(r.status for r in responses)
    assert set(statuses) <= {200, 409} and 200 in statuses
    scores = {(await r.json())["newScore"] for r in responses if r.status == 200}
    assert scores == {3}
    assert [u.increment for u in await queued_messages(namespace)] == [3]


async def test_a_key_whose_update_failed_can_be_retried(
    api, make_token: TokenFactory, namespace: str
):
    alice = make_token("alice")
    connection = await aio_pika.connect(RABBITMQ_URL)
    async with connection:
        channel = await connection.channel()
        await channel.queue_delete(namespace)
        failed = await post(api, alice, {"userId": "alice", "scoreIncrement": 4}, "retry-me")
        await declare_queues(connection, QueueLayout(namespace))
    retried = await post(api, alice, {"userId": "alice", "scoreIncrement": 4}, "retry-me")
    assert (failed.status, retried.status) == (503, 200)
    assert (await retried.json())["newScore"] == 4
    assert [u.increment for u in await queued_messages(namespace)] == [4]
