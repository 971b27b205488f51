"""POST /api/boards/{boardId}/scores and the per-board reads, on real Redis and RabbitMQ."""

from __future__ import annotations

import asyncio
import json

import aio_pika
import pytest
import redis.asyncio as redis
from aiohttp.test_utils import TestClient

from scoreboard.apply.store.redis_store import RedisLeaderboardStore
from scoreboard.boards.model import Board
from scoreboard.config import Settings
from scoreboard.intake.auth import issue_token
from scoreboard.models import ScoreUpdate, decode_message
from scoreboard.web.app import create_app
from scoreboard.web.keys import BOARDS
from tests.conftest import JWT_SECRET, RABBITMQ_URL, REDIS_URL, bearer

WEEKLY = Board("weekly", "Weekly", operator="incr")
LAPS = Board("laps", "Lap times", operator="best", order="asc")
ARENA = Board("arena", "Arena", operator="set", authoritative=True)


def user_token(user: str) -> str:
    return issue_token(JWT_SECRET, user, user.title())


def service_token() -> str:
    return issue_token(JWT_SECRET, "game-server-1", extra_claims={"role": "service"})


@pytest.fixture
async def boards_api(aiohttp_client, env) -> TestClient:
    app = create_app(Settings.from_env({**env, "MAX_SCORE": "100000"}))
    client = await aiohttp_client(app)
    for board in (WEEKLY, LAPS, ARENA):
        await app[BOARDS].put(board)
    return client


async def post(api: TestClient, board: str, body: object, token: str, **headers: str):
    response = await api.post(
        f"/api/boards/{board}/scores", json=body, headers={**bearer(token), **headers}
    )
    return response.status, await response.json()


async def queued(namespace: str) -> list[ScoreUpdate]:
    """Every update waiting in the test's queue, taken off it."""
    updates: list[ScoreUpdate] = []
    connection = await aio_pika.connect(RABBITMQ_URL)
    async with connection:
        channel = await connection.channel()
        queue = await channel.get_queue(namespace)
        while (message := await queue.get(no_ack=True, fail=False)) is not None:
            updates += [u for u in decode_message(message.body) if isinstance(u, ScoreUpdate)]
    return updates


async def test_each_board_answers_the_value_its_operator_leads_to(boards_api, namespace):
    token = user_token("ann")
    weekly = [
        await post(boards_api, "weekly", {"userId": "ann", "score": s}, token) for s in (3, 4)
    ]
    laps = [
        await post(boards_api, "laps", {"userId": "ann", "score": s}, token) for s in (61, 58, 70)
    ]
    assert [body["newScore"] for _, body in weekly] == [3, 7]
    assert [body["newScore"] for _, body in laps] == [61, 58, 58], "lower is better: 70 is not"
    assert weekly[0] == (
        200,
        {"status": "success", "message": "Score update queued", "newScore": 3},
    )
    updates = await queued(namespace)
    assert [(u.board_id, u.operator, u.order, u.increment) for u in updates] == [
        ("weekly", "incr", "desc", 3),
        ("weekly", "incr", "desc", 4),
        ("laps", "best", "asc", 61),
        ("laps", "best", "asc", 58),
        ("laps", "best", "asc", 70),
    ]
    # Each carries the order it was accepted in, so a worker applying them out of order can
    # still tell the newest (tests/test_ledger_boards.py applies them shuffled).
    orders = [u.accepted_seq for u in updates]
    assert all(isinstance(order, int) for order in orders)
    assert orders == sorted(orders) and len(set(orders)) == len(orders)


async def test_a_board_counts_apart_from_global_and_from_other_boards(boards_api):
    token = user_token("bo")
    await post(boards_api, "weekly", {"userId": "bo", "score": 5}, token)
    response = await boards_api.post(
        "/api/score/update", json={"userId": "bo", "scoreIncrement": 2}, headers=bearer(token)
    )
    assert (await response.json())["newScore"] == 2
    _, body = await post(boards_api, "weekly", {"userId": "bo", "score": 1}, token)
    assert body["newScore"] == 6


@pytest.mark.parametrize(
    ("board", "body", "status", "message"),
    [
        ("nowhere", {"userId": "cy", "score": 1}, 404, "Board not found"),
        ("Bad_Id", {"userId": "cy", "score": 1}, 400, "boardId must be"),
        ("weekly", {"userId": "cy", "score": 0}, 400, "is an increment, a JSON integer from 1"),
        ("laps", {"userId": "cy", "score": 100001}, 400, "is a JSON integer from 0 to 100000"),
        ("laps", {"userId": "cy", "score": -1}, 400, "score must be a JSON integer"),
        ("weekly", {"userId": "dee", "score": 1}, 403, "A user can only update their own score"),
        (
            "weekly",
            {"userId": "cy", "score": 1, "username": "Cy"},
            400,
            "only be sent with a service",
        ),
        ("arena", {"userId": "cy", "score": 1}, 403, "Only a service token may post"),
    ],
)
async def test_refusals_say_why(boards_api, board, body, status, message):
    got_status, got = await post(boards_api, board, body, user_token("cy"))
    assert got_status == status and got["status"] == "error" and message in got["message"], got


