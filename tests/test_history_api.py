"""GET /api/users/{userId}/history: the caller's own applied updates, newest first, paged."""

from __future__ import annotations

import pytest
from aiohttp.test_utils import TestClient

from scoreboard.boards.model import Board
from scoreboard.config import Settings
from scoreboard.models import ScoreUpdate
from scoreboard.web.app import create_app
from tests.conftest import TokenFactory, bearer
from tests.processes import free_port


@pytest.fixture
async def api(aiohttp_client, env, database_url) -> TestClient:
    return await aiohttp_client(
        create_app(Settings.from_env({**env, "DATABASE_URL": database_url}))
    )


async def history(api: TestClient, token: str, user: str, query: str = ""):
    return await api.get(f"/api/users/{user}/history{query}", headers=bearer(token))


async def test_pages_newest_first_until_the_cursor_runs_out(api, ledger, make_token: TokenFactory):
    await ledger.record([ScoreUpdate.new("alice", "Alice", n) for n in (1, 2, 3, 4, 5)])
    await ledger.record([ScoreUpdate.new("bob", "Bob", 100)])
    alice = make_token("alice")
    first = await history(api, alice, "alice", "?limit=2")
    assert first.status == 200
    body = await first.json()
    assert body["status"] == "success" and body["userId"] == "alice"
    assert [(e["increment"], e["score"]) for e in body["entries"]] == [(5, 15), (4, 10)]
    assert set(body["entries"][0]) == {
        "entryId",
        "messageId",
        "username",
        "increment",
        "score",
        "acceptedAt",
        "appliedAt",
    }
    seen = [e["increment"] for e in body["entries"]]
    while body["nextBefore"] is not None:
        page = await history(api, alice, "alice", f"?limit=2&before={body['nextBefore']}")
        body = await page.json()
        seen += [e["increment"] for e in body["entries"]]
    assert seen == [5, 4, 3, 2, 1]


async def test_only_the_user_themself_may_read_it(api, ledger, make_token: TokenFactory):
    await ledger.record([ScoreUpdate.new("alice", "Alice", 1)])
    response = await history(api, make_token("mallory"), "alice")
    assert response.status == 403
    assert await response.json() == {
        "status": "error",
        "message": "A user can only read their own history",
    }
    anonymous = await api.get("/api/users/alice/history")
    assert anonymous.status == 401


@pytest.mark.parametrize(
    "query", ["?limit=0", "?limit=101", "?limit=ten", "?before=-1", "?before=x"]
)
async def test_bad_paging_is_400(api, ledger, make_token: TokenFactory, query: str):
    response = await history(api, make_token("alice"), "alice", query)
    assert response.status == 400
    assert (await response.json())["status"] == "error"


async def test_a_user_without_updates_has_an_empty_history(api, ledger, make_token):
    response = await history(api, make_token("newcomer"), "newcomer")
    assert (await response.json())["entries"] == []


async def test_without_database_url_there_is_no_history(aiohttp_client, env, make_token):
    api = await aiohttp_client(create_app(Settings.from_env(env)))
    response = await history(api, make_token("alice"), "alice")
    assert response.status == 404
    assert "DATABASE_URL" in (await response.json())["message"]


async def test_postgres_unreachable_is_503_not_500(aiohttp_client, env, make_token):
    down = f"postgresql://postgres@127.0.0.1:{free_port()}/test"
    api = await aiohttp_client(create_app(Settings.from_env({**env, "DATABASE_URL": down})))
    response = await history(api, make_token("alice"), "alice")
    assert response.status == 503
    assert response.headers["Retry-After"].isdigit()


async def test_updates_on_other_boards_stay_out_of_the_global_history(
    api, ledger, make_token: TokenFactory
):
    laps = Board("laps", "Lap times", operator="best", order="asc")
    await ledger.record([ScoreUpdate.new("alice", "Alice", 3)])
    await ledger.record([ScoreUpdate.new("alice", "Alice", 61, board=laps)])
    body = await (await history(api, make_token("alice"), "alice")).json()
    assert [(e["increment"], e["score"]) for e in body["entries"]] == [(3, 3)]


async def test_a_boards_history_has_what_was_posted_the_value_it_led_to_and_the_season(
    api, ledger, make_token: TokenFactory
):
    from scoreboard.web.keys import BOARDS

    laps = Board("laps", "Lap times", operator="best", order="asc")
    await api.app[BOARDS].put(laps)
    await ledger.record([ScoreUpdate.new("alice", "Alice", 3)])
    await ledger.record([ScoreUpdate.new("alice", "Alice", t, board=laps) for t in (61, 58, 70)])
    await ledger.record([ScoreUpdate.new("alice", "Alice", 64, board=laps, season=2)])
    token = make_token("alice")
    first = await api.get("/api/boards/laps/users/alice/history?limit=3", headers=bearer(token))
    body = await first.json()
    assert (first.status, body["boardId"], body["userId"]) == (200, "laps", "alice")
    assert [(e["posted"], e["score"], e["season"]) for e in body["entries"]] == [
        (64, 64, 2),
        (70, 58, 1),
        (58, 58, 1),
    ]
    rest = await api.get(
        f"/api/boards/laps/users/alice/history?before={body['nextBefore']}", headers=bearer(token)
    )
    assert [e["posted"] for e in (await rest.json())["entries"]] == [61]
    other = await api.get("/api/boards/laps/users/bob/history", headers=bearer(token))
    unknown = await api.get("/api/boards/nowhere/users/alice/history", headers=bearer(token))
    assert (other.status, unknown.status) == (403, 404)
