"""The ledger with the real processes: Redis lost and rebuilt (global and every other board),
PostgreSQL down mid-stream."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import sys
import tempfile
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path

import aiohttp
import asyncpg
import pytest
import redis.asyncio as redis

from scoreboard.apply.store.redis_store import RedisLeaderboardStore
from scoreboard.boards.registry import REFRESH_SECONDS
from scoreboard.intake.auth import issue_token
from scoreboard.models import UserStanding
from tests.conftest import JWT_SECRET, bearer
from tests.private_services import PrivatePostgres, PrivateRedis
from tests.processes import PROJECT_ROOT, Processes, process_env
from tests.score_stream import (
    exactness,
    record_figures,
    stream_updates,
    wait_for_totals,
)
from tests.test_end_to_end import watching
from tests.test_subscriptions import Chooser

USERS = [f"p{i}" for i in range(6)]
TOKENS = {user: issue_token(JWT_SECRET, user, user.upper()) for user in USERS}


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[PrivateRedis]:
    server = PrivateRedis(tmp_path)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def ledger_env(env, database_url: str, private_redis: PrivateRedis) -> dict[str, str]:
    return {
        **env,
        "REDIS_URL": private_redis.url,
        "DATABASE_URL": database_url,
        "RATE_LIMIT": "1000000/minute",
    }


@pytest.fixture
def processes(tmp_path: Path) -> Iterator[Processes]:
    with Processes(tmp_path) as running:
        yield running


async def standings(redis_url: str, prefix: str) -> list[UserStanding]:
    client = redis.from_url(redis_url)
    try:
        return await RedisLeaderboardStore(client, prefix).standings()
    finally:
        await client.aclose()


async def flushall(redis_url: str) -> None:
    client = redis.from_url(redis_url)
    await client.flushall()
    await client.aclose()


async def ledger_counts(database_url: str) -> Counter[str]:
    connection = await asyncpg.connect(database_url)
    try:
        rows = await connection.fetch(
            "SELECT user_id, count(*) AS n, sum(increment) AS total FROM score_ledger "
            "GROUP BY user_id"
        )
    finally:
        await connection.close()
    assert all(r["n"] == r["total"] for r in rows)  # every update was +1
    return Counter({r["user_id"]: r["n"] for r in rows})


async def post(url: str, user: str, increment: int = 1) -> int:
    async with (
        aiohttp.ClientSession() as http,
        http.post(
            f"{url}/api/score/update",
            json={"userId": user, "scoreIncrement": increment},
            headers=bearer(TOKENS[user]),
        ) as response,
    ):
        assert response.status == 200, await response.text()
        return int((await response.json())["newScore"])


async def settled_stream(web_url: str, env: dict[str, str], seconds: float) -> Counter[str]:
    result = await stream_updates(web_url, TOKENS, duration=seconds, concurrency=6)
    assert result.statuses[200] == result.sent, result.statuses
    totals = await wait_for_totals(env["REDIS_URL"], env["REDIS_KEY_PREFIX"], result.accepted)
    assert totals == dict(result.accepted)
    return result.accepted


async def test_flushall_then_rebuild_restores_the_identical_board(ledger_env, processes):
    env = ledger_env
    [web] = processes.start_distributed(env)
    accepted = await settled_stream(web.url, env, 2.0)
    assert await ledger_counts(env["DATABASE_URL"]) == accepted
    before = await standings(env["REDIS_URL"], env["REDIS_KEY_PREFIX"])

    await flushall(env["REDIS_URL"])
    rebuilt = subprocess.run(
        [sys.executable, "-m", "scoreboard", "rebuild"],
        cwd=PROJECT_ROOT,
        env=process_env(env),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert rebuilt.returncode == 0, rebuilt.stderr
    assert f"rebuilt {len(before)} users" in rebuilt.stdout
    assert await standings(env["REDIS_URL"], env["REDIS_KEY_PREFIX"]) == before

    leader = before[0]
    assert await post(web.url, leader.user_id, 2) == leader.score + 2


async def test_a_restarted_worker_rebuilds_an_emptied_redis_and_broadcasts_it(
    ledger_env, processes
):
    env = ledger_env
    [web] = processes.start_distributed(env)
    await settled_stream(web.url, env, 1.5)
    before = await standings(env["REDIS_URL"], env["REDIS_KEY_PREFIX"])
    stopped = processes.stop_all()  # web and worker
    assert all(process.returncode == 0 for process in stopped)

    await flushall(env["REDIS_URL"])
    web = processes.start_web(env)
    async with watching(web.url, TOKENS["p0"]) as watcher:
        assert (await watcher.next_update())["top10"] == []  # Redis is empty
        processes.start_worker(env)
        restored = await watcher.next_update(timeout=20)
    assert await standings(env["REDIS_URL"], env["REDIS_KEY_PREFIX"]) == before
    assert [row["userId"] for row in restored["top10"]] == [s.user_id for s in before[:10]]
    assert [row["score"] for row in restored["top10"]] == [s.score for s in before[:10]]


async def test_redis_emptied_under_a_running_worker_loses_nothing(ledger_env, processes):
    env = ledger_env
    [web] = processes.start_distributed(env)
    first = await settled_stream(web.url, env, 1.0)
    await flushall(env["REDIS_URL"])
    second = await stream_updates(web.url, TOKENS, duration=1.0, concurrency=4)
    # newScore after the flush may lag until the rebuild; what counts is the board.
    expected = first + second.accepted
    totals = await wait_for_totals(env["REDIS_URL"], env["REDIS_KEY_PREFIX"], expected)
    assert totals == dict(expected)
    assert await ledger_counts(env["DATABASE_URL"]) == expected


@pytest.fixture
def private_postgres() -> Iterator[PrivatePostgres]:
    # Not under tmp_path: the postgres user cannot enter pytest's private temporary folder.
    directory = Path(tempfile.mkdtemp(prefix="sbtest-postgres-"))
    server = PrivatePostgres(directory)
    server.initialise()
    server.start()
    try:
        yield server
    finally:
        try:
            server.stop()
        finally:
            shutil.rmtree(directory, ignore_errors=True)


async def test_postgres_down_mid_stream_loses_nothing(env, private_postgres, processes, tmp_path):
    redis_dir = tmp_path / "redis"
    redis_dir.mkdir()
    private_redis = PrivateRedis(redis_dir)
    private_redis.start()
    try:
        env = {
            **env,
            "REDIS_URL": private_redis.url,
            "DATABASE_URL": private_postgres.url,
            "RATE_LIMIT": "1000000/minute",
        }
        [web] = processes.start_distributed(env)

        async def outage() -> None:
            await asyncio.sleep(2.0)
            await asyncio.to_thread(private_postgres.stop)
            await asyncio.sleep(3.0)
            await asyncio.to_thread(private_postgres.start)

        result, _ = await asyncio.gather(
            stream_updates(web.url, TOKENS, duration=8.0, concurrency=6), outage()
        )
        totals = await wait_for_totals(env["REDIS_URL"], env["REDIS_KEY_PREFIX"], result.accepted)
        figures = exactness(result, totals)
        figures["ledger_rows"] = sum((await ledger_counts(private_postgres.url)).values())
        record_figures("fault_postgres_restart", figures)
        assert figures["accepted"] == figures["sent"], figures  # writes never needed PostgreSQL
        assert figures["lost"] == 0 and figures["double_counted"] == 0, figures
        assert figures["ledger_rows"] == figures["accepted"], figures
        # The outage reached the worker, which held its batch until PostgreSQL was back.
        assert "Ledger (PostgreSQL) unavailable" in (tmp_path / "worker-1.log").read_text()
        processes.stop_all()
    finally:
        private_redis.stop()


ADMIN = bearer(issue_token(JWT_SECRET, "root", "Root", extra_claims={"role": "admin"}))
SERVICE = bearer(issue_token(JWT_SECRET, "game-server", extra_claims={"role": "service"}))
BOARDS_MADE = {
    "high": {"name": "High scores", "operator": "best"},
    "coins": {"name": "Coins", "reset": "monthly", "authoritative": True},
}
# (board, user, score) in the order posted; a best board keeps the best, an incr board adds.
SEASON_1 = [("high", "p0", 50), ("high", "p1", 70), ("coins", "p0", 3), ("coins", "p1", 5)]
SEASON_2_BEFORE = [
    ("high", "p0", 40),
    ("high", "p1", 90),
    ("high", "p2", 60),
    ("high", "p0", 45),
    ("coins", "p0", 2),
    ("coins", "p1", 7),
    ("coins", "p2", 4),
]
SEASON_2_AFTER = [
    ("high", "p3", 80),
    ("high", "p2", 65),
    ("high", "p1", 10),
    ("coins", "p0", 10),
    ("coins", "p3", 1),
    ("coins", "p2", 1),
]


def expected_boards(posts: list[tuple[str, str, int]]) -> dict[str, list[tuple[str, int]]]:
    """Each board's rows computed afresh from every post (the values here never tie)."""
    values: dict[str, dict[str, int]] = {board_id: {} for board_id in BOARDS_MADE}
    for board_id, user, score in posts:
        held = values[board_id]
        if BOARDS_MADE[board_id].get("operator") == "best":
            held[user] = max(score, held.get(user, score))
        else:
            held[user] = held.get(user, 0) + score
    return {
        board_id: sorted(held.items(), key=lambda row: -row[1]) for board_id, held in values.items()
    }


