"""The ledger keeps every board's seasons on a real PostgreSQL, as the Redis store does."""

from __future__ import annotations

import asyncio
import dataclasses
import random
import subprocess
import sys
from collections.abc import AsyncIterator

import asyncpg
import pytest
import redis.asyncio as redis

from scoreboard.apply.ledger.boards import LedgerBoardStorage
from scoreboard.apply.ledger.migrations import migrate, migration_files
from scoreboard.apply.ledger.postgres import PostgresLedger
from scoreboard.apply.ledger.rebuild import rebuild_board
from scoreboard.apply.store.redis_store import RedisLeaderboardStore
from scoreboard.boards.keys import current_season_key
from scoreboard.boards.model import GLOBAL_BOARD, Board
from scoreboard.boards.registry import BoardRegistry, RedisBoardStorage
from scoreboard.models import ScoreUpdate, UserStanding
from tests.conftest import REDIS_URL, remove_keys
from tests.processes import PROJECT_ROOT, process_env
from tests.test_ledger import rows

BOARDS = [
    Board("coins", "Coins", operator="incr", order="desc"),
    Board("penalties", "Penalties", operator="incr", order="asc"),
    Board("high", "High scores", operator="best", order="desc"),
    Board("laps", "Lap times", operator="best", order="asc"),
    Board("last", "Latest", operator="set", order="desc"),
    Board("rank", "Latest rank", operator="set", order="asc"),
]
BOARD = {board.board_id: board for board in BOARDS}


@pytest.fixture
async def client() -> AsyncIterator[redis.Redis]:
    client = redis.from_url(REDIS_URL)
    yield client
    await client.aclose()


def post(board: Board, user: str, value: int, season: int = 1) -> ScoreUpdate:
    return ScoreUpdate.new(user, user.title(), value, board=board, season=season)


@pytest.mark.parametrize(
    ("board_id", "resulting", "set_by"),
    [
        ("coins", [5, 8, 16, 24, 26], 4),
        ("penalties", [5, 8, 16, 24, 26], 4),
        ("high", [5, 5, 8, 8, 8], 2),  # the second 8 is no change: the first keeps the place
        ("laps", [5, 3, 3, 3, 2], 4),
        ("last", [5, 3, 8, 8, 2], 4),
        ("rank", [5, 3, 8, 8, 2], 4),
    ],
)
async def test_each_row_holds_the_value_on_its_board_after_the_update(
    ledger, database_url, board_id, resulting, set_by
):
    board = BOARD[board_id]
    ids = await ledger.record([post(board, "ann", value) for value in (5, 3, 8, 8, 2)])
    recorded = await rows(
        database_url,
        "SELECT board_id, season, increment, resulting_score FROM score_ledger ORDER BY id",
    )
    assert [tuple(r.values()) for r in recorded] == [
        (board_id, 1, posted, value)
        for posted, value in zip((5, 3, 8, 8, 2), resulting, strict=True)
    ]
    [standing] = await ledger.standings(board_id, 1)
    assert (standing.score, standing.sequence) == (resulting[-1], ids[set_by])
    assert await ledger.standings() == [], "global is a board of its own"


async def test_boards_seasons_and_global_keep_separate_values(ledger):
    high = BOARD["high"]
    await ledger.record([post(high, "ann", 40), post(GLOBAL_BOARD, "ann", 3)])
    await ledger.record([post(high, "ann", 10, season=2), post(high, "ann", 30)])
    assert [s.score for s in await ledger.standings("high", 1)] == [40]
    assert [s.score for s in await ledger.standings("high", 2)] == [10]
    assert [s.score for s in await ledger.standings()] == [3]


async def test_zero_is_a_score_on_best_and_set_boards(ledger):
    await ledger.record([post(BOARD["laps"], "ann", 0), post(BOARD["last"], "bob", 0)])
    assert [(s.user_id, s.score) for s in await ledger.standings("laps", 1)] == [("ann", 0)]
    assert [(s.user_id, s.score) for s in await ledger.standings("last", 1)] == [("bob", 0)]


async def test_a_redelivered_board_update_is_recorded_once(ledger, database_url):
    first = post(BOARD["coins"], "ann", 5)
    ids = await ledger.record([first])
    assert await ledger.record([first, post(BOARD["coins"], "ann", 2), first]) == [
        ids[0],
        ids[0] + 1,
        ids[0],
    ]
    count = await rows(database_url, "SELECT count(*) AS n FROM score_ledger")
    assert count[0]["n"] == 2
    assert [s.score for s in await ledger.standings("coins", 1)] == [7]


