"""The worker process: lifecycle from start-up to a graceful, summarised shutdown."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
import time
from collections.abc import Awaitable

import redis.asyncio as redis
import uvloop

from scoreboard.apply.apply_loop import ApplyStats, Ledgered, apply_batches
from scoreboard.apply.ledger.boards import LedgerBoardStorage
from scoreboard.apply.ledger.closed_seasons import PostgresClosedSeasons
from scoreboard.apply.ledger.postgres import PostgresLedger
from scoreboard.apply.ledger.rebuild import ensure_board_matches_ledger
from scoreboard.apply.ledger.seasons import LedgerSeasons
from scoreboard.apply.redeliveries import RedeliveryCounter
from scoreboard.apply.store.redis_store import RedisLeaderboardStore
from scoreboard.boards.closed_seasons import ClosedSeasons, RedisClosedSeasons
from scoreboard.boards.registry import BoardRegistry, BoardStorage, RedisBoardStorage
from scoreboard.boards.season_closer import SeasonCloser
from scoreboard.boards.seasons import RedisSeasons, Seasons
from scoreboard.config import Mode, Settings
from scoreboard.errors import ConfigError, QueueLayoutConflict
from scoreboard.ops.heartbeat import Heartbeat, WorkerBeat, WorkerIdentity, WorkerRegistry
from scoreboard.ops.logs import configure_logging
from scoreboard.ops.metrics import MeasuredEmitter, Metrics
from scoreboard.ops.readiness import ReadinessProbe
from scoreboard.ops.worker_port import WorkerPort
from scoreboard.ops.worker_readiness import CONSUMING, WorkerReadinessProbe
from scoreboard.push.broadcast import Broadcaster
from scoreboard.push.channel_emitter import channel_emitter
from scoreboard.push.channels import PushChannels
from scoreboard.push.coalescing import CoalescingBroadcaster, RedisEmitSlot, paced
from scoreboard.queue.queue_layout import QueueLayout
from scoreboard.queue.rabbitmq import RabbitConsumer
from scoreboard.queue.signing import message_signer
from scoreboard.redis_connection import redis_client
from scoreboard.retry import until_available

log = logging.getLogger("scoreboard.worker")

DRAIN_TIMEOUT_SECONDS = 20.0  # Heroku sends SIGKILL 30 s after SIGTERM


async def run_worker(settings: Settings) -> ApplyStats:
    """Consume until SIGTERM or SIGINT, then finish and acknowledge what is held."""
    assert settings.redis_url is not None and settings.rabbitmq_urls
    layout = QueueLayout.of(settings)
    client = redis_client(settings.redis_url, settings)
    store = RedisLeaderboardStore(
        client, settings.redis_key_prefix, ledger_backed=settings.keeps_ledger
    )
    emitter = channel_emitter(client, settings.redis_url, PushChannels(settings.socketio_channel))
    consumer = RabbitConsumer(
        settings.rabbitmq_urls, layout, settings.worker_prefetch, message_signer(settings)
    )
    stats = ApplyStats()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    metrics = Metrics()
    metrics.count_dead_letters(lambda: stats.dead_lettered + consumer.dead_lettered)
    identity = WorkerIdentity.of_this_process()
    state = "starting"
    ledgered: Ledgered | None = None

    def current_state() -> str:
        return "stopping" if stop.is_set() else state

    readiness = WorkerReadinessProbe(
        ReadinessProbe(client, None, lambda: ledgered.ledger if ledgered else None, None),
        lambda: consumer.connected,
        current_state,
    )
    # Up before start-up, which may wait long for the broker: alive, not ready, meanwhile.
    port = WorkerPort(metrics, readiness, settings.metrics_port, settings.metrics_token)
    await port.start()

    def describe() -> WorkerBeat:
        return WorkerBeat(
            worker_id=identity.worker_id,
            name=identity.name,
            pid=identity.pid,
            state=current_state(),
            started_at=identity.started_at,
            beat_at=time.time(),
            last_batch_at=stats.last_batch_at,
            updates=stats.updates,
            dead_lettered=stats.dead_lettered + consumer.dead_lettered,
        )

    heartbeat = Heartbeat(WorkerRegistry(client, settings.redis_key_prefix), describe)
    heartbeat.start()

    async def start_up() -> None:
        nonlocal ledgered
        if settings.database_url is not None:
            url = settings.database_url
            ledger = await until_available(lambda: PostgresLedger.connect(url, run_migrations=True))
            seasons = LedgerSeasons(ledger, RedisSeasons(client, settings.redis_key_prefix))
            ledgered = Ledgered(ledger, store, seasons)
            rebuilt = await until_available(lambda: ensure_board_matches_ledger(ledger, store))
            if rebuilt is not None:
                await broadcaster.broadcast_top10(rebuilt)
        await consumer.start()

    broadcaster = paced(
        Broadcaster(MeasuredEmitter(emitter, metrics)),
        store.leaderboard,
        RedisEmitSlot(client, settings.redis_key_prefix),
        settings.broadcast_hz,
    )
    conflicts: list[QueueLayoutConflict] = []

    async def stop_on_conflict() -> None:
        conflicts.append(await consumer.conflict())
        stop.set()

    watching = asyncio.create_task(stop_on_conflict())
    try:
        started = await _first_or_stop(start_up(), stop)
    except QueueLayoutConflict as exc:
        conflicts.append(exc)
        started = False
    if started:
        log.info(
            "worker consuming %s queue %r (prefetch %d%s)",
            settings.queue_type,
            settings.queue_name,
            settings.worker_prefetch,
            ", ledger in PostgreSQL" if ledgered else "",
        )
        state = CONSUMING
        heartbeat.refresh()
        # Quorum queues count redeliveries themselves (x-delivery-limit); classic ones do not.
        redeliveries = (
            None
            if layout.broker_counts_deliveries
            else RedeliveryCounter(client, settings.redis_key_prefix, settings.queue_delivery_limit)
        )
        applying = asyncio.create_task(
            apply_batches(consumer, store, broadcaster, stats, redeliveries, ledgered, metrics)
        )
        # A season change is rare and must reach every subscriber: pushed as it is, not paced.
        season_pushes = Broadcaster(MeasuredEmitter(emitter, metrics))
        closing = asyncio.create_task(
            _season_closer(settings, client, store, ledgered, season_pushes).run()
        )
        await _first_or_stop(asyncio.shield(applying), stop)
        closing.cancel()
        await consumer.stop()
        try:
            await asyncio.wait_for(applying, DRAIN_TIMEOUT_SECONDS)
        except TimeoutError:
            log.warning("drain timed out; unacknowledged messages return to the queue")
        await asyncio.gather(closing, return_exceptions=True)
    watching.cancel()
    if isinstance(broadcaster, CoalescingBroadcaster):
        await broadcaster.close()  # the last change reaches clients before the worker goes
    await consumer.close()
    if ledgered is not None:
        await ledgered.ledger.close()
    await heartbeat.stop()
    await port.stop()
    await readiness.close()
    await client.aclose()
    await emitter.close()
    stats.dead_lettered += consumer.dead_lettered
    if conflicts:
        raise conflicts[0]
    log.info("worker stopped: %s", stats.summary())
    return stats


def _season_closer(
    settings: Settings,
    client: redis.Redis,
    store: RedisLeaderboardStore,
    ledgered: Ledgered | None,
    pushes: Broadcaster,
) -> SeasonCloser:
    prefix = settings.redis_key_prefix
    storage: BoardStorage = RedisBoardStorage(client, prefix)
    seasons: Seasons = RedisSeasons(client, prefix)
    closed: ClosedSeasons = RedisClosedSeasons(client, prefix, store)
    if ledgered is not None:
        storage = LedgerBoardStorage(ledgered.ledger, RedisBoardStorage(client, prefix))
        seasons = ledgered.seasons
        closed = PostgresClosedSeasons(ledgered.ledger, client, prefix, store)
    registry = BoardRegistry(storage)
    return SeasonCloser(registry, seasons, closed, pushes, settings.closed_seasons_kept)


async def _first_or_stop(work: Awaitable[None], stop: asyncio.Event) -> bool:
    """Run `work` until it ends (True) or `stop` is set first (False, work cancelled)."""
    task = asyncio.ensure_future(work)
    stopping = asyncio.create_task(stop.wait())
    await asyncio.wait({task, stopping}, return_when=asyncio.FIRST_COMPLETED)
    stopping.cancel()
    if task.done():
        task.result()
        return True
    task.cancel()
    return False


def main() -> None:
    try:
        settings = Settings.from_env()
    except ConfigError as exc:
        sys.exit(f"configuration error: {exc}")
    configure_logging(settings.log_level, settings.log_format)
    if settings.mode is Mode.SINGLE_PROCESS:
        sys.exit(
            "worker.py needs REDIS_URL and RABBITMQ_URL; without them `python server.py` "
            "runs the worker loop in its own process"
        )
    try:
        uvloop.run(run_worker(settings))
    except QueueLayoutConflict as exc:
        log.critical("worker stopping: %s", exc)
        sys.exit(os.EX_CONFIG)