async def api(http: aiohttp.ClientSession, method: str, url: str, **options: object) -> object:
    async with http.request(method, url, headers=options.pop("headers", ADMIN), **options) as r:
        assert r.status in (200, 201), await r.text()
        return await r.json()


async def post_all(http: aiohttp.ClientSession, url: str, posts: list[tuple[str, str, int]]):
    await asyncio.gather(
        *(
            api(
                http,
                "POST",
                f"{url}/api/boards/{board_id}/scores",
                json={"userId": user, "score": score, "username": user.upper()},
                headers=SERVICE,
            )
            for board_id, user, score in posts
        )
    )


async def rows(http: aiohttp.ClientSession, url: str, path: str) -> list[tuple[str, int]]:
    page = await api(http, "GET", f"{url}{path}?limit=100")
    assert isinstance(page, dict)
    return [(row["userId"], row["score"]) for row in page["entries"]]


async def eventually(check: Callable[[], Awaitable[bool]], timeout: float = 20.0) -> None:
    async with asyncio.timeout(timeout):
        while not await check():
            await asyncio.sleep(0.1)


@asynccontextmanager
async def watching_boards(url: str, boards: list[str]) -> AsyncIterator[Chooser]:
    watcher = Chooser()
    await watcher.connect_choosing(url, TOKENS["p0"], boards)
    try:
        yield watcher
    finally:
        await watcher.client.disconnect()


