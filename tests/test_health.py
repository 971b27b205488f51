"""/healthz and /readyz, and the worker heartbeats /readyz reports."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as redis
from aiohttp.test_utils import TestClient

from scoreboard.config import Settings
from scoreboard.ops.heartbeat import HEARTBEAT_TTL_SECONDS, WorkerBeat, WorkerRegistry
from scoreboard.web.app import create_app
from tests.conftest import REDIS_URL
from tests.processes import Processes, free_port, service_processes
from tests.scrape import Scrape, eventually


async def readiness(api: TestClient) -> tuple[int, dict[str, Any]]:
    response = await api.get("/readyz")
    return response.status, await response.json()


async def test_readyz_is_200_with_every_service_up(aiohttp_client, env, database_url):
    api = await aiohttp_client(create_app(Settings.from_env({**env, "DATABASE_URL": database_url})))
    status, body = await readiness(api)
    assert status == 200, body
    assert body["status"] == "success"
    assert body["mode"] == "distributed"
    assert body["services"] == {"redis": "up", "rabbitmq": "up", "postgresql": "up"}
    assert body["queues"] == {"main": 0, "dead_letter": 0}
    # No worker runs in this test, and that alone does not make the node unready.
    assert body["workers"] == {"alive": 0, "list": []}


@pytest.mark.parametrize(
    ("variable", "url", "service"),
    [
        ("REDIS_URL", "redis://127.0.0.1:{port}/0", "redis"),
        ("RABBITMQ_URL", "amqp://guest:guest@127.0.0.1:{port}/", "rabbitmq"),
        ("DATABASE_URL", "postgresql://postgres@127.0.0.1:{port}/test", "postgresql"),
    ],
)
async def test_readyz_is_503_naming_the_service_that_does_not_answer(
    aiohttp_client, env, variable, url, service
):
    closed = url.format(port=free_port())
    api = await aiohttp_client(create_app(Settings.from_env({**env, variable: closed})))
    status, body = await readiness(api)
    assert status == 503, body
    assert body["status"] == "error"
    assert body["message"] == f"Not ready: {service} unreachable"
    assert body["services"][service] == "down"
    assert [name for name, state in body["services"].items() if state == "down"] == [service]
    page = Scrape.parse(await (await api.get("/metrics")).text())
    assert page.value("scoreboard_dependency_up", dependency=service) == 0


async def test_readyz_answers_within_a_few_seconds_even_when_services_are_down(aiohttp_client, env):
    closed = {
        "REDIS_URL": f"redis://127.0.0.1:{free_port()}/0",
        "RABBITMQ_URL": f"amqp://guest:guest@127.0.0.1:{free_port()}/",
    }
    api = await aiohttp_client(create_app(Settings.from_env({**env, **closed})))
    loop_time = asyncio.get_running_loop().time
    started = loop_time()
    status, body = await readiness(api)
    assert loop_time() - started < 3
    assert status == 503
    assert body["message"] == "Not ready: redis, rabbitmq unreachable"
    assert body["workers"] is None


async def test_readyz_in_single_process_mode_has_nothing_to_check(aiohttp_client):
    api = await aiohttp_client(create_app(Settings.from_env({})))
    status, body = await readiness(api)
    assert status == 200
    assert body == {
        "status": "success",
        "message": "Ready",
        "mode": "single-process",
        "services": {},
        "queues": {},
        "workers": None,
    }


@pytest.mark.parametrize("path", ["/healthz", "/readyz", "/metrics"])
@pytest.mark.parametrize("proto", [None, "http"])
async def test_probes_answer_plain_http_from_anywhere(aiohttp_client, env, path, proto):
    api = await aiohttp_client(create_app(Settings.from_env(env)))
    headers = {} if proto is None else {"X-Forwarded-Proto": proto}
    response = await api.get(path, headers=headers, allow_redirects=False)
    assert response.status == 200


async def test_an_expired_heartbeat_no_longer_counts_and_leaves_the_index(namespace):
    client = redis.from_url(REDIS_URL)
    try:
        registry = WorkerRegistry(client, f"{namespace}:")
        beat = WorkerBeat("w1", "host", 42, "consuming", 1.0, 2.0, None, 0, 0)
        await registry.beat(beat)
        assert await registry.alive() == [beat]
        assert 0 < await client.ttl(f"{namespace}:workers:w1") <= HEARTBEAT_TTL_SECONDS
        await client.delete(f"{namespace}:workers:w1")  # what expiry does
        assert await registry.alive() == []
        assert await client.smembers(f"{namespace}:workers") == set()
    finally:
        await client.aclose()


@pytest.fixture
def processes(tmp_path: Path) -> Iterator[Processes]:
    with service_processes(tmp_path) as running:
        yield running


async def test_a_running_worker_shows_in_readyz_and_is_gone_once_stopped(
    processes: Processes, env: dict[str, str], aiohttp_client
):
    api = await aiohttp_client(create_app(Settings.from_env(env)))
    worker = processes.start_worker({**env, "METRICS_PORT": "0"})

    async def one_consuming() -> bool:
        body = (await readiness(api))[1]
        return body["workers"]["alive"] == 1 and body["workers"]["list"][0]["state"] == "consuming"

    await eventually(one_consuming, "one consuming worker in /readyz")
    status, body = await readiness(api)
    assert status == 200
    [seen] = body["workers"]["list"]
    assert seen["pid"] == worker.pid
    assert 0 <= seen["lastSeenSecondsAgo"] < HEARTBEAT_TTL_SECONDS
    assert seen["lastBatchSecondsAgo"] is None  # it has applied nothing yet
    page = Scrape.parse(await (await api.get("/metrics")).text())
    assert page.value("scoreboard_workers_alive") == 1

    finished = worker.stop()
    assert finished.returncode == 0, finished.output

    async def none_left() -> bool:
        return (await readiness(api))[1]["workers"]["alive"] == 0

    await eventually(none_left, "no worker left in /readyz", timeout=5)
    assert (await readiness(api))[0] == 200


def test_heartbeat_json_round_trips():
    beat = WorkerBeat("w1", "worker.1", 7, "starting", 10.0, 12.0, 11.0, 3, 1)
    shown = beat.to_json(now=15.0)
    assert shown["lastSeenSecondsAgo"] == 3.0
    assert shown["lastBatchSecondsAgo"] == 4.0
    assert shown["upSeconds"] == 5.0
    assert json.loads(json.dumps(shown))["name"] == "worker.1"