@pytest.mark.parametrize("board_id", list(BOARD))
async def test_the_ledger_keeps_the_values_and_places_the_redis_store_keeps(
    ledger, client, namespace, board_id
):
    board = BOARD[board_id]
    store = RedisLeaderboardStore(client, f"{namespace}:").for_board(board)
    draw = random.Random(board_id)
    low = 1 if board.operator == "incr" else 0
    for _ in range(10):
        # Few users and values: repeats, ties and values that change nothing come often.
        batch = [post(board, draw.choice("abcd"), draw.randint(low, 3)) for _ in range(6)]
        await store.apply(batch, await ledger.record(batch))
        in_ledger = {s.user_id: s for s in await ledger.standings(board_id, 1)}
        assert in_ledger == {s.user_id: s for s in await store.standings()}


async def test_history_on_one_board_or_every_board(ledger):
    laps = BOARD["laps"]
    ids = await ledger.record(
        [post(GLOBAL_BOARD, "ann", 5), post(laps, "ann", 61), post(laps, "ann", 58)]
    )
    await ledger.record([post(laps, "bob", 50), post(GLOBAL_BOARD, "ann", 2)])
    on_laps = await ledger.history("ann", limit=10, before=None, board_id="laps")
    assert [(e.entry_id, e.increment, e.resulting_score) for e in on_laps] == [
        (ids[2], 58, 58),
        (ids[1], 61, 61),
    ]
    assert all((e.board_id, e.season) == ("laps", 1) for e in on_laps)
    on_global = await ledger.history("ann", limit=10, before=None, board_id="global")
    assert [(e.increment, e.resulting_score) for e in on_global] == [(2, 7), (5, 5)]
    everywhere = await ledger.history("ann", limit=3, before=None)
    assert [e.board_id for e in everywhere] == ["global", "laps", "laps"]
    older = await ledger.history("ann", limit=10, before=ids[2], board_id="laps")
    assert [e.entry_id for e in older] == [ids[1]]


async def test_a_boards_season_is_rebuilt_from_the_ledger_as_the_store_held_it(
    ledger, client, namespace
):
    laps = BOARD["laps"]
    store = RedisLeaderboardStore(client, f"{namespace}:", ledger_backed=True)
    season = store.for_board(laps, 2)
    await client.set(current_season_key(f"{namespace}:", "laps"), 2)  # only a live season pushes
    await season.mark_synced()  # started empty, as a move leaves it
    await store.for_board(laps, 1).mark_synced()
    # Equal times: cal ran 58 before bea did; bea's 75 is no better and changes nothing.
    updates = [
        post(laps, "bea", 61, 2),
        post(laps, "cal", 58, 2),
        post(laps, "bea", 58, 2),
        post(laps, "dan", 70, 2),
        post(laps, "bea", 75, 2),
    ]
    other_season = [post(laps, "eve", 10, 1)]
    live = await season.apply(updates, await ledger.record(updates))
    await store.for_board(laps, 1).apply(other_season, await ledger.record(other_season))
    before = await season.standings()
    assert [(s.user_id, s.score) for s in before] == [("cal", 58), ("bea", 58), ("dan", 70)]
    keys = [k async for k in client.scan_iter(match=f"{namespace}:boards:laps:s2:*")]
    await client.delete(*keys)
    assert await season.standings() == []

    report = await rebuild_board(ledger, season)
    assert await season.standings() == before
    assert live is not None and report.board.top == live.top
    assert (report.board.board_id, report.board.season) == ("laps", 2)
    assert await season.apply(updates, await ledger.record(updates)) is None  # counted once


async def test_the_migration_keeps_earlier_rows_as_globals_first_season(database_url):
    connection = await asyncpg.connect(database_url)
    try:
        await connection.execute(
            "CREATE TABLE schema_migrations (version integer PRIMARY KEY, name text NOT NULL,"
            " applied_at timestamptz NOT NULL DEFAULT now())"
        )
        for version, name, sql in migration_files()[:2]:
            await connection.execute(sql)
            await connection.execute("INSERT INTO schema_migrations VALUES ($1, $2)", version, name)
        await connection.execute(
            """INSERT INTO score_ledger (message_id, user_id, username, increment,
                                         resulting_score, accepted_at)
               VALUES ('m1', 'ann', 'Ann', 5, 5, now()), ('m2', 'bob', 'Bob', 5, 5, now())"""
        )
        await connection.execute(
            "INSERT INTO user_scores VALUES ('ann', 'Ann', 5, 1), ('bob', 'Bob', 5, 2)"
        )
        assert await migrate(connection) == [name for _, name, _ in migration_files()[2:]]
        boards = await connection.fetch("SELECT DISTINCT board_id, season FROM score_ledger")
        assert [tuple(r.values()) for r in boards] == [("global", 1)]
    finally:
        await connection.close()
    ledger = await PostgresLedger.connect(database_url)
    try:
        standings = sorted(await ledger.standings(), key=lambda s: s.user_id)
        assert [(s.user_id, s.score, s.sequence) for s in standings] == [
            ("ann", 5, 1),
            ("bob", 5, 2),
        ]
        [late] = await ledger.record([ScoreUpdate.new("ann", "Ann", 1)])
        assert late > 2
        assert [e.resulting_score for e in await ledger.history("ann", 5, None)] == [6, 5]
    finally:
        await ledger.close()


