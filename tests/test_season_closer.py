"""Seasons close at their boundary exactly once, on Redis, PostgreSQL and in memory.

Time is the closer's injected clock; Redis, PostgreSQL and RabbitMQ are real.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime

import pytest
import redis.asyncio as redis

from scoreboard.apply.ledger.closed_seasons import PostgresClosedSeasons
from scoreboard.apply.ledger.postgres import PostgresLedger
from scoreboard.apply.store import LeaderboardStore
from scoreboard.apply.store.memory_store import MemoryLeaderboardStore
from scoreboard.apply.store.redis_store import RedisLeaderboardStore
from scoreboard.boards.closed_seasons import (
    ClosedSeason,
    ClosedSeasons,
    MemoryClosedSeasons,
    RedisClosedSeasons,
)
from scoreboard.boards.keys import season_prefix
from scoreboard.boards.model import Board
from scoreboard.boards.registry import BoardRegistry, MemoryBoardStorage, RedisBoardStorage
from scoreboard.boards.season_closer import SeasonCloser
from scoreboard.boards.seasons import MemorySeasons, RedisSeasons, Seasons
from scoreboard.config import MAX_SAFE_INTEGER
from scoreboard.models import Leaderboard, ScoreUpdate
from tests.conftest import REDIS_URL

DAILY = Board("daily", "Daily", reset="daily")
LAPS = Board("laps", "Lap times", operator="best", order="asc", reset="weekly")
FIRST_START = datetime(2024, 5, 1, 9, 30, tzinfo=UTC)  # a Wednesday


@dataclass
class Clock:
    now: datetime = FIRST_START

    def __call__(self) -> datetime:
        return self.now


@dataclass
class Pushes:
    """Stands in for the broadcaster: every board it was asked to push."""

    boards: list[Leaderboard] = field(default_factory=list)

    async def broadcast_top10(self, board: Leaderboard) -> None:
        self.boards.append(board)


class Deployment:
    """One deployment's boards and seasons on one kind of storage; closer() is one more
    worker's season closer over the same services."""

    def __init__(self, kind: str, prefix: str, client: redis.Redis, ledger: PostgresLedger | None):
        self.kind, self._prefix, self._client, self._ledger = kind, prefix, client, ledger
        self.clock = Clock()
        self.pushes = Pushes()
        self._memory = MemoryLeaderboardStore()
        self._memory_parts = (
            BoardRegistry(MemoryBoardStorage()),
            MemorySeasons(self._memory),
            MemoryClosedSeasons(self._memory),
        )
        self.store: LeaderboardStore = (
            self._memory if kind == "memory" else RedisLeaderboardStore(client, prefix)
        )
        _, self.seasons, self.closed = self._parts()

    def _parts(self) -> tuple[BoardRegistry, Seasons, ClosedSeasons]:
        if self.kind == "memory":  # one process: its closers share everything
            return self._memory_parts
        store = self.store
        assert isinstance(store, RedisLeaderboardStore)
        prefix, client = self._prefix, self._client
        closed: ClosedSeasons = (
            RedisClosedSeasons(client, prefix, store)
            if self._ledger is None
            else PostgresClosedSeasons(self._ledger, client, prefix, store)
        )
        return (
            BoardRegistry(RedisBoardStorage(client, prefix)),
            RedisSeasons(client, prefix),
            closed,
        )

    def closer(self, kept: int = 12, pending_wait: float = 3.0) -> SeasonCloser:
        registry, seasons, closed = self._parts()
        return SeasonCloser(
            registry,
            seasons,
            closed,
            self.pushes,
            kept,
            clock=self.clock,
            pending_wait_seconds=pending_wait,
        )

    async def create(self, board: Board) -> None:
        registry, _, _ = self._parts()
        await registry.put(board)
        await self.seasons.create(board.board_id, FIRST_START)

    async def accept(self, board: Board, user: str, value: int) -> ScoreUpdate:
        """Accept an update as the web does: its season is the one live at reservation."""
        update = ScoreUpdate.new(user, user.title(), value, board=board)
        _, season, order = await self.store.for_board(board).admit(update, MAX_SAFE_INTEGER)
        return dataclasses.replace(update, season=season, accepted_seq=order)

    async def apply(self, *updates: ScoreUpdate) -> None:
        for update in updates:
            board = Board(update.board_id, update.board_id, update.operator, update.order)
            await self.store.for_board(board, update.season).apply([update])

    async def post(self, board: Board, user: str, value: int) -> None:
        await self.apply(await self.accept(board, user, value))

    async def standings(self, board: Board, season: int) -> list[tuple[int, str, int]]:
        page = await self.closed.page(board, season, 0, 100)
        assert page is not None, f"season {season} of {board.board_id} is not closed"
        return [(row.rank, row.user_id, row.score) for row in page.entries]

    async def live(self, board: Board) -> tuple[int, int]:
        """The live season's number and how many users it has."""
        season = (await self.seasons.current(board.board_id)).number
        return season, (await self.store.for_board(board, season).board_page(0, 1)).total


