"""rediss:// (Heroku Redis speaks only TLS): store, rate limits and broadcasts all work over it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest

from scoreboard.intake.auth import issue_token
from tests.certs import self_signed_certificate
from tests.conftest import JWT_SECRET
from tests.private_services import PrivateRedis
from tests.processes import service_processes
from tests.test_end_to_end import entry, post_score, watching


@pytest.fixture
def tls_redis(tmp_path: Path) -> Iterator[PrivateRedis]:
    certificate = self_signed_certificate(tmp_path)
    server = PrivateRedis(tmp_path, tls=certificate)
    server.start()
    yield server
    server.stop()


async def test_the_whole_path_runs_over_tls_redis(env, tls_redis: PrivateRedis, tmp_path: Path):
    assert tls_redis.url.startswith("rediss://")
    env = {**env, "REDIS_URL": tls_redis.url, "RATE_LIMIT": "2/minute"}
    alice = issue_token(JWT_SECRET, "alice", "Alice")
    with service_processes(tmp_path) as processes:
        [web] = processes.start_distributed(env)
        async with watching(web.url, alice) as watcher, aiohttp.ClientSession() as http:
            assert (await watcher.next_update())["top10"] == []
            reply = await post_score(http, web, alice, "alice", 5)
            assert reply["newScore"] == 5
            update = await watcher.next_update()
            assert update["top10"] == [entry("alice", "Alice", 5)]
            await post_score(http, web, alice, "alice", 1)
            async with http.post(
                f"{web.url}/api/score/update",
                json={"userId": "alice", "scoreIncrement": 1},
                headers={"Authorization": f"Bearer {alice}"},
            ) as limited:
                assert limited.status == 429  # the rate limit is kept on the TLS Redis too


async def test_a_self_signed_tls_redis_works_as_on_heroku_with_verification_off(
    env, tls_redis: PrivateRedis, tmp_path: Path
):
    # Heroku's REDIS_URL names no CA: as is, the certificate fails verification.
    heroku_like = f"rediss://127.0.0.1:{tls_redis.port}/0"
    alice = issue_token(JWT_SECRET, "alice", "Alice")
    with service_processes(tmp_path) as processes:
        [web] = processes.start_distributed(
            {**env, "REDIS_URL": heroku_like, "REDIS_TLS_VERIFY": "0"}
        )
        async with watching(web.url, alice) as watcher, aiohttp.ClientSession() as http:
            assert (await watcher.next_update())["top10"] == []
            assert (await post_score(http, web, alice, "alice", 5))["newScore"] == 5
            assert (await watcher.next_update())["top10"] == [entry("alice", "Alice", 5)]
        verifying = processes.start_web({**env, "REDIS_URL": heroku_like})
        async with aiohttp.ClientSession() as http:
            async with http.get(f"{verifying.url}/readyz") as refused:
                assert refused.status == 503
