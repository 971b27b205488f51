"""`python -m bench dedup-memory`: Redis memory left after N updates through the real worker.

Publishes format-2 groups straight to RabbitMQ, runs worker.py on them, and once the board holds
every update (and the grace of forgotten ids has passed) prints Redis `used_memory` before and
after, the board's own size (`MEMORY USAGE` of its keys) and the deduplication keys left.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import aio_pika
import redis.asyncio as redis

from scoreboard.apply.store import FORGET_GRACE_SECONDS
from scoreboard.models import ScoreUpdate
from scoreboard.queue.queue_layout import QueueLayout
from scoreboard.queue.rabbitmq import RabbitPublisher

BOARD_KEYS = ("board", "members", "names", "accepted", "seq", "version", "top")
IN_FLIGHT_PUBLISHES = 64


def add_parser(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "dedup-memory", help="Redis memory after N updates through the worker, against the board"
    )
    parser.add_argument("--updates", type=int, default=1_000_000)
    parser.add_argument("--users", type=int, default=1000)
    parser.add_argument("--group", type=int, default=100, help="updates per message")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--rabbitmq-url", default="amqp://guest:guest@127.0.0.1:5672/")
    parser.set_defaults(run=lambda args: asyncio.run(run(args)))


async def run(args: argparse.Namespace) -> dict[str, float]:
    name = f"bench-dedup-{uuid.uuid4().hex[:8]}"
    prefix = f"{name}:"
    client = redis.from_url(args.redis_url)
    worker: subprocess.Popen[bytes] | None = None
    try:
        before = await used_memory(client)
        publisher = RabbitPublisher((args.rabbitmq_url,), QueueLayout(name))
        await publisher.start()  # declares the queues before the worker starts
        worker = start_worker(args, name, prefix)
        started = time.monotonic()
        expected = await publish(publisher, args)
        await publisher.close()
        published = time.monotonic() - started
        peak = await until_applied(client, prefix, expected)
        applied = time.monotonic() - started
        await asyncio.sleep(FORGET_GRACE_SECONDS + 3)  # forgotten ids end after their grace
        after = await used_memory(client)
        board = 0
        for key in BOARD_KEYS:
            board += await client.memory_usage(prefix + key) or 0
        left = [key async for key in client.scan_iter(match=f"{prefix}msg:*", count=10_000)]
        figures = {
            "updates": args.updates,
            "users": args.users,
            "updates_per_message": args.group,
            "publish_seconds": round(published, 1),
            "applied_seconds": round(applied, 1),
            "updates_per_second": round(args.updates / applied),
            "used_memory_before_mb": mb(before),
            "used_memory_peak_during_mb": mb(peak),
            "used_memory_after_mb": mb(after),
            "growth_mb": mb(after - before),
            "board_mb": mb(board),
            "growth_beyond_board_mb": mb(after - before - board),
            "dedup_keys_left": len(left),
        }
    finally:
        if worker is not None:
            worker.send_signal(signal.SIGTERM)
            worker.wait(30)
        await remove(client, args.rabbitmq_url, name, prefix)
        await client.aclose()
    print(json.dumps(figures))
    return figures


def start_worker(args: argparse.Namespace, name: str, prefix: str) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "REDIS_URL": args.redis_url,
        "RABBITMQ_URL": args.rabbitmq_url,
        "QUEUE_NAME": name,
        "REDIS_KEY_PREFIX": prefix,
        "JWT_SECRET": uuid.uuid4().hex * 2,
        "LOG_LEVEL": "WARNING",
        "METRICS_PORT": "0",
    }
    root = Path(__file__).resolve().parent.parent
    return subprocess.Popen([sys.executable, str(root / "worker.py")], env=env)


async def publish(publisher: RabbitPublisher, args: argparse.Namespace) -> int:
    """Publish every update in groups, a few groups in flight; return the sum of increments."""
    total = 0
    in_flight: set[asyncio.Task[None]] = set()
    for start in range(0, args.updates, args.group):
        group = [
            ScoreUpdate.new(f"user{i % args.users}", f"Player {i % args.users}", 1 + i % 7)
            for i in range(start, min(start + args.group, args.updates))
        ]
        total += sum(update.increment for update in group)
        if len(in_flight) >= IN_FLIGHT_PUBLISHES:
            _, in_flight = await asyncio.wait(in_flight, return_when=asyncio.FIRST_COMPLETED)
        in_flight.add(asyncio.create_task(publisher.publish_group(group)))
    await asyncio.gather(*in_flight)
    return total


async def until_applied(client: redis.Redis, prefix: str, expected: int) -> int:
    """Wait until the board sums to `expected`; return the highest used_memory seen meanwhile."""
    peak = 0
    while True:
        peak = max(peak, await used_memory(client))
        scores = await client.zrange(f"{prefix}board", 0, -1, withscores=True)
        if -sum(score for _, score in scores) >= expected:
            return peak
        await asyncio.sleep(0.5)


async def used_memory(client: redis.Redis) -> int:
    return int((await client.info("memory"))["used_memory"])


def mb(size: int) -> float:
    return round(size / 1_000_000, 1)


async def remove(client: redis.Redis, rabbitmq_url: str, name: str, prefix: str) -> None:
    keys = [key async for key in client.scan_iter(match=f"{prefix}*", count=10_000)]
    for start in range(0, len(keys), 10_000):
        await client.unlink(*keys[start : start + 10_000])
    connection = await aio_pika.connect(rabbitmq_url)
    async with connection:
        channel = await connection.channel()
        for queue in (name, QueueLayout(name).dead_letter_queue):
            await channel.queue_delete(queue)
