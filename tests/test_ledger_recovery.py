"""The ledger with the real processes: Redis lost and rebuilt, PostgreSQL down mid-stream."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import sys
import tempfile
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import asyncpg
import pytest
import redis.asyncio as redis

from scoreboard.apply.store.redis_store import RedisLeaderboardStore
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
