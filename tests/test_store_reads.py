"""The read side of the LeaderboardStore contract, on the Redis and the in-memory store alike."""

from __future__ import annotations

from typing import Any

import pytest
import redis.asyncio as redis

from scoreboard.apply.store import LeaderboardStore
from scoreboard.apply.store.rankings import BoardPage, RankedEntry, UserRank
from scoreboard.apply.store.redis_store import RedisLeaderboardStore
from scoreboard.models import ScoreUpdate
from tests.conftest import REDIS_URL

MAX_SAFE = 2**53 - 1


def update(user: str, increment: int, name: str | None = None) -> ScoreUpdate:
    return ScoreUpdate.new(user, name or user.title(), increment)


def rows(entries: tuple[RankedEntry, ...]) -> list[tuple[int, str, int]]:
    return [(e.rank, e.user_id, e.score) for e in entries]


async def fifteen_players(store: LeaderboardStore) -> None:
    """player01 … player15 with scores 10 … 150: player15 ranks first."""
    await store.apply([update(f"player{i:02}", i * 10) for i in range(1, 16)])


async def test_an_empty_board_has_no_rows_and_nobody_has_a_rank(store: LeaderboardStore):
    assert await store.board_page(0, 10) == BoardPage(version=0, total=0, entries=())
    assert await store.user_rank("alice", 5) is None


async def test_page_lists_highest_first_with_ranks_names_and_total(store: LeaderboardStore):
    await store.apply([update("bob", 12, "Bob B."), update("alice", 5), update("carol", 8)])
    page = await store.board_page(0, 10)
    assert page == BoardPage(
        version=1,
        total=3,
        entries=(
            RankedEntry(1, "bob", "Bob B.", 12),
            RankedEntry(2, "carol", "Carol", 8),
            RankedEntry(3, "alice", "Alice", 5),
        ),
    )


async def test_offset_and_limit_select_consecutive_ranks(store: LeaderboardStore):
    await fifteen_players(store)
    page = await store.board_page(10, 10)
    assert page.total == 15
    assert rows(page.entries) == [(11 + i, f"player{5 - i:02}", (5 - i) * 10) for i in range(5)]
    assert rows((await store.board_page(3, 2)).entries) == [
        (4, "player12", 120),
        (5, "player11", 110),
    ]
    past_the_end = await store.board_page(15, 10)
    assert (past_the_end.total, past_the_end.entries) == (15, ())


async def test_first_ten_rows_are_the_pushed_top10_of_the_same_version(store: LeaderboardStore):
    await fifteen_players(store)
    await store.apply([update("player03", 1000)])
    await store.apply([update("player01", 5)])  # below the top 10: same version, new row order
    page, pushed = await store.board_page(0, 10), await store.leaderboard()
    assert page.version == pushed.version == 2
    assert [(e.user_id, e.username, e.score) for e in page.entries] == [
        (e.user_id, e.username, e.score) for e in pushed.top
    ]
    assert rows((await store.board_page(14, 1)).entries) == [(15, "player01", 15)]


async def test_ties_rank_whoever_reached_the_score_first_in_page_and_rank(
    store: LeaderboardStore,
):
    await store.apply([update("bob", 10)])
    await store.apply([update("alice", 4)])
    await store.apply([update("carol", 10)])
    await store.apply([update("alice", 6)])  # alice reaches 10 last
    await store.apply([update("dave", 10)])
    order = ["bob", "carol", "alice", "dave"]
    assert [e.user_id for e in (await store.board_page(0, 10)).entries] == order
    pushed = await store.leaderboard()
    assert [e.user_id for e in pushed.top] == order
    for rank, user in enumerate(order, start=1):
        standing = await store.user_rank(user, 0)
        assert standing is not None and standing.user.rank == rank
    await store.apply([update("bob", 1), update("carol", 1)])  # carol reaches 11 after bob
    assert [e.user_id for e in (await store.board_page(0, 2)).entries] == ["bob", "carol"]


