"""The boards kept in PostgreSQL beside the ledger: what Redis's copy is restored from."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import asyncpg
import pytest
import redis.asyncio as redis

from scoreboard.apply.ledger.boards import LedgerBoardStorage
from scoreboard.apply.ledger.postgres import PostgresLedger
from scoreboard.boards.model import GLOBAL_BOARD, Board
from scoreboard.boards.registry import BoardRegistry, RedisBoardStorage
from scoreboard.errors import LedgerUnavailable
from tests.conftest import REDIS_URL, remove_keys

WEEKLY = Board("weekly", "Weekly sprint", operator="best", reset="weekly")
LAPS = Board("laps", "Lap times", operator="best", order="asc", authoritative=True)


@pytest.fixture
async def client() -> AsyncIterator[redis.Redis]:
    client = redis.from_url(REDIS_URL)
    yield client
    await client.aclose()


def registry(ledger: PostgresLedger, client: redis.Redis, namespace: str) -> BoardRegistry:
    """One node's registry: each call is another node, with nothing read yet."""
    copy = RedisBoardStorage(client, f"{namespace}:")
    return BoardRegistry(LedgerBoardStorage(ledger, copy))


async def in_postgres(database_url: str) -> list[tuple[object, ...]]:
    connection = await asyncpg.connect(database_url)
    try:
        found = await connection.fetch("SELECT * FROM boards ORDER BY board_id")
    finally:
        await connection.close()
    return [tuple(row.values()) for row in found]


async def test_boards_come_back_with_their_settings_when_redis_loses_them(
    ledger, client, namespace, database_url
):
    node = registry(ledger, client, namespace)
    await node.put(WEEKLY)
    await node.put(LAPS)
    await node.put(Board("gone", "Gone"))
    renamed = Board("weekly", "Weekly cup", operator="best", reset="monthly")
    await node.put(renamed)
    assert await node.delete("gone")
    assert await in_postgres(database_url) == [
        ("laps", "Lap times", "best", "asc", "never", True),
        ("weekly", "Weekly cup", "best", "desc", "monthly", False),
    ]

    remove_keys(f"{namespace}:")  # Redis emptied
    assert await RedisBoardStorage(client, f"{namespace}:").load() == {}
    assert await registry(ledger, client, namespace).all() == [GLOBAL_BOARD, LAPS, renamed]
    # Copied back: a node reading Redis alone sees them too.
    assert await RedisBoardStorage(client, f"{namespace}:").load() == {
        "laps": LAPS,
        "weekly": renamed,
    }


async def test_boards_redis_kept_before_the_ledger_did_are_adopted(
    ledger, client, namespace, database_url
):
    await RedisBoardStorage(client, f"{namespace}:").save(LAPS)  # before boards were kept here
    assert await registry(ledger, client, namespace).get("laps") == LAPS
    assert await in_postgres(database_url) == [("laps", "Lap times", "best", "asc", "never", True)]
    remove_keys(f"{namespace}:")
    assert await registry(ledger, client, namespace).get("laps") == LAPS


async def test_nodes_restoring_at_once_and_a_change_meanwhile_keep_every_board(
    ledger, client, namespace
):
    await registry(ledger, client, namespace).put(WEEKLY)
    remove_keys(f"{namespace}:")
    nodes = [registry(ledger, client, namespace) for _ in range(4)]
    # Four nodes find the copy gone at once while an admin creates a board.
    await asyncio.gather(*(node.all() for node in nodes), nodes[0].put(LAPS))
    assert await registry(ledger, client, namespace).all() == [GLOBAL_BOARD, LAPS, WEEKLY]
    assert set(await RedisBoardStorage(client, f"{namespace}:").load()) == {"laps", "weekly"}


async def test_until_postgresql_has_the_boards_table_the_boards_redis_holds_are_served(
    database_url, client, namespace
):
    unmigrated = await PostgresLedger.connect(database_url)  # no worker of this version ran yet
    try:
        await RedisBoardStorage(client, f"{namespace}:").save(LAPS)
        assert await registry(unmigrated, client, namespace).get("laps") == LAPS
        remove_keys(f"{namespace}:")
        with pytest.raises(LedgerUnavailable):  # nothing to serve: it may have been lost
            await registry(unmigrated, client, namespace).all()
    finally:
        await unmigrated.close()
