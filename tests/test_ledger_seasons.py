"""A board's seasons when Redis loses them: restored from PostgreSQL, rebuilt from the ledger,
closed once and never into the wrong season."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import asyncpg
import pytest
import redis.asyncio as redis

from scoreboard.apply.ledger.boards import LedgerBoardStorage
from scoreboard.apply.ledger.closed_seasons import PostgresClosedSeasons
from scoreboard.apply.ledger.postgres import PostgresLedger
from scoreboard.apply.ledger.rebuild import ensure_board_matches_ledger
from scoreboard.apply.ledger.seasons import LedgerSeasons
from scoreboard.apply.store.redis_store import RedisLeaderboardStore
from scoreboard.boards.keys import season_prefix
from scoreboard.boards.model import Board
from scoreboard.boards.registry import BoardRegistry, RedisBoardStorage
from scoreboard.boards.season_closer import SeasonCloser
from scoreboard.boards.seasons import RedisSeasons, Season, SeasonEnd
from scoreboard.config import Settings
from scoreboard.errors import BoardOutOfSync, SeasonClosed
from scoreboard.models import ScoreUpdate
from scoreboard.web.app import create_app
from tests.conftest import REDIS_URL, remove_keys
from tests.test_board_scores import queued
from tests.test_boards_api import get, put
from tests.test_season_closer import Pushes
from tests.test_seasons_api import post_score, reset

CUP = Board("cup", "Cup", operator="best")
T1, T2, T3 = (datetime(2024, 5, day, 12, tzinfo=UTC) for day in (1, 8, 15))


@pytest.fixture
async def client() -> AsyncIterator[redis.Redis]:
    client = redis.from_url(REDIS_URL)
    yield client
    await client.aclose()


class Worker:
    """One worker's view of the deployment: its boards, seasons, closer; nothing read yet."""

    def __init__(self, ledger: PostgresLedger, client: redis.Redis, namespace: str) -> None:
        prefix = f"{namespace}:"
        self.ledger = ledger
        self.store = RedisLeaderboardStore(client, prefix, ledger_backed=True)
        self.seasons = LedgerSeasons(ledger, RedisSeasons(client, prefix))
        self.registry = BoardRegistry(LedgerBoardStorage(ledger, RedisBoardStorage(client, prefix)))
        self.closed = PostgresClosedSeasons(ledger, client, prefix, self.store)
        self.pushes = Pushes()

    def closer(self) -> SeasonCloser:
        return SeasonCloser(
            self.registry, self.seasons, self.closed, self.pushes, 12, pending_wait_seconds=0.3
        )

    async def apply(self, season: int, *posts: tuple[str, int]) -> list[ScoreUpdate]:
        """Record and apply posts to CUP's season, as a worker does."""
        updates = [
            ScoreUpdate.new(u, u.title(), value, board=CUP, season=season) for u, value in posts
        ]
        store = self.store.for_board(CUP, season)
        await store.apply(updates, await self.ledger.record(updates))
        return updates


@pytest.fixture
async def worker(ledger, client, namespace) -> Worker:
    worker = Worker(ledger, client, namespace)
    await worker.registry.put(CUP)
    await worker.seasons.create("cup", T1)
    return worker


async def test_the_live_season_and_its_times_come_back_from_postgresql(
    worker, ledger, client, namespace
):
    assert await worker.seasons.move("cup", 1, T2, T2) is not None
    assert await worker.seasons.move("cup", 2, T3, T3) is not None
    remove_keys(f"{namespace}:")  # Redis emptied

    other = Worker(ledger, client, namespace)
    assert await other.seasons.current("cup") == Season(3, T3)
    assert await other.seasons.numbers(["global", "cup"]) == [1, 3]
    # Neither ended season was archived: the closer finds them as the move left them.
    assert await other.seasons.archived("cup") == 0
    assert await other.seasons.ended("cup", 1) == SeasonEnd("cup", 1, T1, T2)
    assert await other.seasons.ended("cup", 2) == SeasonEnd("cup", 2, T2, T3)


async def test_a_board_from_before_the_record_takes_its_season_from_the_ledger_and_archive(
    ledger, client, namespace, database_url
):
    worker = Worker(ledger, client, namespace)
    await ledger.record([ScoreUpdate.new("ann", "Ann", 5, board=CUP, season=4)])
    assert await worker.seasons.current("cup") == Season(4, None)

    connection = await asyncpg.connect(database_url)
    await connection.execute("INSERT INTO closed_seasons VALUES ('cup', 6, NULL, $1, 0, 1)", T2)
    await connection.close()
    remove_keys(f"{namespace}:")
    other = Worker(ledger, client, namespace)
    assert await other.seasons.current("cup") == Season(7, None)
    assert await other.seasons.archived("cup") == 6