async def test_a_service_posts_for_any_user_with_the_name_to_show(boards_api, namespace):
    status, body = await post(
        boards_api,
        "arena",
        {"userId": "eve", "score": 40, "username": "Eve\u200b the Great"},
        service_token(),
    )
    assert (status, body["newScore"]) == (200, 40)
    missing, _ = await post(boards_api, "arena", {"userId": "eve", "score": 1}, service_token())
    assert missing == 400
    [update] = await queued(namespace)
    assert (update.user_id, update.username, update.board_id) == ("eve", "Eve the Great", "arena")


async def test_an_idempotency_key_replays_on_its_board_and_conflicts_on_another(boards_api):
    token = user_token("fay")
    first = await post(
        boards_api, "weekly", {"userId": "fay", "score": 4}, token, **{"Idempotency-Key": "k1"}
    )
    again = await post(
        boards_api, "weekly", {"userId": "fay", "score": 4}, token, **{"Idempotency-Key": "k1"}
    )
    elsewhere = await post(
        boards_api, "laps", {"userId": "fay", "score": 4}, token, **{"Idempotency-Key": "k1"}
    )
    assert (
        first
        == again
        == (200, {"status": "success", "message": "Score update queued", "newScore": 4})
    )
    assert elsewhere[0] == 409


async def test_the_rate_limit_counts_a_user_on_every_board_together(aiohttp_client, env):
    app = create_app(Settings.from_env({**env, "RATE_LIMIT": "3/minute"}))
    api = await aiohttp_client(app)
    await app[BOARDS].put(WEEKLY)
    token = user_token("gil")
    statuses = [
        (await post(api, "weekly", {"userId": "gil", "score": 1}, token))[0],
        (await post(api, "nowhere", {"userId": "gil", "score": 1}, token))[0],
        (
            await api.post(
                "/api/score/update",
                json={"userId": "gil", "scoreIncrement": 1},
                headers=bearer(token),
            )
        ).status,
        (await post(api, "weekly", {"userId": "gil", "score": 1}, token))[0],
    ]
    assert statuses == [200, 404, 200, 429]


async def test_reads_of_a_board_have_its_order_its_id_and_its_season(boards_api, namespace):
    client = redis.from_url(REDIS_URL)
    try:
        laps = RedisLeaderboardStore(client, f"{namespace}:").for_board(LAPS)
        for user, time in (("hal", 62), ("ivy", 58), ("jon", 62)):
            await laps.apply([ScoreUpdate.new(user, user.title(), time, board=LAPS)])
    finally:
        await client.aclose()
    token = user_token("reader")
    page = await (
        await boards_api.get("/api/boards/laps/leaderboard", headers=bearer(token))
    ).json()
    assert page["boardId"] == "laps" and page["season"] == 1 and page["total"] == 3
    assert [(r["rank"], r["userId"], r["score"]) for r in page["entries"]] == [
        (1, "ivy", 58),
        (2, "hal", 62),
        (3, "jon", 62),
    ]
    rank = await (
        await boards_api.get("/api/boards/laps/users/jon/rank?around=1", headers=bearer(token))
    ).json()
    assert (rank["boardId"], rank["user"]["rank"], [r["userId"] for r in rank["above"]]) == (
        "laps",
        3,
        ["hal"],
    )
    missing = await boards_api.get("/api/boards/laps/users/kim/rank", headers=bearer(token))
    unknown = await boards_api.get("/api/boards/nowhere/leaderboard", headers=bearer(token))
    assert (missing.status, unknown.status) == (404, 404)
    assert json.loads(await unknown.text())["message"] == "Board not found"


async def test_a_worker_applies_each_board_in_its_own_order(env, tmp_path):
    from tests.processes import Processes

    with Processes(tmp_path) as processes:
        [web] = processes.start_distributed({**env, "RATE_LIMIT": "1000/minute"})
        client = redis.from_url(REDIS_URL)
        try:
            from scoreboard.boards.registry import BoardRegistry, RedisBoardStorage

            await BoardRegistry(RedisBoardStorage(client, env["REDIS_KEY_PREFIX"])).put(LAPS)
            import aiohttp

            async with aiohttp.ClientSession() as session:
                for user, time in (("kai", 64), ("lea", 59), ("kai", 57), ("lea", 70)):
                    async with session.post(
                        f"{web.url}/api/boards/laps/scores",
                        json={"userId": user, "score": time},
                        headers=bearer(user_token(user)),
                    ) as response:
                        assert response.status == 200, await response.text()
                for _ in range(100):
                    async with session.get(
                        f"{web.url}/api/boards/laps/leaderboard", headers=bearer(user_token("kai"))
                    ) as response:
                        page = await response.json()
                    if page["total"] == 2 and page["entries"][0]["score"] == 57:
                        break
                    await asyncio.sleep(0.05)
        finally:
            await client.aclose()
    assert [(r["userId"], r["score"]) for r in page["entries"]] == [("kai", 57), ("lea", 59)]