@pytest.fixture
async def client() -> AsyncIterator[redis.Redis]:
    client = redis.from_url(REDIS_URL)
    yield client
    await client.aclose()


@pytest.fixture(params=["redis", "postgres", "memory"])
async def deployment(request, namespace, client, database_url) -> AsyncIterator[Deployment]:
    """Boards DAILY and LAPS, their first seasons started at FIRST_START; the clock there."""
    ledger = None
    if request.param == "postgres":
        ledger = await PostgresLedger.connect(database_url, run_migrations=True)
    deployment = Deployment(request.param, f"{namespace}:", client, ledger)
    for board in (DAILY, LAPS):
        await deployment.create(board)
    yield deployment
    if ledger is not None:
        await ledger.close()


def at(day: int, hour: int = 0, minute: int = 0, second: int = 0) -> datetime:
    return datetime(2024, 5, day, hour, minute, second, tzinfo=UTC)


async def test_a_daily_board_closes_at_midnight_with_every_entry_ranked(deployment):
    for user, value in (("ann", 5), ("bob", 9), ("cid", 5), ("ann", 1)):
        await deployment.post(DAILY, user, value)
    last_version = (await deployment.store.for_board(DAILY).leaderboard()).version
    closer = deployment.closer()

    deployment.clock.now = at(1, 23, 59, 59)
    await closer.close_due()
    assert await deployment.closed.listed("daily") == []
    assert deployment.pushes.boards == []

    deployment.clock.now = at(2, 0, 0, 0)
    await closer.close_due()
    assert await deployment.closed.listed("daily") == [
        ClosedSeason(1, FIRST_START, at(2), entries=3, version=last_version)
    ]
    assert await deployment.standings(DAILY, 1) == [(1, "bob", 9), (2, "ann", 6), (3, "cid", 5)]
    assert await deployment.live(DAILY) == (2, 0)
    assert (await deployment.seasons.current("daily")).started_at == at(2)
    # Every subscriber of the board is pushed the new season's empty board, at a version above
    # any the old season reached.
    assert deployment.pushes.boards == [Leaderboard(last_version + 1, (), "daily", 2)]
    # The weekly board's boundary (Monday the 6th) has not come.
    assert await deployment.live(LAPS) == (1, 0)

    await deployment.post(DAILY, "bob", 2)
    assert await deployment.live(DAILY) == (2, 1)
    top = await deployment.store.for_board(DAILY, 2).leaderboard()
    assert top.version == last_version + 2 and [e.score for e in top.top] == [2]


@pytest.mark.parametrize("deployment", ["redis", "postgres"], indirect=True)
async def test_a_closed_season_on_redis_keeps_no_live_keys(deployment, client, namespace):
    await deployment.post(DAILY, "ann", 3)
    deployment.clock.now = at(2)
    await deployment.closer().close_due()
    prefix = season_prefix(f"{namespace}:", "daily", 1)
    left = sorted([k.decode()[len(prefix) :] async for k in client.scan_iter(match=f"{prefix}*")])
    # In Redis the rows stay where they were; with PostgreSQL they are there instead.
    assert left == (
        [] if deployment.kind == "postgres" else ["board", "members", "names", "version"]
    )


async def test_two_closers_racing_close_a_season_once(deployment):
    await deployment.post(DAILY, "ann", 4)
    deployment.clock.now = at(2, 0, 0, 1)
    closers = [deployment.closer() for _ in range(4)]
    await asyncio.gather(*(closer.close_due() for closer in closers))
    await asyncio.gather(*(closer.close_due() for closer in closers))
    assert [s.number for s in await deployment.closed.listed("daily")] == [1]
    assert await deployment.standings(DAILY, 1) == [(1, "ann", 4)]
    assert await deployment.live(DAILY) == (2, 0)
    assert [(b.board_id, b.season) for b in deployment.pushes.boards] == [("daily", 2)]


