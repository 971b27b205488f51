"""Fixtures: real Redis and RabbitMQ, each test in its own key prefix and queue."""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import aio_pika
import aiohttp
import asyncpg
import pytest
import redis as sync_redis
import redis.asyncio as redis
from aiohttp.test_utils import TestClient

from scoreboard.apply.ledger.postgres import PostgresLedger
from scoreboard.apply.store import LeaderboardStore
from scoreboard.apply.store.memory_store import MemoryLeaderboardStore
from scoreboard.apply.store.redis_store import RedisLeaderboardStore
from scoreboard.config import MAX_PRIORITY, Settings
from scoreboard.intake.auth import issue_token
from scoreboard.queue.queue_layout import dead_letter_queue_name, level_queue_name
from scoreboard.web.app import create_app
from tests.private_services import PrivateRabbitMQ
from tests.processes import Processes, WebProcess, service_processes

REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
RABBITMQ_URL = os.environ.get("TEST_RABBITMQ_URL", "amqp://guest:guest@127.0.0.1:5672/")
RABBITMQ_URLS = (RABBITMQ_URL,)
DATABASE_URL = os.environ.get("TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test")
JWT_SECRET = "test-secret-" + "s" * 60

TokenFactory = Callable[..., str]


@pytest.fixture
def namespace() -> Iterator[str]:
    """A fresh name for this test's Redis keys and queues; removed afterwards."""
    name = f"sbtest-{uuid.uuid4().hex[:12]}"
    yield name
    remove_keys(f"{name}:")


async def remove_queues(name: str) -> None:
    """Delete a test's queues: classic or quorum, every priority level, the dead-letter queue."""
    levels = [level_queue_name(name, level) for level in range(1, MAX_PRIORITY + 1)]
    connection = await aio_pika.connect(RABBITMQ_URL)
    async with connection:
        channel = await connection.channel()
        for queue in (name, dead_letter_queue_name(name), *levels):
            await channel.queue_delete(queue)


def remove_keys(prefix: str) -> None:
    """Delete every Redis key under a test's prefix."""
    client = sync_redis.Redis.from_url(REDIS_URL)
    keys = list(client.scan_iter(match=f"{prefix}*", count=1000))
    if keys:
        client.delete(*keys)
    client.close()


@pytest.fixture
async def delete_queues(namespace: str) -> AsyncIterator[None]:
    yield
    await remove_queues(namespace)


@pytest.fixture
def env(namespace: str, delete_queues: None) -> dict[str, str]:
    """Environment of a distributed deployment isolated to this test."""
    return {
        "REDIS_URL": REDIS_URL,
        "RABBITMQ_URL": RABBITMQ_URL,
        "JWT_SECRET": JWT_SECRET,
        "REDIS_KEY_PREFIX": f"{namespace}:",
        "QUEUE_NAME": namespace,
    }


@pytest.fixture
async def database_url(namespace: str) -> AsyncIterator[str]:
    """DATABASE_URL of a schema of this test's own in the test database, dropped afterwards."""
    schema = namespace.replace("-", "_")
    connection = await asyncpg.connect(DATABASE_URL)
    await connection.execute(f'CREATE SCHEMA "{schema}"')
    separator = "&" if "?" in DATABASE_URL else "?"
    try:
        yield f"{DATABASE_URL}{separator}search_path={schema}"
    finally:
        await connection.execute(f'DROP SCHEMA "{schema}" CASCADE')
        await connection.close()


@pytest.fixture
async def ledger(database_url: str) -> AsyncIterator[PostgresLedger]:
    """The ledger on this test's schema, migrated."""
    ledger = await PostgresLedger.connect(database_url, run_migrations=True)
    yield ledger
    await ledger.close()


@pytest.fixture
def settings(env: dict[str, str]) -> Settings:
    return Settings.from_env(env)


@pytest.fixture
def make_token() -> TokenFactory:
    def make(subject: str = "alice", name: str | None = None, ttl: int = 3600) -> str:
        return issue_token(JWT_SECRET, subject, name, ttl)

    return make


@pytest.fixture
async def api(aiohttp_client: Callable, settings: Settings) -> TestClient:
    """The web application in distributed mode, on real Redis and RabbitMQ, without a worker."""
    return await aiohttp_client(create_app(settings))


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture(params=["redis", "memory"])
async def store(request: pytest.FixtureRequest, namespace: str) -> AsyncIterator[LeaderboardStore]:
    """The same LeaderboardStore contract, once on Redis and once in memory."""
    if request.param == "memory":
        yield MemoryLeaderboardStore()
        return
    client = redis.from_url(REDIS_URL)
    yield RedisLeaderboardStore(client, f"{namespace}:")
    await client.aclose()


@pytest.fixture
def private_rabbitmq() -> Iterator[PrivateRabbitMQ]:
    """A broker of this test's own, which it may stop and start (tests/private_services.py)."""
    # Not under tmp_path: the rabbitmq user cannot enter pytest's private temporary folder.
    directory = Path(tempfile.mkdtemp(prefix="sbtest-rabbitmq-"))
    broker = PrivateRabbitMQ(directory)
    try:
        broker.start()
        yield broker
    finally:
        broker.shutdown()
        shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture
def processes(tmp_path: Path, env: dict[str, str]) -> Iterator[Processes]:
    """Real server.py/worker.py processes for this test, stopped before its keys go."""
    with service_processes(tmp_path) as group:
        yield group


@pytest.fixture
def web(processes: Processes, env: dict[str, str]) -> WebProcess:
    """One web node and one worker on this test's Redis keys and queue."""
    [node] = processes.start_distributed(env)
    return node


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session
