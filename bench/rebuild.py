"""`python -m bench rebuild`: time a rebuild of the Redis board from a ledger of N rows."""

from __future__ import annotations

import argparse
import asyncio
import json
import time
import uuid

import asyncpg
import redis.asyncio as redis

from scoreboard.apply.ledger.postgres import PostgresLedger
from scoreboard.apply.ledger.rebuild import rebuild_board
from scoreboard.apply.store.redis_store import RedisLeaderboardStore
from scoreboard.models import ScoreUpdate

BATCH = 1000


def add_parser(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser("rebuild", help="time a board rebuild from a ledger of N rows")
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--users", type=int, default=10_000)
    parser.add_argument("--database-url", default="postgresql://postgres@127.0.0.1:5432/test")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/0")
    parser.set_defaults(run=lambda args: asyncio.run(run(args)))


async def run(args: argparse.Namespace) -> dict[str, float]:
    """Fill a scratch schema and key prefix, rebuild, report, and remove both."""
    name = f"bench_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(args.database_url)
    await admin.execute(f'CREATE SCHEMA "{name}"')
    separator = "&" if "?" in args.database_url else "?"
    ledger = await PostgresLedger.connect(
        f"{args.database_url}{separator}search_path={name}", run_migrations=True
    )
    client = redis.from_url(args.redis_url)
    store = RedisLeaderboardStore(client, f"{name}:", ledger_backed=True)
    try:
        started = time.monotonic()
        for start in range(0, args.rows, BATCH):
            await ledger.record(
                [
                    ScoreUpdate.new(f"user{(start + i) % args.users}", "Player", 1 + i % 50)
                    for i in range(min(BATCH, args.rows - start))
                ]
            )
        recorded = time.monotonic() - started
        report = await rebuild_board(ledger, store)
        figures = {
            "ledger_rows": args.rows,
            "users": report.users,
            "record_rows_per_second": round(args.rows / recorded),
            "rebuild_seconds": round(report.seconds, 3),
        }
    finally:
        await ledger.close()
        await admin.execute(f'DROP SCHEMA "{name}" CASCADE')
        await admin.close()
        keys = [key async for key in client.scan_iter(match=f"{name}:*", count=10_000)]
        for start in range(0, len(keys), 10_000):
            await client.delete(*keys[start : start + 10_000])
        await client.aclose()
    print(f"recorded {args.rows} ledger rows at {figures['record_rows_per_second']}/s")
    print(f"rebuilt {report.users} users in {report.seconds:.3f}s")
    print(json.dumps(figures))
    return figures
