"""POST /api/score/update against real Redis and RabbitMQ: every status and body of the contract."""

from __future__ import annotations

import asyncio
import time

import aio_pika
import jwt
import pytest
from aiohttp.test_utils import TestClient

from scoreboard.models import ScoreUpdate
from tests.conftest import JWT_SECRET, RABBITMQ_URL, TokenFactory, bearer

URL = "/api/score/update"
AUTH_FAILED = {"status": "error", "message": "Authentication failed"}
INVALID_INCREMENT = {"status": "error", "message": "Invalid score increment"}


async def post(api: TestClient, token: str | None, body: object = None, **kwargs: object):
    headers = bearer(token) if token is not None else {}
    if body is not None:
        kwargs["json"] = body
    return await api.post(URL, headers=headers, **kwargs)


async def queued_messages(queue_name: str) -> list[ScoreUpdate]:
    """Drain the queue the web process published to (no worker runs in these tests)."""
    connection = await aio_pika.connect(RABBITMQ_URL)
    async with connection:
        channel = await connection.channel()
        queue = await channel.get_queue(queue_name)
        updates = []
        while (message := await queue.get(fail=False)) is not None:
            updates.append(ScoreUpdate.from_message(message.body))
            await message.ack()
        return updates


async def test_success_body_is_exactly_the_documented_one(api, make_token: TokenFactory, namespace):
    response = await post(
        api, make_token("alice", "Alice"), {"userId": "alice", "scoreIncrement": 5}
    )
    assert response.status == 200
    assert await response.json() == {
        "status": "success",
        "message": "Score update queued",
        "newScore": 5,
    }
    [update] = await queued_messages(namespace)
    assert (update.user_id, update.username, update.increment) == ("alice", "Alice", 5)


async def test_new_score_accumulates_per_user(api, make_token: TokenFactory):
    alice, bob = make_token("alice"), make_token("bob")
    scores = []
    for token, user, increment in [(alice, "alice", 3), (alice, "alice", 4), (bob, "bob", 10)]:
        response = await post(api, token, {"userId": user, "scoreIncrement": increment})
        scores.append((await response.json())["newScore"])
    assert scores == [3, 7, 10]


async def test_concurrent_posts_get_distinct_scores_ending_at_the_total(api, make_token, namespace):
    token = make_token("carol")
    responses = await asyncio.gather(
        *(post(api, token, {"userId": "carol", "scoreIncrement": 1}) for _ in range(50))
    )
    assert [r.status for r in responses] == [200] * 50
    scores = sorted([(await r.json())["newScore"] for r in responses])
    assert scores == list(range(1, 51))
    assert len(await queued_messages(namespace)) == 50


@pytest.mark.parametrize(
    "increment",
    [0, -1, 1_000_001, True, False, 5.0, 1.5, "5", "", None, [5], {"n": 5}],
    ids=repr,
)
async def test_invalid_increments_are_refused(api, make_token: TokenFactory, increment, namespace):
    response = await post(
        api, make_token("alice"), {"userId": "alice", "scoreIncrement": increment}
    )
    assert response.status == 400
    assert await response.json() == INVALID_INCREMENT
    assert await queued_messages(namespace) == []


@pytest.mark.parametrize(
    "raw", ['{"userId":"alice","scoreIncrement":1e3}', '{"userId":"alice","scoreIncrement":NaN}']
)
async def test_exponent_and_nan_literals_are_refused(api, make_token: TokenFactory, raw: str):
    response = await post(api, make_token("alice"), data=raw)
    assert response.status == 400
    assert (await response.json())["status"] == "error"


@pytest.mark.parametrize(
    "raw",
    [
        b'{"userId":"alice","scoreIncrement":123456789012345678901234567890}',
        '{"userId":"alice","scoreIncrement":-99999999999999999999}'.encode("utf-16"),
    ],
)
async def test_bodies_a_fast_parser_refuses_still_get_the_precise_answer(
    api, make_token: TokenFactory, raw: bytes
):
    response = await post(api, make_token("alice"), data=raw)
    assert (response.status, await response.json()) == (400, INVALID_INCREMENT)


async def test_missing_increment_is_an_invalid_increment(api, make_token: TokenFactory):
    response = await post(api, make_token("alice"), {"userId": "alice"})
    assert (response.status, await response.json()) == (400, INVALID_INCREMENT)