async def test_a_closer_started_after_several_boundaries_closes_once_and_starts_at_the_latest(
    deployment,
):
    await deployment.post(DAILY, "ann", 4)
    await deployment.post(LAPS, "bob", 61)
    # No worker ran from Wednesday morning to the next Wednesday: three daily boundaries and
    # one weekly one passed.
    deployment.clock.now = at(8, 10)
    await deployment.closer().close_due()
    [daily] = await deployment.closed.listed("daily")
    [laps] = await deployment.closed.listed("laps")
    assert (daily.number, daily.ended_at) == (1, at(2))
    assert (laps.number, laps.ended_at) == (1, at(6))
    assert (await deployment.seasons.current("daily")).started_at == at(8)
    assert (await deployment.seasons.current("laps")).started_at == at(6)
    assert await deployment.live(DAILY) == (2, 0)
    assert await deployment.standings(LAPS, 1) == [(1, "bob", 61)]


async def test_a_season_moved_by_a_worker_that_died_is_archived_by_the_next(deployment):
    await deployment.post(DAILY, "ann", 4)
    deployment.clock.now = at(2, 0, 0, 1)
    await deployment.closer().move_due()  # and the worker died before archiving it
    assert await deployment.closed.listed("daily") == []
    await deployment.closer().close_due()
    assert await deployment.standings(DAILY, 1) == [(1, "ann", 4)]


async def test_an_update_accepted_before_the_boundary_counts_in_the_old_season(deployment):
    await deployment.post(DAILY, "ann", 4)
    before = await deployment.accept(DAILY, "ann", 10)  # accepted at 23:59, not applied yet
    deployment.clock.now = at(2, 0, 0, 1)
    closer = deployment.closer()
    await closer.move_due()
    after = await deployment.accept(DAILY, "ann", 1)
    assert (before.season, after.season) == (1, 2)

    archiving = asyncio.create_task(closer.close_due())
    await asyncio.sleep(0.3)
    assert not archiving.done()  # season 1 waits for the update it accepted
    await deployment.apply(after, before)
    await archiving
    assert await deployment.standings(DAILY, 1) == [(1, "ann", 14)]
    live = await deployment.store.for_board(DAILY, 2).board_page(0, 10)
    assert [(r.user_id, r.score) for r in live.entries] == [("ann", 1)]


async def test_updates_applied_twice_or_never_reserved_do_not_cut_the_wait_short(deployment):
    waited_for = await deployment.accept(DAILY, "ann", 10)
    applied = await deployment.accept(DAILY, "bob", 3)
    await deployment.apply(applied, applied)  # a redelivery
    await deployment.apply(ScoreUpdate.new("cid", "Cid", 2, board=DAILY))  # queued before seasons
    deployment.clock.now = at(2)
    archiving = asyncio.create_task(deployment.closer().close_due())
    await asyncio.sleep(0.3)
    assert not archiving.done()
    await deployment.apply(waited_for)
    await archiving
    assert await deployment.standings(DAILY, 1) == [(1, "ann", 10), (2, "bob", 3), (3, "cid", 2)]


async def test_a_season_whose_update_never_comes_closes_after_the_wait(deployment, caplog):
    await deployment.post(DAILY, "ann", 4)
    await deployment.accept(DAILY, "bob", 10)  # its web node died before queueing it
    deployment.clock.now = at(2)
    await deployment.closer(pending_wait=0.2).close_due()
    assert await deployment.standings(DAILY, 1) == [(1, "ann", 4)]
    assert "with 1 accepted updates not applied yet" in caplog.text


async def test_a_cancelled_update_is_not_waited_for(deployment):
    cancelled = await deployment.accept(DAILY, "bob", 10)
    await deployment.store.for_board(DAILY, cancelled.season).release(cancelled)
    deployment.clock.now = at(2)
    closer = deployment.closer(pending_wait=30)
    await asyncio.wait_for(closer.close_due(), 5)
    assert await deployment.standings(DAILY, 1) == []


async def test_only_the_newest_closed_seasons_are_kept(deployment):
    closer = deployment.closer(kept=2)
    for day in (2, 3, 4):
        await deployment.post(DAILY, "ann", day)
        deployment.clock.now = at(day)
        await closer.close_due()
    assert [s.number for s in await deployment.closed.listed("daily")] == [3, 2]
    assert await deployment.closed.page(DAILY, 1, 0, 10) is None
    assert await deployment.standings(DAILY, 3) == [(1, "ann", 4)]
