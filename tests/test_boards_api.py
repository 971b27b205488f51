"""Boards over HTTP: admins create, change and remove them; any reader lists them."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
import redis.asyncio as redis
from aiohttp.test_utils import TestClient

from scoreboard.apply.store.redis_store import RedisLeaderboardStore
from scoreboard.boards.keys import board_prefix, current_season_key
from scoreboard.boards.model import Board
from scoreboard.boards.registry import REFRESH_SECONDS
from scoreboard.config import Settings
from scoreboard.intake.auth import issue_token
from scoreboard.models import ScoreUpdate
from scoreboard.web.app import create_app
from tests.conftest import JWT_SECRET, REDIS_URL, bearer

ADMIN = bearer(issue_token(JWT_SECRET, "root", "Root", extra_claims={"role": "admin"}))
READER = bearer(issue_token(JWT_SECRET, "alice", "Alice"))


async def put(api: TestClient, board_id: str, body: object) -> tuple[int, dict]:
    response = await api.put(f"/api/admin/boards/{board_id}", json=body, headers=ADMIN)
    return response.status, await response.json()


async def get(api: TestClient, path: str) -> tuple[int, dict]:
    response = await api.get(path, headers=READER)
    return response.status, await response.json()


async def keys_under(prefix: str) -> list[bytes]:
    client = redis.from_url(REDIS_URL)
    try:
        return [key async for key in client.scan_iter(match=f"{prefix}*")]
    finally:
        await client.aclose()


async def give_score(namespace: str, board: Board, season: int = 1) -> None:
    """A score on the board as a worker would apply it."""
    client = redis.from_url(REDIS_URL)
    store = RedisLeaderboardStore(client, f"{namespace}:").for_board(board, season)
    await store.apply([ScoreUpdate.new("bob", "Bob", 7, board=board, season=season)])
    await client.aclose()


async def test_a_board_is_created_listed_changed_and_removed(api, namespace):
    before = datetime.now(UTC)
    status, created = await put(
        api, "weekly", {"name": "  Weekly \u200b  sprint ", "operator": "best", "reset": "weekly"}
    )
    assert status == 201
    board = created["board"]
    started = datetime.fromisoformat(board.pop("seasonStartedAt"))
    assert before - timedelta(seconds=1) <= started <= datetime.now(UTC)
    assert board == {
        "boardId": "weekly",
        "name": "Weekly sprint",
        "operator": "best",
        "order": "desc",
        "reset": "weekly",
        "authoritative": False,
        "season": 1,
    }

    status, listed = await get(api, "/api/boards")
    assert status == 200
    assert [b["boardId"] for b in listed["boards"]] == ["global", "weekly"]
    assert listed["boards"][1] == board
    status, one = await get(api, "/api/boards/weekly")
    assert status == 200
    assert datetime.fromisoformat(one["board"].pop("seasonStartedAt")) == started
    assert one["board"] == board

    status, renamed = await put(api, "weekly", {"name": "Sprint", "operator": "best"})
    assert status == 200
    assert renamed["board"]["name"] == "Sprint"
    assert renamed["board"]["reset"] == "never"  # left out: the default, as documented
    assert datetime.fromisoformat(renamed["board"]["seasonStartedAt"]) == started

    await give_score(namespace, Board("weekly", "Sprint", "best"))
    status, refused = await put(api, "weekly", {"name": "Sprint", "operator": "incr"})
    assert (status, refused["message"]) == (
        409,
        "Board weekly has scores: its operator and order cannot change",
    )
    status, refused = await put(
        api, "weekly", {"name": "Sprint", "operator": "best", "order": "asc"}
    )
    assert status == 409
    status, kept = await put(api, "weekly", {"name": "Still sprint", "operator": "best"})
    assert (status, kept["board"]["operator"]) == (200, "best")

    assert await keys_under(board_prefix(f"{namespace}:", "weekly"))
    removed = await api.delete("/api/admin/boards/weekly", headers=ADMIN)
    assert (removed.status, await removed.json()) == (
        200,
        {"status": "success", "message": "Board weekly removed"},
    )
    assert await keys_under(board_prefix(f"{namespace}:", "weekly")) == []
    assert (await get(api, "/api/boards/weekly"))[0] == 404
    assert [b["boardId"] for b in (await get(api, "/api/boards"))[1]["boards"]] == ["global"]
    again = await api.delete("/api/admin/boards/weekly", headers=ADMIN)
    assert (again.status, (await again.json())["message"]) == (404, "No such board")


async def test_the_live_season_decides_whether_a_board_has_scores(api, namespace):
    assert (await put(api, "cup", {"name": "Cup"}))[0] == 201
    await give_score(namespace, Board("cup", "Cup"), season=1)
    client = redis.from_url(REDIS_URL)
    await client.set(current_season_key(f"{namespace}:", "cup"), 2)
    await client.aclose()
    status, one = await get(api, "/api/boards/cup")
    assert one["board"]["season"] == 2
    assert [b["season"] for b in (await get(api, "/api/boards"))[1]["boards"]] == [1, 2]
    status, changed = await put(api, "cup", {"name": "Cup", "order": "asc"})
    assert (status, changed["board"]["order"]) == (200, "asc")


async def test_removing_a_board_leaves_the_others_alone(api, namespace):
    for board_id in ("a", "a-b", "ab"):
        assert (await put(api, board_id, {"name": board_id}))[0] == 201
        await give_score(namespace, Board(board_id, board_id))
    assert (await api.delete("/api/admin/boards/a", headers=ADMIN)).status == 200
    for board_id in ("a-b", "ab"):
        assert await keys_under(board_prefix(f"{namespace}:", board_id))
    status, listed = await get(api, "/api/boards")
    assert [b["boardId"] for b in listed["boards"]] == ["global", "a-b", "ab"]


async def test_the_global_board_is_listed_and_fixed(api):
    status, one = await get(api, "/api/boards/global")
    assert status == 200
    assert one["board"]["name"] == "Global" and one["board"]["operator"] == "incr"
    fixed = "The global board cannot be changed or removed"
    assert await put(api, "global", {"name": "Mine"}) == (
        409,
        {"status": "error", "message": fixed},
    )
    removed = await api.delete("/api/admin/boards/global", headers=ADMIN)
    assert (removed.status, (await removed.json())["message"]) == (409, fixed)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"name": "x", "operator": "max"}, "operator must be one of incr, best, set"),
        ({"name": "x", "order": "up"}, "order must be one of desc, asc"),
        ({"name": "x", "reset": "hourly"}, "reset must be one of never, daily, weekly, monthly"),
        ({"name": "x", "authoritative": "yes"}, "authoritative must be true or false"),
        ({"name": "x", "colour": "red"}, 'Unknown field "colour"'),
        ({"operator": "best"}, "name must be 1 to 64 printable characters"),
        ({"name": "\u200b \u2800"}, "name must be 1 to 64 printable characters"),
        ({"name": "n" * 65}, "name must be 1 to 64 printable characters"),
        ({"name": 5}, "name must be 1 to 64 printable characters"),
        (["name"], "Request body must be a JSON object"),
    ],
)
async def test_bad_board_settings_are_400_saying_what_is_wrong(api, body, message):
    assert await put(api, "weekly", body) == (400, {"status": "error", "message": message})
    assert (await get(api, "/api/boards/weekly"))[0] == 404


@pytest.mark.parametrize("board_id", ["Weekly", "-x", "a" * 65, "a.b", "a%0A", "%C3%A9"])
async def test_bad_board_ids_are_400(api, board_id):
    message = "boardId must match ^[a-z0-9][a-z0-9_-]{0,63}$"
    assert await get(api, f"/api/boards/{board_id}") == (
        400,
        {"status": "error", "message": message},
    )
    assert (await put(api, board_id, {"name": "x"}))[0] == 400
    removed = await api.delete(f"/api/admin/boards/{board_id}", headers=ADMIN)
    assert removed.status == 400


@pytest.mark.parametrize("method", ["PUT", "DELETE"])
async def test_only_admins_change_boards(api, method):
    path = "/api/admin/boards/weekly"
    response = await api.request(method, path, json={"name": "x"}, headers=READER)
    assert (response.status, (await response.json())["message"]) == (
        403,
        "This needs a token with role admin",
    )
    assert (await api.request(method, path, json={"name": "x"})).status == 401
    assert (await get(api, "/api/boards/weekly"))[0] == 404


async def test_reads_need_a_token(api):
    assert (await api.get("/api/boards")).status == 401
    assert (await api.get("/api/boards/global")).status == 401


async def test_reads_count_against_the_read_limit(aiohttp_client, env):
    api = await aiohttp_client(
        create_app(Settings.from_env({**env, "READ_RATE_LIMIT": "2/minute"}))
    )
    statuses = [(await api.get(path, headers=READER)).status for path in ["/api/boards"] * 3]
    assert statuses == [200, 200, 429]


async def test_a_board_made_on_one_node_is_seen_by_another(aiohttp_client, env):
    node_a = await aiohttp_client(create_app(Settings.from_env(env)))
    node_b = await aiohttp_client(create_app(Settings.from_env(env)))
    assert [b["boardId"] for b in (await get(node_b, "/api/boards"))[1]["boards"]] == ["global"]
    assert (await put(node_a, "weekly", {"name": "Weekly"}))[0] == 201
    await asyncio.sleep(REFRESH_SECONDS + 0.2)
    assert (await get(node_b, "/api/boards/weekly"))[0] == 200
    listed = [b["boardId"] for b in (await get(node_b, "/api/boards"))[1]["boards"]]
    assert listed == ["global", "weekly"]
    assert (await put(node_b, "weekly", {"name": "Renamed"}))[0] == 200  # it exists: 200
    assert (await node_a.delete("/api/admin/boards/weekly", headers=ADMIN)).status == 200
    await asyncio.sleep(REFRESH_SECONDS + 0.2)
    assert (await get(node_b, "/api/boards/weekly"))[0] == 404


async def test_boards_in_the_single_process_mode(aiohttp_client):
    api = await aiohttp_client(create_app(Settings.from_env({"JWT_SECRET": JWT_SECRET})))
    status, created = await put(api, "weekly", {"name": "Weekly", "operator": "set"})
    assert status == 201 and created["board"]["seasonStartedAt"] is not None
    assert [b["boardId"] for b in (await get(api, "/api/boards"))[1]["boards"]] == [
        "global",
        "weekly",
    ]
    status, changed = await put(api, "weekly", {"name": "Weekly", "order": "asc"})
    assert (status, changed["board"]["order"], changed["board"]["operator"]) == (200, "asc", "incr")
    assert (await api.delete("/api/admin/boards/weekly", headers=ADMIN)).status == 200
    assert (await get(api, "/api/boards/weekly"))[0] == 404
