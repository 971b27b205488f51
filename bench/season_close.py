"""`python -m bench season-close`: time the close of a board of N users while updates flow to it.

Fills a scratch board, then closes its season at its boundary (the season closer's pass, with
its clock set there) while senders keep accepting and applying updates as web and worker do.
Reports how long the move and the archive took, how many updates were accepted meanwhile, the
slowest acceptance, and whether every update counted in the season it was accepted in.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import time
import uuid
from datetime import UTC, datetime

import asyncpg
import redis.asyncio as redis

from scoreboard.apply.ledger.closed_seasons import PostgresClosedSeasons
from scoreboard.apply.ledger.postgres import PostgresLedger
from scoreboard.apply.store.redis_store import RedisLeaderboardStore
from scoreboard.boards.closed_seasons import ClosedSeasons, RedisClosedSeasons
from scoreboard.boards.model import Board
from scoreboard.boards.registry import BoardRegistry, RedisBoardStorage
from scoreboard.boards.season_closer import SeasonCloser
from scoreboard.boards.seasons import RedisSeasons
from scoreboard.config import MAX_SAFE_INTEGER
from scoreboard.models import Leaderboard, ScoreUpdate

BATCH = 1000
SENDERS = 8
BOARD = Board("bench-daily", "Bench", reset="daily")
STARTED = datetime(2024, 5, 1, 9, tzinfo=UTC)
BOUNDARY = datetime(2024, 5, 2, tzinfo=UTC)


def add_parser(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "season-close", help="time the close of a board of N users while updates keep flowing"
    )
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/0")
    parser.add_argument(
        "--database-url", default=None, help="keep closed seasons in PostgreSQL (else in Redis)"
    )
    parser.set_defaults(run=lambda args: asyncio.run(run(args)))


class _NoPushes:
    async def broadcast_top10(self, board: Leaderboard) -> None:
        pass


@dataclasses.dataclass
class _Flow:
    """Updates accepted while the season closes: how many, how slow, in which season."""

    accepted: int = 0
    slowest: float = 0.0
    per_season: dict[int, int] = dataclasses.field(default_factory=dict)


async def _send(
    store: RedisLeaderboardStore, flow: _Flow, sender: int, stop: asyncio.Event
) -> None:
    """Accept then apply updates of new users, as a web node and a worker would."""
    n = 0
    while not stop.is_set():
        update = ScoreUpdate.new(f"flow{sender}-{n}", "Flow", 1, board=BOARD)
        started = time.monotonic()
        _, season, order = await store.for_board(BOARD).admit(update, MAX_SAFE_INTEGER)
        flow.slowest = max(flow.slowest, time.monotonic() - started)
        flow.accepted += 1
        flow.per_season[season] = flow.per_season.get(season, 0) + 1
        accepted = dataclasses.replace(update, season=season, accepted_seq=order)
        await store.for_board(BOARD, season).apply([accepted])
        n += 1


async def run(args: argparse.Namespace) -> dict[str, object]:
    name = f"bench_{uuid.uuid4().hex[:8]}"
    prefix = f"{name}:"
    client = redis.from_url(args.redis_url)
    store = RedisLeaderboardStore(client, prefix)
    admin = ledger = None
    closed: ClosedSeasons = RedisClosedSeasons(client, prefix, store)
    if args.database_url is not None:
        admin = await asyncpg.connect(args.database_url)
        await admin.execute(f'CREATE SCHEMA "{name}"')
        separator = "&" if "?" in args.database_url else "?"
        url = f"{args.database_url}{separator}search_path={name}"
        ledger = await PostgresLedger.connect(url, run_migrations=True)
        closed = PostgresClosedSeasons(ledger, client, prefix, store)
    registry = BoardRegistry(RedisBoardStorage(client, prefix))
    seasons = RedisSeasons(client, prefix)
    now = STARTED
    closer = SeasonCloser(registry, seasons, closed, _NoPushes(), 12, clock=lambda: now)
    try:
        await registry.put(BOARD)
        await seasons.create(BOARD.board_id, STARTED)
        live = store.for_board(BOARD, 1)
        for start in range(0, args.users, BATCH):
            count = min(BATCH, args.users - start)
            await live.apply(
                [
                    ScoreUpdate.new(
                        f"user{start + i}", "Player", 1 + (start + i) % 997, board=BOARD
                    )
                    for i in range(count)
                ]
            )
        flow, stop = _Flow(), asyncio.Event()
        senders = [asyncio.create_task(_send(store, flow, i, stop)) for i in range(SENDERS)]
        await asyncio.sleep(0.5)  # the flow is steady before the boundary
        before = flow.accepted
        now = BOUNDARY
        started = time.monotonic()
        await closer.move_due()
        moved = time.monotonic() - started
        await closer.archive(BOARD)
        closed_in = time.monotonic() - started
        during = flow.accepted - before
        await asyncio.sleep(0.5)  # and keeps flowing after it
        stop.set()
        await asyncio.gather(*senders)
        [season] = await closed.listed(BOARD.board_id)
        new_season = await store.for_board(BOARD, 2).board_page(0, 1)
        figures: dict[str, object] = {
            "users": args.users,
            "archive": "postgresql" if ledger is not None else "redis",
            "move_seconds": round(moved, 4),
            "close_seconds": round(closed_in, 3),
            "updates_accepted_during_close": during,
            "slowest_acceptance_seconds": round(flow.slowest, 4),
            "closed_season_entries": season.entries,
            "every_update_in_its_season": (
                season.entries == args.users + flow.per_season.get(1, 0)
                and new_season.total == flow.per_season.get(2, 0)
            ),
        }
    finally:
        if ledger is not None and admin is not None:
            await ledger.close()
            await admin.execute(f'DROP SCHEMA "{name}" CASCADE')
            await admin.close()
        keys = [key async for key in client.scan_iter(match=f"{prefix}*", count=10_000)]
        for start in range(0, len(keys), 10_000):
            await client.delete(*keys[start : start + 10_000])
        await client.aclose()
    print(
        f"closed a season of {season.entries} users ({figures['archive']}) in "
        f"{closed_in:.3f}s (the move: {moved * 1000:.1f} ms); {during} updates accepted "
        f"meanwhile, the slowest in {flow.slowest * 1000:.1f} ms"
    )
    print(json.dumps(figures))
    return figures
