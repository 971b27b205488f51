"""GET /api/leaderboard and GET /api/users/{userId}/rank on real Redis: bodies, errors, limits."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Callable
from urllib.parse import quote

import pytest
import redis.asyncio as redis
from aiohttp.test_utils import TestClient

from scoreboard.apply.store.redis_store import RedisLeaderboardStore
from scoreboard.config import Settings
from scoreboard.errors import ConfigError, StoreUnavailable
from scoreboard.models import ScoreUpdate
from scoreboard.web.app import create_app
from tests.conftest import REDIS_URL, TokenFactory, bearer
from tests.processes import free_port

BOARD = "/api/leaderboard"
AUTH_FAILED = {"status": "error", "message": "Authentication failed"}
MAX_SAFE = 2**53 - 1


@pytest.fixture
async def board(namespace: str) -> AsyncIterator[RedisLeaderboardStore]:
    """The store the `api` app reads, written to as a worker would."""
    client = redis.from_url(REDIS_URL)
    yield RedisLeaderboardStore(client, f"{namespace}:")
    await client.aclose()


async def play(board: RedisLeaderboardStore, *scores: tuple[str, int]) -> None:
    """Apply each (userId, increment) as its own batch, in order."""
    for user, increment in scores:
        await board.apply([ScoreUpdate.new(user, user.title(), increment)])


async def get(api: TestClient, path: str, token: str | None) -> tuple[int, dict]:
    response = await api.get(path, headers=bearer(token) if token is not None else {})
    return response.status, await response.json()


def row(rank: int, user: str, score: int) -> dict[str, object]:
    return {"rank": rank, "userId": user, "username": user.title(), "score": score}


async def test_board_body_is_exactly_the_documented_one(api, board, make_token: TokenFactory):
    await play(board, ("alice", 5), ("bob", 12), ("carol", 8))
    status, body = await get(api, BOARD, make_token("viewer"))
    assert status == 200
    assert body == {
        "status": "success",
        "version": 3,
        "total": 3,
        "entries": [row(1, "bob", 12), row(2, "carol", 8), row(3, "alice", 5)],
    }


async def test_board_defaults_to_ten_rows_and_pages_with_offset(api, board, make_token):
    await board.apply([ScoreUpdate.new(f"p{i:03}", f"P{i:03}", i) for i in range(1, 151)])
    token = make_token("viewer")
    _, first = await get(api, BOARD, token)
    assert [e["rank"] for e in first["entries"]] == list(range(1, 11))
    assert first["entries"][0]["userId"] == "p150"
    _, page = await get(api, f"{BOARD}?limit=100&offset=120", token)
    assert page["total"] == 150
    assert [e["rank"] for e in page["entries"]] == list(range(121, 151))
    assert page["entries"][-1] == {"rank": 150, "userId": "p001", "username": "P001", "score": 1}
    _, past = await get(api, f"{BOARD}?offset={MAX_SAFE}", token)
    assert (past["total"], past["entries"]) == (150, [])


async def test_equal_scores_rank_whoever_reached_them_first_everywhere(api, board, make_token):
    await play(board, ("bob", 10), ("alice", 4), ("carol", 10), ("alice", 6), ("dave", 10))
    token = make_token("viewer")
    _, body = await get(api, BOARD, token)
    order = ["bob", "carol", "alice", "dave"]
    assert [e["userId"] for e in body["entries"]] == order
    assert [e.user_id for e in (await board.leaderboard()).top] == order
    for rank, user in enumerate(order, start=1):
        _, standing = await get(api, f"/api/users/{user}/rank?around=0", token)
        assert standing["user"] == row(rank, user, 10)


async def test_rank_body_has_the_user_and_neighbours_on_each_side(api, board, make_token):
    await play(board, *[(f"p{i}", i * 10) for i in range(1, 8)])
    status, body = await get(api, "/api/users/p4/rank?around=2", make_token("viewer"))
    assert status == 200
    assert body == {
        "status": "success",
        "version": 7,
        "total": 7,
        "user": {"rank": 4, "userId": "p4", "username": "P4", "score": 40},
        "above": [
            {"rank": 2, "userId": "p6", "username": "P6", "score": 60},
            {"rank": 3, "userId": "p5", "username": "P5", "score": 50},
        ],
        "below": [
            {"rank": 5, "userId": "p3", "username": "P3", "score": 30},
            {"rank": 6, "userId": "p2", "username": "P2", "score": 20},
        ],
    }
    _, default = await get(api, "/api/users/p7/rank", make_token("viewer"))
    assert (len(default["above"]), len(default["below"])) == (0, 5)


async def test_any_valid_token_reads_anyones_rank(api, board, make_token: TokenFactory):
    await play(board, ("alice", 5))
    status, body = await get(api, "/api/users/alice/rank", make_token("mallory"))
    assert (status, body["user"]["userId"]) == (200, "alice")


@pytest.mark.parametrize("user", ["nobody", "a" * 128, "%D0%B0%D0%BB%D0%B8%D1%81%D0%B0"])
async def test_a_user_with_no_score_is_404(api, board, make_token: TokenFactory, user: str):
    await play(board, ("alice", 5))
    status, body = await get(api, f"/api/users/{user}/rank", make_token("nobody"))
    assert (status, body) == (404, {"status": "error", "message": "No score for this user"})


@pytest.mark.parametrize(
    ("user", "message"),
    [
        ("al%00ice", "userId must not contain control characters"),
        ("al%0Aice", "userId must not contain control characters"),
        ("%D0%B0lice", "userId must not mix scripts that look alike (e.g. Latin and Cyrillic)"),
        ("al%E3%85%A4ice", "userId must contain only printable characters"),
        ("%20alice", "userId must not begin or end with whitespace"),
    ],
)
async def test_a_user_id_no_update_could_carry_is_400(api, make_token, user: str, message: str):
    status, body = await get(api, f"/api/users/{user}/rank", make_token("nobody"))
    assert (status, body) == (400, {"status": "error", "message": message})


async def test_user_ids_with_reserved_url_characters_are_found(api, board, make_token):
    odd = "team/red?#1 ü"
    await play(board, (odd, 7))
    status, body = await get(api, f"/api/users/{quote(odd, safe='')}/rank", make_token("viewer"))
    assert (status, body["user"]["userId"], body["user"]["score"]) == (200, odd, 7)


async def test_scores_read_back_exactly_up_to_max_safe_integer(api, board, make_token):
    await play(board, ("whale", MAX_SAFE - 1), ("whale", 1), ("minnow", MAX_SAFE - 2))
    token = make_token("viewer")
    response = await api.get(BOARD, headers=bearer(token))
    # The exact digits on the wire, not a float that happens to round back.
    assert re.search(r'"score":\s*9007199254740991\b', await response.text())
    _, body = await get(api, "/api/users/minnow/rank", token)
    assert (body["user"]["score"], body["above"][0]["score"]) == (MAX_SAFE - 2, MAX_SAFE)


INVALID_QUERIES = [
    ("limit=0", "limit must be an integer from 1 to 100"),
    ("limit=101", "limit must be an integer from 1 to 100"),
    ("limit=-1", "limit must be an integer from 1 to 100"),
    ("limit=ten", "limit must be an integer from 1 to 100"),
    ("limit=1.5", "limit must be an integer from 1 to 100"),
    ("limit=1e1", "limit must be an integer from 1 to 100"),
    ("limit=%2B5", "limit must be an integer from 1 to 100"),
    ("limit=%205", "limit must be an integer from 1 to 100"),
    ("limit=", "limit must be an integer from 1 to 100"),
    ("limit=5&limit=6", "limit must be an integer from 1 to 100"),
    ("limit=%D9%A3", "limit must be an integer from 1 to 100"),  # an Arabic-Indic digit 3
    ("offset=-1", "offset must be an integer from 0 to 9007199254740991"),
    ("offset=9007199254740992", "offset must be an integer from 0 to 9007199254740991"),
    ("offset=" + "9" * 5000, "offset must be an integer from 0 to 9007199254740991"),
]


@pytest.mark.parametrize(("query", "message"), INVALID_QUERIES)
async def test_invalid_board_queries_are_400(api, make_token, query: str, message: str):
    status, body = await get(api, f"{BOARD}?{query}", make_token("viewer"))
    assert (status, body) == (400, {"status": "error", "message": message})


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("/api/users/alice/rank?around=51", "around must be an integer from 0 to 50"),
        ("/api/users/alice/rank?around=-1", "around must be an integer from 0 to 50"),
        ("/api/users/alice/rank?around=x", "around must be an integer from 0 to 50"),
        ("/api/users/" + "a" * 129 + "/rank", "userId must be at most 128 characters"),
    ],
)
async def test_invalid_rank_requests_are_400(api, make_token, path: str, message: str):
    status, body = await get(api, path, make_token("viewer"))
    assert (status, body) == (400, {"status": "error", "message": message})


@pytest.mark.parametrize("path", [BOARD, "/api/users/alice/rank"])
@pytest.mark.parametrize("token", [None, "not-a-jwt"], ids=["no token", "garbage token"])
async def test_reads_need_a_valid_token(api, board, path: str, token: str | None):
    await play(board, ("alice", 5))
    assert await get(api, path, token) == (401, AUTH_FAILED)


async def test_authentication_comes_before_query_validation(api):
    assert await get(api, f"{BOARD}?limit=0", None) == (401, AUTH_FAILED)


async def test_reads_have_their_own_per_user_rate_limit(
    aiohttp_client: Callable, env: dict[str, str], make_token: TokenFactory
):
    settings = Settings.from_env({**env, "READ_RATE_LIMIT": "2/minute", "RATE_LIMIT": "2/minute"})
    api = await aiohttp_client(create_app(settings))
    alice, bob = make_token("alice"), make_token("bob")
    assert (await get(api, BOARD, alice))[0] == 200
    assert (await get(api, "/api/users/alice/rank", alice))[0] == 404  # counted all the same
    limited = await api.get(BOARD, headers=bearer(alice))
    assert limited.status == 429
    assert int(limited.headers["Retry-After"]) >= 1
    assert await limited.json() == {"status": "error", "message": "Too many requests"}
    assert (await get(api, BOARD, bob))[0] == 200  # per user
    # Reading did not spend the write allowance, nor writing the read allowance.
    for increment in (1, 2):
        posted = await api.post(
            "/api/score/update",
            json={"userId": "bob", "scoreIncrement": increment},
            headers=bearer(bob),
        )
        assert posted.status == 200
    assert (await get(api, BOARD, bob))[0] == 200


async def test_a_read_when_redis_is_unreachable_is_503(
    aiohttp_client: Callable, env: dict[str, str], make_token: TokenFactory
):
    dead_redis = f"redis://127.0.0.1:{free_port()}/0"
    api = await aiohttp_client(create_app(Settings.from_env({**env, "REDIS_URL": dead_redis})))
    response = await api.get(BOARD, headers=bearer(make_token("viewer")))
    assert response.status == 503
    assert response.headers["Retry-After"].isdigit()
    assert (await response.json())["status"] == "error"


@pytest.mark.parametrize("read", ["board_page", "user_rank"])
async def test_store_reads_raise_store_unavailable_without_redis(namespace: str, read: str):
    client = redis.from_url(f"redis://127.0.0.1:{free_port()}/0")
    store = RedisLeaderboardStore(client, f"{namespace}:")
    with pytest.raises(StoreUnavailable):
        if read == "board_page":
            await store.board_page(0, 10)
        else:
            await store.user_rank("alice", 5)
    await client.aclose()


def test_read_rate_limit_defaults_to_600_a_minute_and_is_validated():
    assert Settings.from_env({}).read_rate_limit == "600/minute"
    assert Settings.from_env({"READ_RATE_LIMIT": "10/second"}).read_rate_limit == "10/second"
    with pytest.raises(ConfigError, match="READ_RATE_LIMIT"):
        Settings.from_env({"READ_RATE_LIMIT": "lots"})
