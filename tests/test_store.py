"""The LeaderboardStore contract, run against the Redis store and the in-memory store alike."""

from __future__ import annotations

import asyncio
import itertools

import pytest
import redis.asyncio as redis

from scoreboard.apply.store import BoardBatch, LeaderboardStore
from scoreboard.apply.store.redis_store import RedisLeaderboardStore
from scoreboard.boards.model import Board
from scoreboard.errors import RateLimited, ScoreOverflow
from scoreboard.intake.rate_limit import rate_window
from scoreboard.models import Leaderboard, ScoreUpdate
from tests.conftest import REDIS_URL
from tests.private_services import PrivateRedis

MAX_SAFE = 2**53 - 1


def update(user: str, increment: int, name: str | None = None) -> ScoreUpdate:
    return ScoreUpdate.new(user, name or user.title(), increment)


def rows(board: Leaderboard | None) -> list[tuple[str, str, int]]:
    assert board is not None
    return [(e.user_id, e.username, e.score) for e in board.top]


async def test_empty_board_is_version_zero(store: LeaderboardStore):
    board = await store.leaderboard()
    assert (board.version, board.top) == (0, ())


async def test_apply_orders_highest_first_and_keeps_ten(store: LeaderboardStore):
    board = await store.apply([update(f"user{i:02}", i + 1) for i in range(15)])
    assert [e.score for e in board.top] == list(range(15, 5, -1))
    assert board == await store.leaderboard()


async def test_a_redelivered_update_is_applied_once(store: LeaderboardStore):
    first = update("alice", 5)
    await store.apply([first])
    assert await store.apply([first]) is None
    again = await store.apply([first, update("alice", 1)])
    assert rows(again) == [("alice", "Alice", 6)]


async def test_duplicates_inside_one_batch_count_once(store: LeaderboardStore):
    single = update("alice", 5)
    assert rows(await store.apply([single, single, single])) == [("alice", "Alice", 5)]


async def test_version_grows_only_when_the_top_changes(store: LeaderboardStore):
    top = [update(f"top{i}", 1000 + i) for i in range(10)]
    first = await store.apply(top)
    assert first is not None and first.version == 1
    assert await store.apply([update("nobody", 1)]) is None  # rank 11: the top 10 is unchanged
    second = await store.apply([update("nobody", 5000)])
    assert second is not None and second.version == 2
    assert second.top[0].user_id == "nobody"


async def test_username_change_alone_changes_the_top(store: LeaderboardStore):
    await store.apply([update("alice", 5, "Alice")])
    renamed = await store.apply([update("alice", 1, "Queen Alice")])
    assert rows(renamed) == [("alice", "Queen Alice", 6)]


async def test_ties_go_to_whoever_reached_the_score_first(store: LeaderboardStore):
    await store.apply([update("bob", 10)])
    await store.apply([update("alice", 4)])
    await store.apply([update("carol", 10)])
    board = await store.apply([update("alice", 6)])  # alice reaches 10 last
    assert [e.user_id for e in board.top] == ["bob", "carol", "alice"]
    board = await store.apply([update("bob", 1)])
    assert [(e.user_id, e.score) for e in board.top] == [("bob", 11), ("carol", 10), ("alice", 10)]
    board = await store.apply([update("carol", 1)])  # carol reaches 11 after bob
    assert [(e.user_id, e.score) for e in board.top] == [("bob", 11), ("carol", 11), ("alice", 10)]


async def test_scores_stay_exact_up_to_max_safe_integer(store: LeaderboardStore):
    huge = ScoreUpdate.new("whale", "Whale", MAX_SAFE - 1)
    assert await store.reserve(huge, MAX_SAFE) == MAX_SAFE - 1
    await store.apply([huge])
    assert await store.reserve(update("whale", 1), MAX_SAFE) == MAX_SAFE
    board = await store.apply([update("whale", 1)])
    assert rows(board) == [("whale", "Whale", MAX_SAFE)]
    with pytest.raises(ScoreOverflow):
        await store.reserve(update("whale", 1), MAX_SAFE)


