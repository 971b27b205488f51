"""`migrate` and `rebuild`: the PostgreSQL ledger's schema, and a board restored from it."""

from __future__ import annotations

import argparse
import asyncio
import sys

import asyncpg

from scoreboard.apply.ledger.boards import LedgerBoardStorage
from scoreboard.apply.ledger.migrations import migrate
from scoreboard.apply.ledger.postgres import PostgresLedger
from scoreboard.apply.ledger.rebuild import rebuild_board
from scoreboard.apply.ledger.seasons import LedgerSeasons
from scoreboard.apply.store.redis_store import RedisLeaderboardStore
from scoreboard.boards.model import GLOBAL_BOARD_ID
from scoreboard.boards.registry import BoardRegistry, RedisBoardStorage
from scoreboard.boards.seasons import RedisSeasons
from scoreboard.config import Settings
from scoreboard.errors import ServiceUnavailable
from scoreboard.push.broadcast import Broadcaster
from scoreboard.push.channel_emitter import channel_emitter
from scoreboard.push.channels import PushChannels
from scoreboard.redis_connection import redis_client


def add_parsers(commands: argparse._SubParsersAction) -> None:
    commands.add_parser(
        "migrate",
        help="apply the ledger's schema migrations to DATABASE_URL (none: nothing to do)",
    ).set_defaults(run=run_migrate)
    rebuild = commands.add_parser(
        "rebuild", help="restore a Redis board's season exactly from the ledger"
    )
    rebuild.add_argument(
        "--board",
        default=GLOBAL_BOARD_ID,
        help="the board to restore (default: global); its live season is also broadcast",
    )
    rebuild.add_argument("--season", type=int, default=1, help="its season (default: 1)")
    rebuild.set_defaults(run=run_rebuild)


def run_migrate(args: argparse.Namespace, settings: Settings) -> int:
    if settings.database_url is None:
        # Success: a release phase (Procfile) runs this on deployments that keep no ledger too.
        print("DATABASE_URL is not set: there is no ledger to migrate")
        return 0
    applied = asyncio.run(_migrate(settings.database_url))
    print(f"applied {len(applied)} migration(s)" + "".join(f"\n  {name}" for name in applied))
    return 0


async def _migrate(url: str) -> list[str]:
    connection = await asyncpg.connect(url)
    try:
        return await migrate(connection)
    finally:
        await connection.close()


def run_rebuild(args: argparse.Namespace, settings: Settings) -> int:
    if not settings.keeps_ledger:
        print("rebuild needs DATABASE_URL, REDIS_URL and RABBITMQ_URL", file=sys.stderr)
        return 2
    if args.season < 1 or (args.board == GLOBAL_BOARD_ID and args.season != 1):
        print(f"board {args.board!r} has no season {args.season}", file=sys.stderr)
        return 2
    try:
        return asyncio.run(_rebuild(settings, args.board, args.season))
    except ServiceUnavailable as exc:
        print(exc.message, file=sys.stderr)
        return 1


async def _rebuild(settings: Settings, board_id: str, season: int) -> int:
    assert settings.database_url is not None and settings.redis_url is not None
    ledger = await PostgresLedger.connect(settings.database_url, run_migrations=True)
    client = redis_client(settings.redis_url, settings)
    emitter = channel_emitter(client, settings.redis_url, PushChannels(settings.socketio_channel))
    prefix = settings.redis_key_prefix
    try:
        store = RedisLeaderboardStore(client, prefix, ledger_backed=True)
        live = season
        if board_id != GLOBAL_BOARD_ID:
            # Through the ledger: a Redis that lost the boards gets them back first.
            storage = LedgerBoardStorage(ledger, RedisBoardStorage(client, prefix))
            board = await BoardRegistry(storage).get(board_id)
            if board is None:
                print(f"this deployment has no board {board_id!r}", file=sys.stderr)
                return 2
            store = store.for_board(board, season)
            live = (
                await LedgerSeasons(ledger, RedisSeasons(client, prefix)).current(board_id)
            ).number
        async with store.rebuild_lock():
            report = await rebuild_board(ledger, store)
        if season == live:  # the subscribers of an ended season watch the live one
            await Broadcaster(emitter).broadcast_top10(report.board)
    finally:
        await ledger.close()
        await emitter.close()
        await client.aclose()
    on = "" if board_id == GLOBAL_BOARD_ID else f" on board {board_id!r} season {season}"
    print(
        f"rebuilt {report.users} users{on} from the ledger in {report.seconds:.2f}s "
        f"(version {report.board.version}, {report.remembered_messages} message ids remembered)"
    )
    return 0