async def test_an_update_accepted_after_redis_lost_the_board_counts_in_the_live_season(
    aiohttp_client, env, namespace, database_url, ledger
):
    api = await aiohttp_client(create_app(Settings.from_env({**env, "DATABASE_URL": database_url})))
    assert (await put(api, "cup", {"name": "Cup", "operator": "best"}))[0] == 201
    for season in (1, 2):
        assert (await reset(api, "cup"))[1]["season"] == season + 1
    remove_keys(f"{namespace}:")

    await post_score(api, "cup", "ann", 7)
    [update] = [u for u in await queued(namespace) if u.board_id == "cup"]
    assert update.season == 3
    status, answer = await get(api, "/api/boards/cup")
    assert (status, answer["board"]["season"]) == (200, 3)


async def test_a_season_closing_when_redis_was_emptied_is_archived_once_from_the_ledger(
    worker, ledger, client, namespace, caplog
):
    await worker.apply(1, ("ann", 5), ("bob", 9), ("cid", 7), ("ann", 8))
    assert await worker.seasons.move("cup", 1, T2, T2) is not None
    remove_keys(f"{namespace}:")  # before the season was archived

    others = [Worker(ledger, client, namespace) for _ in range(2)]
    with caplog.at_level(logging.INFO):
        await asyncio.gather(*(other.closer().close_due() for other in others))
        await others[0].closer().close_due()
    [closed] = await worker.closed.listed("cup")
    assert (closed.number, closed.started_at, closed.ended_at, closed.entries) == (1, T1, T2, 3)
    page = await worker.closed.page(CUP, 1, 0, 10)
    assert page is not None
    assert [(row.user_id, row.score) for row in page.entries] == [
        ("bob", 9),
        ("ann", 8),
        ("cid", 7),
    ]
    assert (await others[0].seasons.current("cup")).number == 2
    assert "Redis lost which of its accepted updates" in caplog.text
    assert caplog.text.count("rebuilt board cup season 1 from the ledger") == 1


async def test_a_late_update_of_an_archived_season_stays_in_the_ledger_alone(
    worker, client, namespace
):
    await worker.apply(1, ("ann", 5))
    assert await worker.seasons.move("cup", 1, T2, T2) is not None
    await worker.closer().close_due()
    assert [season.number for season in await worker.closed.listed("cup")] == [1]

    late = ScoreUpdate.new("bob", "Bob", 9, board=CUP, season=1)
    archived = worker.store.for_board(CUP, 1)
    with pytest.raises(BoardOutOfSync):
        await archived.apply([late])
    with pytest.raises(SeasonClosed):
        await ensure_board_matches_ledger(worker.ledger, archived, worker.seasons)
    prefix = season_prefix(f"{namespace}:", "cup", 1)
    assert [key async for key in client.scan_iter(match=f"{prefix}*")] == []


async def test_of_workers_finding_a_live_season_lost_one_rebuilds_it_and_says_so(
    worker, ledger, client, namespace
):
    await worker.apply(1, ("ann", 5), ("bob", 9))
    remove_keys(f"{namespace}:")
    stores = [Worker(ledger, client, namespace) for _ in range(3)]
    rebuilt = await asyncio.gather(
        *(
            ensure_board_matches_ledger(ledger, other.store.for_board(CUP, 1), other.seasons)
            for other in stores
        )
    )
    [board] = [board for board in rebuilt if board is not None]
    assert (board.board_id, board.season) == ("cup", 1)
    assert [(entry.user_id, entry.score) for entry in board.top] == [("bob", 9), ("ann", 5)]


async def test_a_season_redis_kept_before_the_ledger_did_is_taken_over_not_wiped(
    worker, ledger, client, namespace
):
    # Applied while the deployment had no DATABASE_URL: Redis holds it, the ledger does not.
    unmarked = RedisLeaderboardStore(client, f"{namespace}:").for_board(CUP, 1)
    await client.delete(f"{season_prefix(f'{namespace}:', 'cup', 1)}ledger-synced")
    await unmarked.apply(
        [ScoreUpdate.new(u, u.title(), v, board=CUP) for u, v in (("a", 3), ("b", 8))]
    )
    before = [(s.user_id, s.score) for s in await unmarked.standings()]

    rebuilt = await ensure_board_matches_ledger(
        ledger, worker.store.for_board(CUP, 1), worker.seasons
    )
    assert rebuilt is not None and [(e.user_id, e.score) for e in rebuilt.top] == before
    assert sorted((s.user_id, s.score) for s in await ledger.standings("cup", 1)) == [
        ("a", 3),
        ("b", 8),
    ]


async def test_a_post_that_finds_the_season_lost_counts_once_against_the_rate_limit(
    aiohttp_client, env, namespace, database_url, ledger
):
    """The web node restores the lost season number and admits the post again: the first try
    must not use up the user's allowance, or a user allowed one post would be refused it."""
    settings = Settings.from_env({**env, "DATABASE_URL": database_url, "RATE_LIMIT": "1/minute"})
    api = await aiohttp_client(create_app(settings))
    assert (await put(api, "cup", {"name": "Cup", "operator": "best"}))[0] == 201
    remove_keys(f"{namespace}:")

    await post_score(api, "cup", "ann", 7)  # 200, not 429
    [update] = [u for u in await queued(namespace) if u.board_id == "cup"]
    assert update.increment == 7