async def test_reserve_counts_accepted_updates_before_they_apply(store: LeaderboardStore):
    assert await store.reserve(update("alice", 3), MAX_SAFE) == 3
    assert await store.reserve(update("alice", 4), MAX_SAFE) == 7
    assert await store.reserve(update("bob", 1), MAX_SAFE) == 1


async def test_release_before_apply_cancels_the_update(store: LeaderboardStore):
    lost = update("alice", 50)
    await store.reserve(lost, MAX_SAFE)
    assert await store.release(lost) is True
    assert await store.apply([lost]) is None  # it arrived after all: dropped
    assert await store.reserve(update("alice", 1), MAX_SAFE) == 1


async def test_release_after_apply_keeps_the_update(store: LeaderboardStore):
    late = update("alice", 50)
    await store.reserve(late, MAX_SAFE)
    await store.apply([late])
    assert await store.release(late) is False
    assert await store.reserve(update("alice", 1), MAX_SAFE) == 51


async def test_two_redis_stores_share_one_board(namespace: str):
    client_a, client_b = redis.from_url(REDIS_URL), redis.from_url(REDIS_URL)
    worker_a = RedisLeaderboardStore(client_a, f"{namespace}:")
    worker_b = RedisLeaderboardStore(client_b, f"{namespace}:")
    first = await worker_a.apply([update("alice", 5)])
    second = await worker_b.apply([update("bob", 7)])
    assert (first.version, second.version) == (1, 2)
    assert rows(await worker_a.leaderboard()) == [("bob", "Bob", 7), ("alice", "Alice", 5)]
    await client_a.aclose()
    await client_b.aclose()


async def test_prefixes_keep_deployments_apart(namespace: str):
    client = redis.from_url(REDIS_URL)
    blue = RedisLeaderboardStore(client, f"{namespace}:blue:")
    green = RedisLeaderboardStore(client, f"{namespace}:green:")
    await blue.apply([update("alice", 5)])
    assert (await green.leaderboard()).top == ()
    await client.aclose()


async def test_a_refused_batch_writes_nothing(namespace: str):
    from scoreboard.errors import UpdateRejected

    client = redis.from_url(REDIS_URL)
    store = RedisLeaderboardStore(client, f"{namespace}:")
    await client.hset(f"{namespace}:members", "broken", "0000000000000001:broken")
    alice = update("alice", 5)
    with pytest.raises(UpdateRejected, match="broken"):
        await store.apply([alice, update("broken", 1)])
    assert (await store.leaderboard()).top == ()
    assert rows(await store.apply([alice])) == [("alice", "Alice", 5)]
    await client.aclose()


async def test_a_rebuild_lock_whose_time_ran_out_leaves_its_successors_lock_alone(
    namespace: str, caplog: pytest.LogCaptureFixture
):
    client = redis.from_url(REDIS_URL)
    first, second = (RedisLeaderboardStore(client, f"{namespace}:") for _ in range(2))
    lock_key = f"{namespace}:rebuild-lock"
    slow_holder = first.rebuild_lock(seconds=0.2)
    successor = second.rebuild_lock(seconds=30)
    try:
        await slow_holder.__aenter__()
        await asyncio.sleep(0.4)  # past the first holder's time: the lock is free again
        await successor.__aenter__()
        successors_token = await client.get(lock_key)
        await slow_holder.__aexit__(None, None, None)
        assert await client.get(lock_key) == successors_token, "released someone else's lock"
        assert "the rebuild lock expired" in caplog.text
        await successor.__aexit__(None, None, None)
        assert await client.get(lock_key) is None
    finally:
        await client.aclose()


async def test_reservations_that_arrive_together_share_one_script_call(namespace: str):
    client = redis.from_url(REDIS_URL)
    store = RedisLeaderboardStore(client, f"{namespace}:")
    try:
        updates = [ScoreUpdate.new(f"p{n % 5}", "P", n + 1) for n in range(50)]
        totals = await asyncio.gather(*(store.reserve(u, MAX_SAFE) for u in updates))
    finally:
        await client.aclose()
    # Each user's answers are the running sums of their increments, in the order they came.
    for user in {u.user_id for u in updates}:
        increments = [u.increment for u in updates if u.user_id == user]
        answers = [t for u, t in zip(updates, totals, strict=True) if u.user_id == user]
        assert answers == list(itertools.accumulate(increments))
    assert store._admissions.groups < len(updates), "fewer calls than updates under load"


