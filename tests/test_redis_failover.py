"""A Redis primary kept by Sentinel, killed mid-stream: every process follows the promoted
replica, and with the ledger the board ends exact though the replica lacked acknowledged writes."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import asyncpg
import pytest

from scoreboard.config import Settings
from scoreboard.intake.auth import issue_token
from tests.conftest import JWT_SECRET, bearer
from tests.private_services import RedisWithSentinels
from tests.processes import wait_for_broadcast_listeners
from tests.score_stream import (
    board_totals,
    exactness,
    record_figures,
    stream_updates,
    wait_for_totals,
)
from tests.test_end_to_end import watching
from tests.test_faults import UNLIMITED, assert_exact, tokens

STREAM_SECONDS = 16.0
CUT_AT_SECONDS = 3.0
REBUILT = "rebuilt board global season 1 from the ledger"


@pytest.fixture
def redis_with_sentinels(tmp_path: Path) -> Iterator[RedisWithSentinels]:
    directory = tmp_path / "redis"
    directory.mkdir()
    group = RedisWithSentinels(directory)
    group.start()
    yield group
    group.stop()


async def ledger_totals(database_url: str) -> dict[str, int]:
    """Every user's total on global as the ledger holds it."""
    connection = await asyncpg.connect(database_url)
    try:
        rows = await connection.fetch("SELECT user_id, total FROM user_scores WHERE total > 0")
    finally:
        await connection.close()
    return {row["user_id"]: row["total"] for row in rows}


async def until_the_replica_misses_writes(
    primary_url: str, replica_url: str, prefix: str
) -> dict[str, int]:
    """Wait until the primary has applied updates the cut-off replica lacks; its board then."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        behind = await board_totals(replica_url, prefix)
        ahead = await board_totals(primary_url, prefix)
        if sum(ahead.values()) >= sum(behind.values()) + 20:
            return behind
        await asyncio.sleep(0.05)
    raise AssertionError("the primary applied nothing after replication was cut")


async def test_a_failover_mid_stream_keeps_every_accepted_update_with_the_ledger(
    env, database_url, redis_with_sentinels: RedisWithSentinels, processes
):
    # The processes come after the Redis servers: they stop first, on a Redis still there.
    group = redis_with_sentinels
    env = {
        **env,
        "REDIS_URL": group.url,
        "DATABASE_URL": database_url,
        "RATE_LIMIT": UNLIMITED,
        "REDIS_MAX_CONNECTIONS": "4",  # fewer than the 8 clients: the pool waits, through Sentinel
    }
    prefix = env["REDIS_KEY_PREFIX"]
    primary_url = group.server_url(group.primary_port)
    replica_url = group.server_url(group.replica_port)
    web = processes.start_web(env)
    worker = processes.start_worker(env)
    wait_for_broadcast_listeners(primary_url, Settings.from_env(env).socketio_channel, 1)
    viewer = issue_token(JWT_SECRET, "viewer", "Viewer")

    async with watching(web.url, viewer) as watcher:
        began = time.monotonic()
        stream = asyncio.create_task(stream_updates(web.url, tokens(), duration=STREAM_SECONDS))
        await asyncio.sleep(CUT_AT_SECONDS)
        await asyncio.to_thread(group.cut_replication)
        replica_board = await until_the_replica_misses_writes(primary_url, replica_url, prefix)
        await asyncio.to_thread(group.kill_primary)
        killed_at = time.monotonic() - began
        at_kill = await ledger_totals(database_url)
        await asyncio.to_thread(group.wait_for_promotion)
        promoted_at = time.monotonic() - began
        result = await stream

        # The gap was real: the promoted replica lacked updates the ledger had recorded and
        # the old primary had applied (and acknowledged: their messages were gone).
        missed = sum(at_kill.values()) - sum(replica_board.values())
        assert missed >= 20 and all(at_kill[u] >= n for u, n in replica_board.items())

        totals = await wait_for_totals(replica_url, prefix, result.accepted)
        figures = exactness(result, totals)
        figures["missed_by_replica"] = missed
        figures["failover_seconds"] = round(promoted_at - killed_at, 2)
        record_figures("fault_redis_sentinel_failover", figures)
        assert_exact(figures)  # every 200 counted once, the lost writes restored from the ledger
        assert await ledger_totals(database_url) == totals
        assert worker.output.count(REBUILT) == 2, worker.output  # at start-up, after the failover

        assert figures["refused_503"] > 0, figures  # the failover was answered truthfully
        assert figures["no_answer"] == 0 and figures["other_status"] == 0, figures  # never a 500
        assert set(result.statuses_between(0, killed_at - 0.5)) == {200}
        assert set(result.statuses_between(promoted_at + 3, STREAM_SECONDS)) == {200}

        # Reads (their rate limit too) and the broadcast channel follow the new primary.
        async with aiohttp.ClientSession() as http:
            async with http.get(
                f"{web.url}/api/leaderboard?limit=10", headers=bearer(viewer)
            ) as response:
                assert response.status == 200
                page = await response.json()
        top = [{k: row[k] for k in ("userId", "username", "score")} for row in page["entries"]]
        assert {row["userId"]: row["score"] for row in top} == {
            row["userId"]: totals[row["userId"]] for row in top
        }
        await watcher.update_where(lambda update: update["top10"] == top, timeout=15)
