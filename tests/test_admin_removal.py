"""An admin removes a user: from every board's live season (or one board's), in Redis and in the
ledger, with the new top pushed; closed seasons keep them."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime

import asyncpg
import pytest
import redis.asyncio as redis
from aiohttp.test_utils import TestClient

from scoreboard.apply.ledger.closed_seasons import PostgresClosedSeasons
from scoreboard.apply.ledger.rebuild import ensure_board_matches_ledger, rebuild_board
from scoreboard.apply.ledger.seasons import LedgerSeasons
from scoreboard.apply.store.redis_store import RedisLeaderboardStore
from scoreboard.boards.model import GLOBAL_BOARD, Board
from scoreboard.boards.registry import BoardRegistry, RedisBoardStorage
from scoreboard.boards.season_closer import SeasonCloser
from scoreboard.boards.seasons import RedisSeasons
from scoreboard.config import Settings
from scoreboard.models import ScoreUpdate
from scoreboard.web.app import create_app
from tests.conftest import REDIS_URL, TokenFactory, remove_keys
from tests.test_boards_api import ADMIN, put
from tests.test_season_closer import Pushes
from tests.test_subscriptions import Chooser

WEEKLY = Board("weekly", "Weekly")
LAPS = Board("laps", "Lap times", operator="best", order="asc")
# (board, season, user, value), as a worker applies them.
APPLIED = [
    (GLOBAL_BOARD, 1, "ann", 9),
    (GLOBAL_BOARD, 1, "bob", 4),
    (WEEKLY, 1, "ann", 5),
    (WEEKLY, 1, "bob", 3),
    (WEEKLY, 2, "ann", 7),
    (WEEKLY, 2, "bob", 2),
    (LAPS, 1, "ann", 58),
    (LAPS, 1, "bob", 61),
    (LAPS, 1, "cid", 64),
]
LIVE = [(GLOBAL_BOARD, 1), (WEEKLY, 2), (LAPS, 1)]


@pytest.fixture
async def client() -> AsyncIterator[redis.Redis]:
    client = redis.from_url(REDIS_URL)
    yield client
    await client.aclose()


@pytest.fixture
async def deployment(aiohttp_client, env, namespace, database_url, client, ledger) -> TestClient:
    """The web app with a ledger; ann, bob (and cid) on global, weekly's seasons 1 (archived)
    and 2, and laps."""
    api = await aiohttp_client(create_app(Settings.from_env({**env, "DATABASE_URL": database_url})))
    for board in (WEEKLY, LAPS):
        body = {"name": board.name, "operator": board.operator, "order": board.order}
        assert (await put(api, board.board_id, body))[0] == 201
    store = RedisLeaderboardStore(client, f"{namespace}:", ledger_backed=True)
    await ensure_board_matches_ledger(ledger, store)  # what a worker does at start-up
    seasons = LedgerSeasons(ledger, RedisSeasons(client, f"{namespace}:"))
    for board, season, user, value in APPLIED:
        if season == 2 and (await seasons.current(board.board_id)).number == 1:
            now = datetime.now(UTC)
            assert await seasons.move(board.board_id, 1, now, now) is not None
        update = ScoreUpdate.new(user, user.title(), value, board=board, season=season)
        await store.for_board(board, season).apply([update], await ledger.record([update]))
    registry = BoardRegistry(RedisBoardStorage(client, f"{namespace}:"))
    closed = PostgresClosedSeasons(ledger, client, f"{namespace}:", store)
    await SeasonCloser(registry, seasons, closed, Pushes(), 12).close_due()
    return api


async def users_on(api: TestClient, path: str) -> list[str]:
    response = await api.get(path, headers=ADMIN)
    assert response.status == 200, await response.text()
    return [row["userId"] for row in (await response.json())["entries"]]


async def removals(database_url: str) -> list[tuple[object, ...]]:
    connection = await asyncpg.connect(database_url)
    try:
        found = await connection.fetch(
            "SELECT action, user_ids, admin, board_id FROM admin_actions ORDER BY id"
        )
    finally:
        await connection.close()
    return [tuple(row.values()) for row in found]


async def test_a_user_removed_is_off_every_live_board_and_stays_off_after_a_rebuild(
    deployment, ledger, client, namespace, database_url, make_token: TokenFactory
):
    api = deployment
    watcher = Chooser()
    await watcher.connect_choosing(str(api.make_url("")), make_token("viewer"), ["laps"])
    snapshot = await watcher.next_update()
    assert [row["userId"] for row in snapshot["top10"]] == ["ann", "bob", "cid"]

    response = await api.delete("/api/admin/users/ann", headers=ADMIN)
    assert response.status == 200
    assert await response.json() == {"status": "success", "message": "ann removed from every board"}

    pushed = await watcher.next_update()
    await watcher.client.disconnect()
    assert (pushed["boardId"], pushed["season"]) == ("laps", 1)
    assert [row["userId"] for row in pushed["top10"]] == ["bob", "cid"]
    assert pushed["version"] > snapshot["version"]
    assert await users_on(api, "/api/leaderboard") == ["bob"]
    assert await users_on(api, "/api/boards/weekly/leaderboard") == ["bob"]
    assert await users_on(api, "/api/boards/laps/leaderboard") == ["bob", "cid"]
    # The closed season is the record of what happened: it keeps them.
    assert await users_on(api, "/api/boards/weekly/seasons/1/leaderboard") == ["ann", "bob"]
    assert await removals(database_url) == [("remove", ["ann"], "root", None)]

    # The ledger forgot their live values too: a Redis rebuilt from it does not bring them back.
    remove_keys(f"{namespace}:")
    store = RedisLeaderboardStore(client, f"{namespace}:", ledger_backed=True)
    for board, season in LIVE:
        rebuilt = await rebuild_board(ledger, store.for_board(board, season))
        assert "ann" not in [entry.user_id for entry in rebuilt.board.top]
    assert [s.user_id for s in await ledger.standings("weekly", 1)] == ["ann", "bob"]


async def test_a_user_is_removed_from_one_board_when_it_is_named(deployment, database_url):
    api = deployment
    response = await api.delete("/api/admin/users/ann?board=laps", headers=ADMIN)
    assert response.status == 200
    assert (await response.json())["message"] == "ann removed from board laps"
    assert await users_on(api, "/api/boards/laps/leaderboard") == ["bob", "cid"]
    assert await users_on(api, "/api/boards/weekly/leaderboard") == ["ann", "bob"]
    assert await users_on(api, "/api/leaderboard") == ["ann", "bob"]
    assert await removals(database_url) == [("remove", ["ann"], "root", "laps")]


@pytest.mark.parametrize(
    ("query", "status", "message"),
    [
        ("?board=nope", 404, "Board not found"),
        ("?board=Not%20An%20Id", 400, "board must be a board id: 1 to 64 of a-z, 0-9,"),
        ("?board=laps&board=weekly", 400, "board must be a board id"),
    ],
)
async def test_a_board_that_is_not_there_removes_no_one(
    deployment, database_url, query, status, message
):
    response = await deployment.delete(f"/api/admin/users/ann{query}", headers=ADMIN)
    assert response.status == status
    body = await response.json()
    assert body["status"] == "error" and body["message"].startswith(message)
    assert await users_on(deployment, "/api/boards/laps/leaderboard") == ["ann", "bob", "cid"]
    assert await removals(database_url) == []


async def test_without_a_ledger_every_board_loses_the_user_too(aiohttp_client, env, namespace):
    api = await aiohttp_client(create_app(Settings.from_env(env)))
    assert (await put(api, "laps", {"name": "Laps", "operator": "best", "order": "asc"}))[0] == 201
    client = redis.from_url(REDIS_URL)
    store = RedisLeaderboardStore(client, f"{namespace}:")
    for board, user, value in ((GLOBAL_BOARD, "ann", 3), (LAPS, "ann", 58), (LAPS, "bob", 61)):
        await store.for_board(board).apply(
            [ScoreUpdate.new(user, user.title(), value, board=board)]
        )
    await client.aclose()
    assert (await api.delete("/api/admin/users/ann", headers=ADMIN)).status == 200
    assert await users_on(api, "/api/leaderboard") == []
    assert await users_on(api, "/api/boards/laps/leaderboard") == ["bob"]


async def test_the_ledger_clears_removed_users_only_on_the_seasons_named(ledger):
    weekly = [
        ScoreUpdate.new(u, u.title(), 5, board=WEEKLY, season=s) for u in "ab" for s in (1, 2)
    ]
    await ledger.record(weekly)
    await ledger.record_removal(["a"], "root", [("weekly", 2)])
    assert [s.user_id for s in await ledger.standings("weekly", 2)] == ["b"]
    assert sorted(s.user_id for s in await ledger.standings("weekly", 1)) == ["a", "b"]
    with pytest.raises(ValueError):
        await ledger.record_removal(None, "root", [("weekly", 2)])