async def boards_read(http: aiohttp.ClientSession, url: str) -> dict[str, object]:
    """Everything a reader sees of the boards but their live rows."""
    seen = {"list": await api(http, "GET", f"{url}/api/boards")}
    for board_id in BOARDS_MADE:
        seen[board_id] = await api(http, "GET", f"{url}/api/boards/{board_id}")
        seen[f"{board_id} seasons"] = await api(http, "GET", f"{url}/api/boards/{board_id}/seasons")
        seen[f"{board_id} season 1"] = await rows(
            http, url, f"/api/boards/{board_id}/seasons/1/leaderboard"
        )
    return seen


async def test_boards_come_back_whole_after_redis_is_emptied(ledger_env, processes, tmp_path):
    env = ledger_env
    [web] = processes.start_distributed(env)
    processes.start_worker(env)  # two workers: one of them rebuilds each board
    url = web.url
    async with aiohttp.ClientSession() as http:
        for board_id, settings in BOARDS_MADE.items():
            await api(http, "PUT", f"{url}/api/admin/boards/{board_id}", json=settings)
        await post_all(http, url, SEASON_1)
        first = expected_boards(SEASON_1)

        async def season_applied(expected: dict[str, list[tuple[str, int]]]) -> bool:
            live = [await rows(http, url, f"/api/boards/{b}/leaderboard") for b in BOARDS_MADE]
            return live == list(expected.values())

        await eventually(lambda: season_applied(first))
        for board_id in BOARDS_MADE:
            closed = await api(http, "POST", f"{url}/api/admin/boards/{board_id}/reset")
            assert isinstance(closed, dict) and closed["season"] == 2

        async def archived() -> bool:
            seen = [await api(http, "GET", f"{url}/api/boards/{b}/seasons") for b in BOARDS_MADE]
            return all(isinstance(s, dict) and len(s["seasons"]) == 1 for s in seen)

        await eventually(archived)
        await post_all(http, url, SEASON_2_BEFORE)
        await eventually(lambda: season_applied(expected_boards(SEASON_2_BEFORE)))
        before = await boards_read(http, url)

        async with watching_boards(url, ["high"]) as watcher:
            client = redis.from_url(env["REDIS_URL"])
            await client.flushdb()
            await client.aclose()
            await post_all(http, url, SEASON_2_AFTER)
            final = expected_boards(SEASON_2_BEFORE + SEASON_2_AFTER)
            await eventually(lambda: season_applied(final))
            pushed = await watcher.update_where(
                lambda update: [(r["userId"], r["score"]) for r in update["top10"]] == final["high"]
            )
        assert pushed["season"] == 2
        # Once a node has copied the boards back to Redis and the web node's list is stale:
        # the boards, their settings, live seasons and closed seasons are as before the flush.
        client = redis.from_url(env["REDIS_URL"])
        copied = f"{env['REDIS_KEY_PREFIX']}boards"
        await eventually(lambda: client.hexists(copied, "high"))
        await client.aclose()
        await asyncio.sleep(REFRESH_SECONDS)
        assert await boards_read(http, url) == before
        assert [before[f"{board_id} season 1"] for board_id in BOARDS_MADE] == list(first.values())
    logs = "".join((tmp_path / f"worker-{n}.log").read_text() for n in (1, 2))
    for board_id in BOARDS_MADE:
        assert logs.count(f"rebuilt board {board_id} season 2 from the ledger") == 1, logs