async def test_an_update_past_the_cap_is_refused_alone_in_its_group(namespace: str):
    client = redis.from_url(REDIS_URL)
    store = RedisLeaderboardStore(client, f"{namespace}:")
    try:
        results = await asyncio.gather(
            store.reserve(ScoreUpdate.new("a", "A", 5), 10),
            store.reserve(ScoreUpdate.new("a", "A", 9), 10),
            store.reserve(ScoreUpdate.new("a", "A", 4), 10),
            store.reserve(ScoreUpdate.new("b", "B", 7), 10),
            return_exceptions=True,
        )
    finally:
        await client.aclose()
    assert results[0] == 5 and isinstance(results[1], ScoreOverflow)
    assert results[2:] == [9, 7], "the refused +9 is not counted for the +4 after it"


async def test_the_rate_limit_is_counted_with_the_reservation(store: LeaderboardStore):
    limit = rate_window("3/minute")
    updates = [ScoreUpdate.new("rita", "Rita", 1) for _ in range(5)]
    outcomes = await asyncio.gather(
        *(store.reserve(u, MAX_SAFE, limit) for u in updates), return_exceptions=True
    )
    assert outcomes[:3] == [1, 2, 3], "the first three in arrival order, nothing else counted"
    assert all(isinstance(o, RateLimited) for o in outcomes[3:])
    assert all(0 < o.retry_after <= 60 for o in outcomes[3:] if isinstance(o, RateLimited))
    # Someone else's window is their own, and a refused request counts in its user's window.
    await store.count_refused("sam", rate_window("1/minute"))
    with pytest.raises(RateLimited):
        await store.reserve(ScoreUpdate.new("sam", "Sam", 1), MAX_SAFE, rate_window("1/minute"))
    assert await store.reserve(ScoreUpdate.new("tom", "Tom", 4), MAX_SAFE, limit) == 4


async def test_a_moving_window_lets_requests_in_again_once_it_has_passed(namespace: str):
    client = redis.from_url(REDIS_URL)
    store = RedisLeaderboardStore(client, f"{namespace}:")
    limit = rate_window("2/second")
    try:
        assert await store.reserve(ScoreUpdate.new("ivy", "Ivy", 1), MAX_SAFE, limit) == 1
        assert await store.reserve(ScoreUpdate.new("ivy", "Ivy", 1), MAX_SAFE, limit) == 2
        with pytest.raises(RateLimited):
            await store.reserve(ScoreUpdate.new("ivy", "Ivy", 1), MAX_SAFE, limit)
        await asyncio.sleep(1.05)
        assert await store.reserve(ScoreUpdate.new("ivy", "Ivy", 1), MAX_SAFE, limit) == 3
        # The window's list expires with the window: nothing stays behind for an idle user.
        assert 0 < await client.pttl(f"{namespace}:rate:score-update:ivy") <= 1000
    finally:
        await client.aclose()


LAPS = Board("laps", "Lap times", operator="best", order="asc")
HIGH = Board("high", "High scores", operator="best", order="desc")
LAST = Board("last", "Latest", operator="set", order="desc")


async def post_and_apply(store: LeaderboardStore, user: str, value: int) -> int:
    update = ScoreUpdate.new(user, user.title(), value, board=store.board)
    new_value = await store.reserve(update, MAX_SAFE)
    await store.apply([update])
    return new_value