async def test_increment_cap_follows_max_score_increment(aiohttp_client, env, make_token):
    from scoreboard.config import Settings
    from scoreboard.web.app import create_app

    api = await aiohttp_client(create_app(Settings.from_env({**env, "MAX_SCORE_INCREMENT": "10"})))
    ok = await post(api, make_token("alice"), {"userId": "alice", "scoreIncrement": 10})
    too_big = await post(api, make_token("alice"), {"userId": "alice", "scoreIncrement": 11})
    assert (ok.status, too_big.status) == (200, 400)


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("not json", "Request body must be valid JSON"),
        ("", "Request body must be valid JSON"),
        ("[1, 2]", "Request body must be a JSON object"),
        ('"alice"', "Request body must be a JSON object"),
        ('{"scoreIncrement": 1}', "userId must be a non-empty string"),
        ('{"userId": "", "scoreIncrement": 1}', "userId must be a non-empty string"),
        ('{"userId": 7, "scoreIncrement": 1}', "userId must be a non-empty string"),
        (
            '{"userId": "' + "a" * 129 + '", "scoreIncrement": 1}',
            "userId must be at most 128 characters",
        ),
        (
            '{"userId": "al\\u0000ice", "scoreIncrement": 1}',
            "userId must not contain control characters",
        ),
    ],
)
async def test_malformed_bodies_get_a_clear_400(api, make_token, raw: str, message: str):
    response = await post(api, make_token("alice"), data=raw)
    assert response.status == 400
    assert await response.json() == {"status": "error", "message": message}


async def test_oversized_body_is_413(api, make_token: TokenFactory):
    raw = '{"userId": "alice", "scoreIncrement": 1, "pad": "' + "x" * 100_000 + '"}'
    response = await post(api, make_token("alice"), data=raw)
    assert response.status == 413
    assert await response.json() == {"status": "error", "message": "Request body too large"}


async def test_a_user_cannot_update_someone_else(api, make_token: TokenFactory, namespace):
    response = await post(api, make_token("mallory"), {"userId": "alice", "scoreIncrement": 5})
    assert response.status == 403
    assert await response.json() == {
        "status": "error",
        "message": "A user can only update their own score",
    }
    assert await queued_messages(namespace) == []


def _token(claims: dict, key: str = JWT_SECRET, algorithm: str = "HS256", **kwargs) -> str:
    return jwt.encode(claims, key, algorithm=algorithm, **kwargs)


def _unsigned(claims: dict) -> str:
    import base64
    import json

    def part(data: dict) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()

    return f"{part({'alg': 'none', 'typ': 'JWT'})}.{part(claims)}."


FUTURE = int(time.time()) + 3600


@pytest.mark.parametrize(
    "authorization",
    [
        None,
        "",
        "Bearer",
        "Bearer not.a.token",
        "Basic YWxpY2U6c2VjcmV0",
        "Bearer " + _token({"sub": "alice", "exp": FUTURE}, key="another-secret-" + "x" * 60),
        "Bearer " + _token({"sub": "alice", "exp": int(time.time()) - 60}),
        "Bearer " + _token({"sub": "alice"}),
        "Bearer " + _token({"exp": FUTURE}),
        "Bearer " + _token({"sub": "", "exp": FUTURE}),
        "Bearer " + _token({"sub": 42, "exp": FUTURE}),
        "Bearer " + _unsigned({"sub": "alice", "exp": FUTURE}),
        "Bearer " + _token({"sub": "alice", "exp": FUTURE}, algorithm="HS512"),
    ],
    ids=[
        "no header",
        "empty",
        "bearer without token",
        "garbage",
        "basic auth",
        "bad signature",
        "expired",
        "no exp",
        "no sub",
        "empty sub",
        "numeric sub",
        "alg none",
        "other algorithm",
    ],
)
async def test_bad_tokens_are_401(api, authorization: str | None, namespace):
    headers = {} if authorization is None else {"Authorization": authorization}
    response = await api.post(URL, json={"userId": "alice", "scoreIncrement": 1}, headers=headers)
    assert response.status == 401
    assert await response.json() == AUTH_FAILED
    assert await queued_messages(namespace) == []


