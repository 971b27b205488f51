"""Pacing broadcasts: at most BROADCAST_HZ pushes a second, yet the newest board always goes out."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import redis.asyncio as redis

from scoreboard.apply.store.memory_store import MemoryLeaderboardStore
from scoreboard.apply.store.redis_store import RedisLeaderboardStore
from scoreboard.errors import StoreUnavailable
from scoreboard.models import Leaderboard, LeaderboardEntry, ScoreUpdate
from scoreboard.push.broadcast import Broadcaster
from scoreboard.push.coalescing import CoalescingBroadcaster, LocalEmitSlot, RedisEmitSlot, paced
from tests.conftest import REDIS_URL


class RecordingEmitter:
    def __init__(self) -> None:
        self.sent: list[tuple[float, dict[str, Any]]] = []

    async def emit(
        self, event: str, data: Any, namespace: str | None = None, **options: Any
    ) -> None:
        self.sent.append((time.monotonic(), data))


async def hammer(store, pusher, user: str, changes: int, seconds: float) -> None:
    """Apply `changes` score changes over `seconds`, announcing each one."""
    for _ in range(changes):
        board = await store.apply([ScoreUpdate.new(user, user, 1)])
        if board is not None:
            await pusher.broadcast_top10(board)
        await asyncio.sleep(seconds / changes)


async def test_many_changes_make_few_pushes_and_the_last_one_is_the_newest():
    store, emitter = MemoryLeaderboardStore(), RecordingEmitter()
    pusher = CoalescingBroadcaster(Broadcaster(emitter), store.leaderboard, LocalEmitSlot(), hz=10)
    started = time.monotonic()
    await hammer(store, pusher, "alice", changes=200, seconds=1.0)
    await pusher.close()
    elapsed = time.monotonic() - started
    assert len(emitter.sent) <= elapsed * 10 + 2
    assert emitter.sent[-1][1] == Broadcaster.payload(await store.leaderboard())
    gaps = [b - a for (a, _), (b, _) in zip(emitter.sent, emitter.sent[1:], strict=False)]
    assert min(gaps) >= 0.09  # never two pushes within one period
    versions = [data["version"] for _, data in emitter.sent]
    assert versions == sorted(set(versions))


async def test_two_workers_share_one_rate_through_redis(namespace):
    client = redis.from_url(REDIS_URL)
    store = RedisLeaderboardStore(client, f"{namespace}:")
    emitter = RecordingEmitter()  # one channel to the clients, as with Redis pub/sub
    workers = [
        CoalescingBroadcaster(
            Broadcaster(emitter), store.leaderboard, RedisEmitSlot(client, f"{namespace}:"), hz=5
        )
        for _ in range(2)
    ]
    started = time.monotonic()
    await asyncio.gather(
        hammer(store, workers[0], "ann", changes=60, seconds=1.5),
        hammer(store, workers[1], "bob", changes=60, seconds=1.5),
    )
    for worker in workers:
        await worker.close()
    elapsed = time.monotonic() - started
    assert len(emitter.sent) <= elapsed * 5 + 3
    newest = Broadcaster.payload(await store.leaderboard())
    assert max((data for _, data in emitter.sent), key=lambda d: d["version"]) == newest
    await client.aclose()


async def test_zero_hz_pushes_every_change():
    plain = Broadcaster(RecordingEmitter())
    assert paced(plain, MemoryLeaderboardStore().leaderboard, LocalEmitSlot(), 0) is plain


def board_of(data: dict[str, Any]) -> str:
    return str(data.get("boardId", "global"))


async def hammer_board(pusher, board_id: str, changes: int, seconds: float) -> None:
    """Announce `changes` new versions of a board that only this worker changes."""
    for version in range(1, changes + 1):
        await pusher.broadcast_top10(Leaderboard(version, (), board_id=board_id))
        await asyncio.sleep(seconds / changes)


async def test_a_busy_board_never_holds_back_a_quiet_boards_push(namespace):
    client = redis.from_url(REDIS_URL)
    store = RedisLeaderboardStore(client, f"{namespace}:")
    emitter = RecordingEmitter()
    slot = RedisEmitSlot(client, f"{namespace}:")
    pusher = CoalescingBroadcaster(Broadcaster(emitter), store.leaderboard, slot, hz=2)
    started = time.monotonic()
    busy = asyncio.create_task(hammer(store, pusher, "ann", changes=100, seconds=1.0))
    await asyncio.sleep(0.3)  # global's slot is taken for the next 0.5 s
    quiet_at = time.monotonic()
    await pusher.broadcast_top10(Leaderboard(1, (LeaderboardEntry("bo", "Bo", 3),), "weekly", 2))
    await busy
    await pusher.close()
    [(sent_at, weekly)] = [(at, data) for at, data in emitter.sent if board_of(data) == "weekly"]
    assert sent_at - quiet_at < 0.1
    assert weekly == Broadcaster.payload(
        Leaderboard(1, (LeaderboardEntry("bo", "Bo", 3),), "weekly", 2)
    )
    global_sent = [at for at, data in emitter.sent if board_of(data) == "global"]
    assert len(global_sent) <= (time.monotonic() - started) * 2 + 2
    assert emitter.sent[-1][1] == Broadcaster.payload(await store.leaderboard())
    await client.aclose()


async def test_each_board_keeps_to_the_rate_and_ends_on_its_newest_version():
    emitter = RecordingEmitter()
    pusher = CoalescingBroadcaster(
        Broadcaster(emitter), MemoryLeaderboardStore().leaderboard, LocalEmitSlot(), hz=10
    )
    started = time.monotonic()
    await asyncio.gather(
        hammer_board(pusher, "daily", changes=100, seconds=0.6),
        hammer_board(pusher, "weekly", changes=50, seconds=0.6),
    )
    await pusher.close()
    elapsed = time.monotonic() - started
    for board_id, newest in (("daily", 100), ("weekly", 50)):
        sent = [(at, data["version"]) for at, data in emitter.sent if board_of(data) == board_id]
        assert len(sent) <= elapsed * 10 + 2
        versions = [version for _, version in sent]
        assert versions == sorted(set(versions)) and versions[-1] == newest
        gaps = [b - a for (a, _), (b, _) in zip(sent, sent[1:], strict=False)]
        assert min(gaps) >= 0.09


async def test_many_quiet_boards_each_get_their_one_change_out_at_once():
    emitter = RecordingEmitter()
    pusher = CoalescingBroadcaster(
        Broadcaster(emitter), MemoryLeaderboardStore().leaderboard, LocalEmitSlot(), hz=1
    )
    started = time.monotonic()
    for n in range(100):
        await pusher.broadcast_top10(Leaderboard(1, (), board_id=f"quiet-{n}"))
    await pusher.close()
    assert sorted(board_of(data) for _, data in emitter.sent) == sorted(
        f"quiet-{n}" for n in range(100)
    )
    assert max(at for at, _ in emitter.sent) - started < 0.2  # not one board a second


async def test_a_change_still_goes_out_when_the_store_fails_to_answer_once():
    store, emitter = MemoryLeaderboardStore(), RecordingEmitter()
    failures = [StoreUnavailable()]

    async def flaky_leaderboard() -> Leaderboard:
        if failures:
            raise failures.pop()
        return await store.leaderboard()

    pusher = CoalescingBroadcaster(Broadcaster(emitter), flaky_leaderboard, LocalEmitSlot(), 20)
    board = await store.apply([ScoreUpdate.new("ann", "Ann", 4)])
    assert board is not None
    await pusher.broadcast_top10(board)
    await pusher.close()
    assert [data for _, data in emitter.sent] == [Broadcaster.payload(board)]


async def test_a_push_redis_refused_goes_out_once_it_answers_again():
    store, emitter = MemoryLeaderboardStore(), RecordingEmitter()
    refusals = [StoreUnavailable(), StoreUnavailable()]

    class RefusingEmitter:
        async def emit(self, event: str, data: Any, **options: Any) -> None:
            if refusals:
                raise refusals.pop()
            await emitter.emit(event, data, **options)

    pusher = CoalescingBroadcaster(
        Broadcaster(RefusingEmitter()), store.leaderboard, LocalEmitSlot(), 20
    )
    board = await store.apply([ScoreUpdate.new("ann", "Ann", 4)])
    assert board is not None
    await pusher.broadcast_top10(board)
    await pusher.close()
    assert [data for _, data in emitter.sent] == [Broadcaster.payload(board)]


async def test_boards_claiming_their_slots_together_share_one_redis_call(namespace):
    client = redis.from_url(REDIS_URL)
    slot = RedisEmitSlot(client, f"{namespace}:")
    boards = [f"board{n}" for n in range(50)]
    waits = await asyncio.gather(*(slot.claim(board, 0.5) for board in boards))
    assert waits == [0.0] * 50, "every board's slot was free"
    assert slot.script_calls == 1
    again = await asyncio.gather(slot.claim("board7", 0.5), slot.claim("global", 0.5))
    assert 0.3 < again[0] <= 0.5, "taken: free again once its period has passed"
    assert again[1] == 0.0
    assert slot.script_calls == 2
    await client.aclose()
