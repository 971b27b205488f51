"""A demoted primary answers READONLY: an outage, like a lost connection, never a refusal."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import redis.asyncio as redis
from aiohttp.test_utils import TestClient

from scoreboard.apply.store import BoardBatch
from scoreboard.apply.store.redis_store import RedisLeaderboardStore
from scoreboard.config import Settings
from scoreboard.errors import StoreUnavailable
from scoreboard.models import ScoreUpdate
from scoreboard.web.app import create_app
from tests.conftest import TokenFactory, bearer
from tests.private_services import PrimaryAndReplica


@pytest.fixture
def primary_and_replica(tmp_path: Path) -> Iterator[PrimaryAndReplica]:
    pair = PrimaryAndReplica(tmp_path)
    pair.start()
    yield pair
    pair.stop()


@pytest.fixture
async def replica_store(
    primary_and_replica: PrimaryAndReplica, namespace: str
) -> AsyncIterator[RedisLeaderboardStore]:
    """The store on the replica, as a worker still connected to a demoted primary has it."""
    client = redis.from_url(primary_and_replica.server_url(primary_and_replica.replica_port))
    yield RedisLeaderboardStore(client, f"{namespace}:")
    await client.aclose()


async def test_a_batch_refused_read_only_is_an_outage_the_worker_retries(
    replica_store: RedisLeaderboardStore,
):
    updates = [ScoreUpdate.new("alice", "Alice", 5), ScoreUpdate.new("bob", "Bob", 3)]
    # Refused updates would be dead-lettered one by one; an outage keeps the batch for a retry.
    with pytest.raises(StoreUnavailable):
        await replica_store.apply_boards([BoardBatch(replica_store, updates)])
    with pytest.raises(StoreUnavailable):
        await replica_store.apply(updates)


async def test_a_score_posted_to_a_read_only_redis_is_answered_503(
    aiohttp_client, env, primary_and_replica: PrimaryAndReplica, make_token: TokenFactory
):
    replica_url = primary_and_replica.server_url(primary_and_replica.replica_port)
    settings = Settings.from_env({**env, "REDIS_URL": replica_url})
    client: TestClient = await aiohttp_client(create_app(settings))
    response = await client.post(
        "/api/score/update",
        json={"userId": "alice", "scoreIncrement": 5},
        headers=bearer(make_token("alice")),
    )
    assert response.status == 503
    assert await response.json() == {
        "status": "error",
        "message": "Leaderboard store unavailable, try again",
    }
    assert response.headers["Retry-After"] == "2"
