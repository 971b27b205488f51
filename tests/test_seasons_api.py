"""Seasons over HTTP: an admin closes one by hand, readers list and read closed seasons."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as redis
from aiohttp.test_utils import TestClient

from scoreboard.apply.ledger.closed_seasons import PostgresClosedSeasons
from scoreboard.apply.ledger.postgres import PostgresLedger
from scoreboard.apply.store.redis_store import RedisLeaderboardStore
from scoreboard.boards.closed_seasons import ClosedSeasons, RedisClosedSeasons
from scoreboard.boards.model import Board
from scoreboard.boards.registry import BoardRegistry, RedisBoardStorage
from scoreboard.boards.season_closer import SeasonCloser
from scoreboard.boards.seasons import RedisSeasons
from scoreboard.config import Settings
from scoreboard.intake.auth import issue_token
from scoreboard.models import ScoreUpdate
from scoreboard.push.broadcast import Broadcaster
from scoreboard.web.app import create_app
from tests.conftest import JWT_SECRET, REDIS_URL
from tests.test_board_scores import queued
from tests.test_boards_api import ADMIN, READER, get, put


async def post_score(api: TestClient, board: str, user: str, score: int) -> None:
    service = {"Authorization": f"Bearer {_service_token()}"}
    body = {"userId": user, "score": score, "username": user.title()}
    response = await api.post(f"/api/boards/{board}/scores", json=body, headers=service)
    assert response.status == 200, await response.text()


def _service_token() -> str:
    return issue_token(JWT_SECRET, "game-server", extra_claims={"role": "service"})


async def reset(api: TestClient, board: str) -> tuple[int, dict]:
    response = await api.post(f"/api/admin/boards/{board}/reset", headers=ADMIN)
    return response.status, await response.json()


class Worker:
    """What a worker does with the queued updates and the closed seasons, driven by the test."""

    def __init__(self, client: redis.Redis, namespace: str, ledger: PostgresLedger | None):
        prefix = f"{namespace}:"
        self._namespace = namespace
        self._store = RedisLeaderboardStore(client, prefix)
        closed: ClosedSeasons = (
            RedisClosedSeasons(client, prefix, self._store)
            if ledger is None
            else PostgresClosedSeasons(ledger, client, prefix, self._store)
        )
        self._closer = SeasonCloser(
            BoardRegistry(RedisBoardStorage(client, prefix)),
            RedisSeasons(client, prefix),
            closed,
            Broadcaster(_Nowhere()),
            kept=12,
        )

    async def apply_queued(self) -> list[ScoreUpdate]:
        updates = await queued(self._namespace)
        for update in updates:
            await self._store.for_board(_rules(update), update.season).apply([update])
        return updates

    async def close_seasons(self) -> None:
        await self._closer.close_due()


class _Nowhere:
    async def emit(self, *args: object, **kwargs: object) -> None:
        pass


def _rules(update: ScoreUpdate) -> Board:
    """The board as the update carries it."""
    return Board(update.board_id, update.board_id, update.operator, update.order)


@pytest.fixture
async def client() -> AsyncIterator[redis.Redis]:
    client = redis.from_url(REDIS_URL)
    yield client
    await client.aclose()


@pytest.fixture(params=["redis", "postgres"])
async def deployment(request, aiohttp_client, env, namespace, client, database_url):
    """The web app (with DATABASE_URL or without) and a worker's part, on real services."""
    ledger = None
    if request.param == "postgres":
        env = {**env, "DATABASE_URL": database_url}
        ledger = await PostgresLedger.connect(database_url, run_migrations=True)
    api = await aiohttp_client(create_app(Settings.from_env(env)))
    yield api, Worker(client, namespace, ledger)
    if ledger is not None:
        await ledger.close()


async def test_an_admin_closes_a_season_and_readers_read_it(deployment):
    api, worker = deployment
    assert (await put(api, "cup", {"name": "Cup", "reset": "never"}))[0] == 201
    for user, score in (("ann", 5), ("bob", 9), ("cid", 7)):
        await post_score(api, "cup", user, score)
    await worker.apply_queued()

    assert await reset(api, "cup") == (
        200,
        {
            "status": "success",
            "message": "Season 1 closed",
            "boardId": "cup",
            "closedSeason": 1,
            "season": 2,
        },
    )
    status, live = await get(api, "/api/boards/cup/leaderboard")
    assert (status, live["season"], live["total"]) == (200, 2, 0)
    await worker.close_seasons()

    status, listed = await get(api, "/api/boards/cup/seasons")
    assert status == 200 and listed["boardId"] == "cup"
    [season] = listed["seasons"]
    assert (season["season"], season["entries"]) == (1, 3)
    assert season["startedAt"] < season["endedAt"]
    status, page = await get(api, "/api/boards/cup/seasons/1/leaderboard?limit=2&offset=1")
    assert status == 200
    assert (page["boardId"], page["season"], page["total"]) == ("cup", 1, 3)
    assert [(r["rank"], r["userId"], r["score"]) for r in page["entries"]] == [
        (2, "cid", 7),
        (3, "ann", 5),
    ]