@pytest.mark.parametrize(
    ("board", "posted", "kept"),
    [
        (HIGH, [5, 3, 8, 8], [5, 5, 8, 8]),
        (LAPS, [60, 55, 70], [60, 55, 55]),
        (LAST, [5, 9, 2], [5, 9, 2]),
    ],
)
async def test_each_operator_keeps_its_value_and_answers_it_as_new_score(
    store: LeaderboardStore, board: Board, posted: list[int], kept: list[int]
):
    on_board = store.for_board(board)
    answers = [await post_and_apply(on_board, "ann", value) for value in posted]
    assert answers == kept
    [row] = (await on_board.board_page(0, 10)).entries
    assert (row.user_id, row.score) == ("ann", kept[-1])
    assert (await store.board_page(0, 10)).entries == (), "global is a board of its own"


async def test_ascending_boards_rank_the_lowest_first_and_ties_go_to_who_reached_it_first(
    store: LeaderboardStore,
):
    laps = store.for_board(LAPS)
    for user, time in (("bea", 61), ("cal", 58), ("dan", 61), ("eve", 70), ("bea", 75)):
        await post_and_apply(laps, user, time)
    page = await laps.board_page(0, 10)
    assert [(r.user_id, r.score, r.rank) for r in page.entries] == [
        ("cal", 58, 1),
        ("bea", 61, 2),  # 75 is no better: bea keeps 61, reached before dan's
        ("dan", 61, 3),
        ("eve", 70, 4),
    ]
    top = await laps.leaderboard()
    assert (top.board_id, [e.user_id for e in top.top]) == ("laps", ["cal", "bea", "dan", "eve"])
    rank = await laps.user_rank("dan", 1)
    assert rank is not None and (rank.user.rank, rank.user.score) == (3, 61)
    assert [r.user_id for r in (*rank.above, *rank.below)] == ["bea", "eve"]


async def test_a_set_board_moves_a_user_whose_value_changed_behind_those_who_reached_it_first(
    store: LeaderboardStore,
):
    last = store.for_board(LAST)
    await post_and_apply(last, "fay", 10)
    await post_and_apply(last, "gus", 10)
    await post_and_apply(last, "fay", 12)
    await post_and_apply(last, "fay", 10)
    page = await last.board_page(0, 10)
    assert [(r.user_id, r.score) for r in page.entries] == [("gus", 10), ("fay", 10)]


async def test_one_batch_over_several_boards_applies_each_on_its_own(store: LeaderboardStore):
    laps, last = store.for_board(LAPS), store.for_board(LAST)
    shares = [
        BoardBatch(store, [update("ann", 5), update("bob", 3)]),
        BoardBatch(laps, [ScoreUpdate.new("ann", "Ann", 61, board=LAPS)]),
        BoardBatch(last, []),  # a board with nothing in this batch changes nothing
        BoardBatch(last, [ScoreUpdate.new("cy", "Cy", 7, board=LAST)]),
    ]
    outcomes = await store.apply_boards(shares)
    assert [None if o is None else (o.board_id, rows(o)) for o in outcomes] == [
        ("global", [("ann", "Ann", 5), ("bob", "Bob", 3)]),
        ("laps", [("ann", "Ann", 61)]),
        None,
        ("last", [("cy", "Cy", 7)]),
    ]
    again = await store.apply_boards(shares)
    assert again == [None, None, None, None], "each update counts once"
    assert rows(await laps.leaderboard()) == [("ann", "Ann", 61)]


async def test_a_batch_over_several_boards_survives_redis_forgetting_its_scripts(
    tmp_path, namespace: str
):
    server = PrivateRedis(tmp_path)
    server.start()
    client = redis.from_url(server.url)
    try:
        store = RedisLeaderboardStore(client, f"{namespace}:")
        await store.apply([update("ann", 1)])  # the script is loaded now
        await client.script_flush()  # as after a Redis restart
        outcomes = await store.apply_boards(
            [
                BoardBatch(store, [update("ann", 2)]),
                BoardBatch(store.for_board(LAPS), [ScoreUpdate.new("bo", "Bo", 9, board=LAPS)]),
            ]
        )
        assert [rows(o) for o in outcomes if not isinstance(o, Exception)] == [
            [("ann", "Ann", 3)],
            [("bo", "Bo", 9)],
        ]
    finally:
        await client.aclose()
        server.stop()
