"""The PostgreSQL ledger on a real server: rows once each, totals, history, migrations, rebuild."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import asyncpg
import pytest
import redis.asyncio as redis

from scoreboard.apply.ledger.migrations import migrate, migration_files
from scoreboard.apply.ledger.postgres import PostgresLedger
from scoreboard.apply.ledger.rebuild import ensure_board_matches_ledger, rebuild_board
from scoreboard.apply.store.redis_store import RedisLeaderboardStore
from scoreboard.errors import BoardOutOfSync, StoreUnavailable
from scoreboard.models import ScoreUpdate
from tests.conftest import REDIS_URL


@pytest.fixture
async def board(namespace: str) -> AsyncIterator[RedisLeaderboardStore]:
    client = redis.from_url(REDIS_URL)
    yield RedisLeaderboardStore(client, f"{namespace}:", ledger_backed=True)
    await client.aclose()


def update(user: str, increment: int, name: str | None = None) -> ScoreUpdate:
    return ScoreUpdate.new(user, name or user.title(), increment)


async def rows(database_url: str, sql: str) -> list[asyncpg.Record]:
    connection = await asyncpg.connect(database_url)
    try:
        return await connection.fetch(sql)
    finally:
        await connection.close()


async def test_each_update_is_one_row_with_its_resulting_score(ledger, database_url):
    a1, b1, a2 = update("alice", 3), update("bob", 10), update("alice", 4, "Queen Alice")
    ids = await ledger.record([a1, b1, a2])
    assert ids == sorted(ids) and len(set(ids)) == 3
    recorded = await rows(
        database_url,
        "SELECT message_id, user_id, username, increment, resulting_score FROM score_ledger "
        "ORDER BY id",
    )
    assert [tuple(r.values()) for r in recorded] == [
        (a1.message_id, "alice", "Alice", 3, 3),
        (b1.message_id, "bob", "Bob", 10, 10),
        (a2.message_id, "alice", "Queen Alice", 4, 7),
    ]
    standings = {s.user_id: s for s in await ledger.standings()}
    assert (standings["alice"].score, standings["alice"].username) == (7, "Queen Alice")
    assert standings["alice"].sequence == ids[2]


async def test_a_redelivery_writes_no_second_row(ledger, database_url):
    first = update("alice", 5)
    ids = await ledger.record([first])
    assert await ledger.record([first, first]) == ids * 2
    assert await ledger.record([first, update("alice", 1)]) == [ids[0], ids[0] + 1]
    count = await rows(database_url, "SELECT count(*) AS n FROM score_ledger")
    assert count[0]["n"] == 2
    assert [s.score for s in await ledger.standings()] == [6]


async def test_concurrent_writers_keep_totals_exact(database_url):
    ledgers = [await PostgresLedger.connect(database_url, run_migrations=True) for _ in range(3)]
    batches = [[update(user, 1) for user in ("ann", "ben", "cat") * 5] for _ in range(12)]
    await asyncio.gather(*(ledgers[i % 3].record(batch) for i, batch in enumerate(batches)))
    totals = {s.user_id: s.score for s in await ledgers[0].standings()}
    assert totals == {"ann": 60, "ben": 60, "cat": 60}
    steps = await rows(
        database_url,
        "SELECT user_id, array_agg(resulting_score ORDER BY id) AS seen FROM score_ledger "
        "GROUP BY user_id",
    )
    for row in steps:  # every running total appears once: no two writers interleaved a user
        assert sorted(row["seen"]) == list(range(1, 61))
    for each in ledgers:
        await each.close()


async def test_history_is_newest_first_with_a_cursor(ledger):
    ids = await ledger.record([update("alice", n) for n in range(1, 6)])
    first_page = await ledger.history("alice", limit=2, before=None)
    assert [e.increment for e in first_page] == [5, 4]
    assert [e.resulting_score for e in first_page] == [15, 10]
    next_page = await ledger.history("alice", limit=2, before=first_page[-1].entry_id)
    assert [e.entry_id for e in next_page] == [ids[2], ids[1]]
    assert await ledger.history("nobody", limit=5, before=None) == []


async def test_migrations_are_safe_twice_and_concurrently(database_url):
    connections = [await asyncpg.connect(database_url) for _ in range(3)]
    results = await asyncio.gather(*(migrate(c) for c in connections))
    assert sorted(len(r) for r in results) == [0, 0, len(migration_files())]
    assert await migrate(connections[0]) == []
    versions = await connections[0].fetch("SELECT version FROM schema_migrations")
    assert sorted(v["version"] for v in versions) == [v for v, _, _ in migration_files()]
    for connection in connections:
        await connection.close()


async def test_rebuild_restores_scores_names_order_and_deduplication(ledger, board):
    # Equal scores: bob reached 10 before carol, so he ranks above her.
    updates = [update("bob", 10), update("carol", 4), update("alice", 3), update("carol", 6)]
    sequences = await ledger.record(updates)
    await board.mark_synced()
    live = await board.apply(updates, sequences)
    before = await board.standings()

    report = await rebuild_board(ledger, board)
    assert await board.standings() == before
    assert report.board.top == live.top
    assert report.board.version > live.version
    assert report.remembered_messages == len(updates)
    assert await board.apply(updates, sequences) is None  # redeliveries still count once


async def test_a_board_emptied_in_redis_is_rebuilt_before_applying(ledger, board, namespace):
    first = [update("alice", 5), update("bob", 7)]
    await board.mark_synced()
    await board.apply(first, await ledger.record(first))
    client = redis.from_url(REDIS_URL)
    keys = [k async for k in client.scan_iter(match=f"{namespace}:*")]
    await client.delete(*keys)  # what a Redis restart without persistence does
    await client.aclose()

    late = update("alice", 1)
    sequences = await ledger.record([late])
    from scoreboard.errors import BoardOutOfSync

    with pytest.raises(BoardOutOfSync):
        await board.apply([late], sequences)
    rebuilt = await ensure_board_matches_ledger(ledger, board)
    assert rebuilt is not None
    assert [(e.user_id, e.score) for e in rebuilt.top] == [("bob", 7), ("alice", 6)]
    assert await board.apply([late], sequences) is None  # already in the rebuilt board
    assert await ensure_board_matches_ledger(ledger, board) is None


OTHER_SERVER = "f" * 40  # a run id no running Redis has


async def test_a_board_synced_on_another_server_is_rebuilt_before_applying(
    ledger, board, namespace
):
    first = [update("alice", 5), update("bob", 7)]
    await board.mark_synced()
    await board.apply(first, await ledger.record(first))
    # What a replica promoted by Sentinel holds: the old primary's mark, replicated, and not
    # every write it acknowledged (replication is asynchronous).
    lost = update("bob", 4)
    await ledger.record([lost])
    client = redis.from_url(REDIS_URL)
    await client.set(f"{namespace}:ledger-synced", OTHER_SERVER)
    await client.aclose()
    assert not await board.synced()

    late = update("alice", 1)
    sequences = await ledger.record([late])
    with pytest.raises(BoardOutOfSync):
        await board.apply([late], sequences)
    rebuilt = await ensure_board_matches_ledger(ledger, board)
    assert rebuilt is not None
    assert [(e.user_id, e.score) for e in rebuilt.top] == [("bob", 11), ("alice", 6)]
    assert await board.synced()
    assert await board.apply([late, lost], [*sequences, 0]) is None  # both counted once


async def test_a_rebuild_is_not_marked_done_on_a_server_other_than_its_own(board):
    with pytest.raises(StoreUnavailable):
        await board.mark_synced(OTHER_SERVER)  # a failover between the rebuild and its mark
    assert not await board.synced()
    await board.mark_synced(await board.server_id())
    assert await board.synced()


async def test_a_board_older_than_the_ledger_is_taken_over(ledger, namespace):
    client = redis.from_url(REDIS_URL)
    plain = RedisLeaderboardStore(client, f"{namespace}:")  # before DATABASE_URL was set
    await plain.apply([update("alice", 5), update("bob", 5), update("carol", 9)])
    before = await plain.standings()
    backed = RedisLeaderboardStore(client, f"{namespace}:", ledger_backed=True)
    await ensure_board_matches_ledger(ledger, backed)
    after = await backed.standings()
    assert [(s.user_id, s.score) for s in after] == [(s.user_id, s.score) for s in before]
    assert {s.user_id: s.score for s in await ledger.standings()} == {
        "alice": 5,
        "bob": 5,
        "carol": 9,
    }
    await client.aclose()


async def test_a_rebuild_reads_standings_and_remembered_ids_from_one_moment(
    ledger, database_url, namespace, monkeypatch
):
    """Another worker records an update while a rebuild reads the ledger: the rebuilt board
    either counts it or does not remember it as applied (so its own apply still lands), never
    remembers it without counting it."""
    import scoreboard.apply.ledger.postgres as postgres

    await ledger.record([ScoreUpdate.new("ann", "Ann", 5)])
    meanwhile = ScoreUpdate.new("ann", "Ann", 7)
    other_worker = await PostgresLedger.connect(database_url)
    read_remembered = postgres._recently_applied

    async def recorded_in_between(*args, **kwargs):
        await other_worker.record([meanwhile])  # committed between the two reads
        return await read_remembered(*args, **kwargs)

    monkeypatch.setattr(postgres, "_recently_applied", recorded_in_between)
    client = redis.from_url(REDIS_URL)
    store = RedisLeaderboardStore(client, f"{namespace}:", ledger_backed=True)
    try:
        await rebuild_board(ledger, store)
        await store.apply([meanwhile])  # the other worker's apply, once the rebuild is done
        assert [(s.user_id, s.score) for s in await store.standings()] == [("ann", 12)]
    finally:
        await client.aclose()
        await other_worker.close()