async def test_user_rank_has_up_to_n_neighbours_on_each_side(store: LeaderboardStore):
    await fifteen_players(store)
    middle = await store.user_rank("player08", 2)
    assert middle == UserRank(
        version=1,
        total=15,
        user=RankedEntry(8, "player08", "Player08", 80),
        above=(
            RankedEntry(6, "player10", "Player10", 100),
            RankedEntry(7, "player09", "Player09", 90),
        ),
        below=(
            RankedEntry(9, "player07", "Player07", 70),
            RankedEntry(10, "player06", "Player06", 60),
        ),
    )
    leader = await store.user_rank("player15", 3)
    assert leader is not None
    assert (leader.user.rank, leader.above) == (1, ())
    assert [e.rank for e in leader.below] == [2, 3, 4]
    last = await store.user_rank("player01", 50)
    assert last is not None
    assert (last.user.rank, len(last.above), last.below) == (15, 14, ())
    alone = await store.user_rank("player08", 0)
    assert alone is not None and (alone.above, alone.below) == ((), ())


async def test_a_reserved_but_unapplied_user_has_no_rank_yet(store: LeaderboardStore):
    pending = update("alice", 5)
    await store.reserve(pending, MAX_SAFE)
    assert await store.user_rank("alice", 5) is None
    assert (await store.board_page(0, 10)).total == 0
    await store.apply([pending])
    standing = await store.user_rank("alice", 5)
    assert standing is not None and standing.user == RankedEntry(1, "alice", "Alice", 5)


async def test_reads_keep_scores_exact_up_to_max_safe_integer(store: LeaderboardStore):
    await store.apply([update("whale", MAX_SAFE - 1), update("minnow", MAX_SAFE - 2)])
    await store.apply([update("whale", 1)])
    page = await store.board_page(0, 10)
    assert [e.score for e in page.entries] == [MAX_SAFE, MAX_SAFE - 2]
    standing = await store.user_rank("minnow", 1)
    assert standing is not None
    assert (standing.user.score, standing.above[0].score) == (MAX_SAFE - 2, MAX_SAFE)


async def test_reads_show_the_latest_username(store: LeaderboardStore):
    await store.apply([update("alice", 5, "Alice")])
    await store.apply([update("alice", 1, "Queen Alice")])
    standing = await store.user_rank("alice", 0)
    assert standing is not None and standing.user.username == "Queen Alice"
    assert (await store.board_page(0, 1)).entries[0].username == "Queen Alice"


async def test_odd_user_ids_read_back_unchanged(store: LeaderboardStore):
    odd = ["a:b:c", "ünïcødé 名前", "  spaced  ", "0000000000000001:x"]
    await store.apply([update(user, 10 + i, f"name {i}") for i, user in enumerate(odd)])
    page = await store.board_page(0, 10)
    assert [e.user_id for e in page.entries] == list(reversed(odd))
    for user in odd:
        standing = await store.user_rank(user, 0)
        assert standing is not None and standing.user.user_id == user


async def test_each_redis_read_is_one_round_trip(namespace: str, monkeypatch: pytest.MonkeyPatch):
    client = redis.from_url(REDIS_URL)
    store = RedisLeaderboardStore(client, f"{namespace}:")
    await fifteen_players(store)
    # The first run of a script loads it into Redis; count the steady state after that.
    await store.board_page(0, 10)
    await store.user_rank("player01", 5)
    commands: list[Any] = []
    execute = client.execute_command

    async def counting(*args: Any, **kwargs: Any) -> Any:
        commands.append(args[0])
        return await execute(*args, **kwargs)

    monkeypatch.setattr(client, "execute_command", counting)
    page = await store.board_page(0, 100)
    standing = await store.user_rank("player07", 50)
    missing = await store.user_rank("nobody", 50)
    assert commands == ["EVALSHA", "EVALSHA", "EVALSHA"]
    assert (page.total, len(page.entries), missing) == (15, 15, None)
    assert standing is not None and standing.user.rank == 9
    await client.aclose()


async def test_a_page_read_by_another_node_sees_every_applied_update(namespace: str):
    client_a, client_b = redis.from_url(REDIS_URL), redis.from_url(REDIS_URL)
    worker = RedisLeaderboardStore(client_a, f"{namespace}:")
    web = RedisLeaderboardStore(client_b, f"{namespace}:")
    await worker.apply([update("alice", 5)])
    await worker.apply([update("bob", 7)])
    page = await web.board_page(0, 10)
    assert (page.version, rows(page.entries)) == (2, [(1, "bob", 7), (2, "alice", 5)])
    await client_a.aclose()
    await client_b.aclose()