async def test_a_board_made_again_after_its_removal_has_no_closed_seasons(deployment):
    api, worker = deployment
    await put(api, "cup", {"name": "Cup"})
    await post_score(api, "cup", "ann", 5)
    await worker.apply_queued()
    await reset(api, "cup")
    await worker.close_seasons()
    assert (await api.delete("/api/admin/boards/cup", headers=ADMIN)).status == 200
    await put(api, "cup", {"name": "Cup"})
    assert (await get(api, "/api/boards/cup/seasons"))[1]["seasons"] == []
    await post_score(api, "cup", "bob", 2)
    await worker.apply_queued()
    await reset(api, "cup")
    await worker.close_seasons()
    page = (await get(api, "/api/boards/cup/seasons/1/leaderboard"))[1]
    assert [(r["userId"], r["score"]) for r in page["entries"]] == [("bob", 2)]


async def test_what_cannot_be_read_or_reset_is_refused(deployment):
    api, _ = deployment
    await put(api, "cup", {"name": "Cup"})
    assert (await get(api, "/api/boards/cup/seasons/1/leaderboard"))[0] == 404  # still live
    assert (await get(api, "/api/boards/cup/seasons/0/leaderboard"))[0] == 400
    assert (await get(api, "/api/boards/cup/seasons/01/leaderboard"))[0] == 400
    assert (await get(api, "/api/boards/nowhere/seasons"))[0] == 404
    assert (await get(api, "/api/boards/cup/seasons"))[1]["seasons"] == []
    status, answer = await reset(api, "global")
    assert status == 409 and "POST /api/admin/board/reset" in answer["message"]
    assert (await reset(api, "nowhere"))[0] == 404
    response = await api.post("/api/admin/boards/cup/reset", headers=READER)
    assert response.status == 403


async def test_an_update_accepted_before_a_reset_is_queued_in_the_old_season(deployment):
    api, worker = deployment
    await put(api, "cup", {"name": "Cup"})
    await post_score(api, "cup", "ann", 5)  # accepted, not applied: no worker yet
    await reset(api, "cup")
    await post_score(api, "cup", "ann", 2)
    closing = asyncio.create_task(worker.close_seasons())
    await asyncio.sleep(0.2)
    assert not closing.done()  # season 1 waits for ann's first update
    applied = await worker.apply_queued()
    await closing
    assert [u.season for u in applied] == [1, 2]
    page = (await get(api, "/api/boards/cup/seasons/1/leaderboard"))[1]
    assert [(r["userId"], r["score"]) for r in page["entries"]] == [("ann", 5)]
    live = (await get(api, "/api/boards/cup/leaderboard"))[1]
    assert [(r["userId"], r["score"]) for r in live["entries"]] == [("ann", 2)]


async def test_the_single_process_closes_and_keeps_seasons_in_memory(aiohttp_client):
    api = await aiohttp_client(create_app(Settings.from_env({"JWT_SECRET": JWT_SECRET})))
    await put(api, "cup", {"name": "Cup", "operator": "best"})
    for user, score in (("ann", 5), ("bob", 9)):
        await post_score(api, "cup", user, score)
    for _ in range(100):  # the in-process worker applies them
        if (await get(api, "/api/boards/cup/leaderboard"))[1]["total"] == 2:
            break
        await asyncio.sleep(0.02)
    assert (await reset(api, "cup"))[0] == 200
    for _ in range(60):  # its season closer archives the season within a pass (1 s)
        listed = (await get(api, "/api/boards/cup/seasons"))[1]["seasons"]
        if listed:
            break
        await asyncio.sleep(0.05)
    assert [(s["season"], s["entries"]) for s in listed] == [(1, 2)]
    page = (await get(api, "/api/boards/cup/seasons/1/leaderboard"))[1]
    assert [(r["rank"], r["userId"]) for r in page["entries"]] == [(1, "bob"), (2, "ann")]
    live = (await get(api, "/api/boards/cup/leaderboard"))[1]
    assert (live["season"], live["total"]) == (2, 0)


async def test_a_running_worker_archives_a_season_closed_by_hand(web, http):
    """The real server and worker processes: the worker's season closer does the archiving."""

    async def call(method: str, path: str, headers: dict, body: object = None):
        async with http.request(method, f"{web.url}{path}", json=body, headers=headers) as r:
            return r.status, await r.json()

    assert (await call("PUT", "/api/admin/boards/cup", ADMIN, {"name": "Cup"}))[0] == 201
    service = {"Authorization": f"Bearer {_service_token()}"}
    for user, score in (("ann", 3), ("bob", 8)):
        body = {"userId": user, "score": score, "username": user.title()}
        assert (await call("POST", "/api/boards/cup/scores", service, body))[0] == 200
    assert (await call("POST", "/api/admin/boards/cup/reset", ADMIN))[0] == 200
    for _ in range(100):
        seasons = (await call("GET", "/api/boards/cup/seasons", READER))[1]["seasons"]
        if seasons:
            break
        await asyncio.sleep(0.05)
    assert [(s["season"], s["entries"]) for s in seasons] == [(1, 2)]
    page = (await call("GET", "/api/boards/cup/seasons/1/leaderboard", READER))[1]
    assert [(r["rank"], r["userId"], r["score"]) for r in page["entries"]] == [
        (1, "bob", 8),
        (2, "ann", 3),
    ]