def rebuild(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "scoreboard", "rebuild", *args],
        cwd=PROJECT_ROOT,
        env=process_env(env),
        capture_output=True,
        text=True,
        timeout=60,
    )


async def test_the_rebuild_command_restores_a_boards_season(env, ledger, database_url, client):
    laps = BOARD["laps"]
    prefix = env["REDIS_KEY_PREFIX"]
    await BoardRegistry(LedgerBoardStorage(ledger, RedisBoardStorage(client, prefix))).put(laps)
    season = RedisLeaderboardStore(client, prefix).for_board(laps, 2)
    updates = [post(laps, user, time, 2) for user, time in (("bea", 61), ("cal", 61))]
    await season.apply(updates, await ledger.record(updates))
    before = await season.standings()
    assert [s.user_id for s in before] == ["bea", "cal"]
    remove_keys(prefix)  # the list of boards goes too: it comes back from PostgreSQL

    env = {**env, "DATABASE_URL": database_url}
    done = await asyncio.to_thread(rebuild, env, "--board", "laps", "--season", "2")
    assert done.returncode == 0, done.stderr
    assert "rebuilt 2 users on board 'laps' season 2" in done.stdout
    assert await season.standings() == before
    unknown = await asyncio.to_thread(rebuild, env, "--board", "nope")
    assert (unknown.returncode, unknown.stderr) == (2, "this deployment has no board 'nope'\n")


async def test_concurrent_writers_on_several_boards_keep_every_value_exact(database_url):
    ledgers = [await PostgresLedger.connect(database_url, run_migrations=True) for _ in range(3)]
    coins, high = BOARD["coins"], BOARD["high"]
    on_each = (coins, GLOBAL_BOARD, high) * 3
    batches = [[post(b, user, 1) for user in ("ann", "ben") for b in on_each] for _ in range(12)]
    try:
        await asyncio.gather(*(ledgers[i % 3].record(b) for i, b in enumerate(batches)))
        for board_id, value in (("coins", 36), ("global", 36), ("high", 1)):
            values = {s.user_id: s.score for s in await ledgers[0].standings(board_id, 1)}
            assert values == {"ann": value, "ben": value}
    finally:
        for each in ledgers:
            await each.close()


def ranked(standings: list[UserStanding], board: Board) -> list[tuple[str, int]]:
    sign = -1 if board.order == "desc" else 1
    ordered = sorted(standings, key=lambda s: (sign * s.score, s.sequence))
    return [(s.user_id, s.score) for s in ordered]


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("board_id", list(BOARD))
async def test_updates_applied_out_of_order_end_as_they_were_accepted(
    ledger, client, namespace, board_id, seed
):
    """Two workers may apply a user's updates in either order: the board ends as if they had
    been applied in the order they were accepted (the newest `set` wins, ties by who was first)."""
    board = BOARD[board_id]
    store = RedisLeaderboardStore(client, f"{namespace}:").for_board(board)
    draw = random.Random(f"{board_id}{seed}")
    low = 1 if board.operator == "incr" else 0
    accepted = []
    for _ in range(60):
        update = post(board, draw.choice("abcd"), draw.randint(low, 4))
        reservation = await store.admit(update, 10**12)
        assert reservation.accepted_seq is not None
        accepted.append(dataclasses.replace(update, accepted_seq=reservation.accepted_seq))
    assert [u.accepted_seq for u in accepted] == sorted({u.accepted_seq for u in accepted})

    in_order = RedisLeaderboardStore(client, f"{namespace}:in-order:").for_board(board)
    await in_order.apply(accepted)
    shuffled = draw.sample(accepted, len(accepted))
    for start in range(0, len(shuffled), 7):
        batch = shuffled[start : start + 7]
        await store.apply(batch, await ledger.record(batch))

    expected = [(s.user_id, s.score) for s in await in_order.standings()]
    on_redis = [(s.user_id, s.score) for s in await store.standings()]
    in_ledger = ranked(await ledger.standings(board_id, 1), board)
    assert on_redis == in_ledger, "the ledger and Redis agree, ties included"
    if board.operator == "set":
        # A `set` repeating the user's value keeps their place; applied before a different
        # value accepted between the two (which it then supersedes), it cannot tell, so only
        # the values are certain here, not the order among equal ones (docs/boards.md).
        assert sorted(on_redis) == sorted(expected)
    else:
        assert on_redis == expected