async def test_username_comes_from_name_then_preferred_username_then_sub(api, namespace):
    tokens = {
        "u1": _token({"sub": "u1", "exp": FUTURE, "name": "Uno", "preferred_username": "uno"}),
        "u2": _token({"sub": "u2", "exp": FUTURE, "preferred_username": "dos"}),
        "u3": _token({"sub": "u3", "exp": FUTURE}),
    }
    for user, token in tokens.items():
        assert (await post(api, token, {"userId": user, "scoreIncrement": 1})).status == 200
    names = {u.user_id: u.username for u in await queued_messages(namespace)}
    assert names == {"u1": "Uno", "u2": "dos", "u3": "u3"}


async def test_rate_limit_per_user_answers_429_with_retry_after(aiohttp_client, env, make_token):
    from scoreboard.config import Settings
    from scoreboard.web.app import create_app

    api = await aiohttp_client(create_app(Settings.from_env({**env, "RATE_LIMIT": "5/minute"})))
    alice = make_token("alice")
    statuses = [
        (await post(api, alice, {"userId": "alice", "scoreIncrement": 1})).status for _ in range(5)
    ]
    refused = await post(api, alice, {"userId": "alice", "scoreIncrement": 1})
    assert statuses == [200] * 5
    assert refused.status == 429
    assert await refused.json() == {"status": "error", "message": "Too many requests"}
    assert 1 <= int(refused.headers["Retry-After"]) <= 60
    # Another user has their own allowance.
    assert (
        await post(api, make_token("bob"), {"userId": "bob", "scoreIncrement": 1})
    ).status == 200


async def test_rate_limit_is_shared_by_two_web_nodes(aiohttp_client, env, make_token):
    from scoreboard.config import Settings
    from scoreboard.web.app import create_app

    limited = Settings.from_env({**env, "RATE_LIMIT": "4/minute"})
    node_a, node_b = (
        await aiohttp_client(create_app(limited)),
        await aiohttp_client(create_app(limited)),
    )
    alice = make_token("alice")
    statuses = [
        (await post(node, alice, {"userId": "alice", "scoreIncrement": 1})).status
        for node in (node_a, node_b, node_a, node_b, node_a, node_b)
    ]
    assert statuses == [200, 200, 200, 200, 429, 429]


async def test_total_past_max_safe_integer_is_refused(api, make_token: TokenFactory, settings):
    import redis.asyncio as redis

    from tests.conftest import REDIS_URL

    client = redis.from_url(REDIS_URL)
    await client.hset(f"{settings.redis_key_prefix}accepted", "alice", str(2**53 - 10))
    await client.aclose()
    alice = make_token("alice")
    exact = await post(api, alice, {"userId": "alice", "scoreIncrement": 9})
    assert (exact.status, (await exact.json())["newScore"]) == (200, 2**53 - 1)
    over = await post(api, alice, {"userId": "alice", "scoreIncrement": 1})
    assert over.status == 400
    assert "9007199254740991" in (await over.json())["message"]


async def test_update_that_cannot_be_queued_is_503_and_not_counted(api, make_token, namespace):
    alice = make_token("alice")
    assert (await post(api, alice, {"userId": "alice", "scoreIncrement": 2})).status == 200
    connection = await aio_pika.connect(RABBITMQ_URL)
    async with connection:
        channel = await connection.channel()
        await channel.queue_delete(namespace)  # the broker now returns the message unroutable
    refused = await post(api, alice, {"userId": "alice", "scoreIncrement": 100})
    assert refused.status == 503
    assert refused.headers["Retry-After"].isdigit()
    assert await refused.json() == {
        "status": "error",
        "message": "Score update could not be queued, try again",
    }
    # Once the queue is back, the refused increment is not part of the score.
    from scoreboard.queue.queue_declaring import declare_queues
    from scoreboard.queue.queue_layout import QueueLayout

    connection = await aio_pika.connect(RABBITMQ_URL)
    async with connection:
        await declare_queues(connection, QueueLayout(namespace))
    accepted = await post(api, alice, {"userId": "alice", "scoreIncrement": 1})
    assert (await accepted.json())["newScore"] == 3


async def test_unknown_paths_and_methods_use_the_error_shape(api):
    missing = await api.get("/api/nothing")
    assert (missing.status, await missing.json()) == (
        404,
        {"status": "error", "message": "Not found"},
    )
    wrong_method = await api.get(URL)
    assert wrong_method.status == 405
    assert await wrong_method.json() == {"status": "error", "message": "Method not allowed"}
