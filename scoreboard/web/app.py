"""The application factory: one aiohttp app with the REST API and the Socket.IO server."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from functools import partial

import orjson
import redis.asyncio as redis
import socketio
from aiohttp import web

from scoreboard.api.asyncapi import asyncapi_document
from scoreboard.api.endpoints import MAX_BODY_BYTES, MAX_SOCKET_MESSAGE_BYTES, SOCKETIO_PATH
from scoreboard.api.openapi import openapi_document
from scoreboard.apply.apply_loop import ApplyStats, apply_batches
from scoreboard.apply.ledger.boards import LedgerBoardStorage
from scoreboard.apply.ledger.closed_seasons import PostgresClosedSeasons
from scoreboard.apply.ledger.postgres import PostgresLedger
from scoreboard.apply.ledger.seasons import LedgerSeasons
from scoreboard.apply.store.memory_store import MemoryLeaderboardStore
from scoreboard.apply.store.redis_store import RedisLeaderboardStore
from scoreboard.boards.closed_seasons import MemoryClosedSeasons, RedisClosedSeasons
from scoreboard.boards.contents import MemoryBoardContents, RedisBoardContents
from scoreboard.boards.registry import BoardRegistry, MemoryBoardStorage, RedisBoardStorage
from scoreboard.boards.season_closer import SeasonCloser
from scoreboard.boards.seasons import MemorySeasons, RedisSeasons
from scoreboard.config import Settings
from scoreboard.intake.admission import InFlightLimit
from scoreboard.intake.auth import TokenVerifier
from scoreboard.intake.idempotency import MemoryIdempotencyRecords, RedisIdempotencyRecords
from scoreboard.intake.rate_limit import UserRateLimiter, rate_limit_storage
from scoreboard.intake.rate_policy import MemoryOverrideStore, RatePolicy, RedisOverrideStore
from scoreboard.intake.submission import ScoreSubmission
from scoreboard.models import Leaderboard
from scoreboard.ops.metrics import MeasuredEmitter
from scoreboard.ops.request_tracking import track_requests
from scoreboard.ops.routes import add_operations
from scoreboard.push import socketio_internals
from scoreboard.push.board_listener import BoardChannelListener, EveryBoard
from scoreboard.push.board_tops import BoardTops
from scoreboard.push.broadcast import Broadcaster
from scoreboard.push.channel_emitter import ChannelEmitter, channel_emitter
from scoreboard.push.channels import PushChannels
from scoreboard.push.coalescing import CoalescingBroadcaster, LocalEmitSlot, paced
from scoreboard.push.fan_out import FanOut
from scoreboard.push.open_websockets import close_websockets_on_shutdown
from scoreboard.push.polling_guard import polling_guard
from scoreboard.push.socket_events import register_socket_events
from scoreboard.queue.in_process import InProcessQueue
from scoreboard.queue.queue_layout import QueueLayout
from scoreboard.queue.rabbitmq import RabbitPublisher
from scoreboard.queue.signing import message_signer
from scoreboard.redis_connection import redis_client
from scoreboard.web.demo import issue_demo_token
from scoreboard.web.keys import (
    ASYNCAPI_DOCUMENT,
    BOARD_CHANNELS,
    BOARD_CONTENTS,
    BOARD_TOPS,
    BOARDS,
    CLOSED_SEASONS,
    DEMO_TOKEN,
    FAN_OUT,
    FATAL,
    IN_FLIGHT,
    LEDGER,
    METRICS,
    OPENAPI_DOCUMENT,
    PUBLISHER,
    PUSHES,
    RATE_POLICY,
    READ_RATE_LIMITER,
    REDIS,
    SEASONS,
    SETTINGS,
    SOCKETIO,
    STORE,
    SUBMISSION,
    VERIFIER,
)
from scoreboard.web.listeners import split_ports
from scoreboard.web.middlewares import error_middleware
from scoreboard.web.routes import add_routes
from scoreboard.web.security import require_https, same_origin, security_headers
from scoreboard.web.server_header import hide_server_software

log = logging.getLogger(__name__)


def create_app(settings: Settings) -> web.Application:
    """Build the web application; connections open on start-up and close on clean-up."""
    # Outermost first: the security headers go on every response, errors and refusals included;
    # track_requests outside them all, so it counts and logs each request as finally answered.
    # split_ports before require_https: a route a port does not serve is 404 over any scheme.
    app = web.Application(
        middlewares=[
            track_requests,
            security_headers,
            error_middleware,
            split_ports,
            require_https,
            polling_guard(SOCKETIO_PATH),
        ],
        client_max_size=MAX_BODY_BYTES,
        # Bodies are decompressed by intake/request_body.py, bounded and checked whole.
        handler_args={"auto_decompress": False},
    )
    app[SETTINGS] = settings
    app.on_response_prepare.append(hide_server_software)
    app[VERIFIER] = TokenVerifier.from_settings(settings)
    client = redis_client(settings.redis_url, settings) if settings.redis_url is not None else None
    overrides = (
        MemoryOverrideStore()
        if client is None
        else RedisOverrideStore(client, settings.redis_key_prefix)
    )
    if client is None:
        in_memory = MemoryLeaderboardStore()  # the in-process worker applies to it
        app[STORE] = in_memory
        app[BOARDS] = BoardRegistry(MemoryBoardStorage())
        app[SEASONS] = MemorySeasons(in_memory)
        app[CLOSED_SEASONS] = MemoryClosedSeasons(in_memory)
        app[BOARD_CONTENTS] = MemoryBoardContents(in_memory)
    else:
        app[BOARDS] = BoardRegistry(RedisBoardStorage(client, settings.redis_key_prefix))
        app[SEASONS] = RedisSeasons(client, settings.redis_key_prefix)
        app[BOARD_CONTENTS] = RedisBoardContents(client, settings.redis_key_prefix)
    app[RATE_POLICY] = RatePolicy(settings.rate_limit, dict(settings.tier_rate_limits), overrides)
    app[READ_RATE_LIMITER] = UserRateLimiter(
        rate_limit_storage(client, settings.redis_key_prefix),
        settings.read_rate_limit,
        scope="read",
    )
    demo_token = issue_demo_token(settings)
    if demo_token is not None:
        app[DEMO_TOKEN] = demo_token
    fan_out = FanOut(settings.fan_out_frames_per_second)
    sio = socketio.AsyncServer(
        async_mode="aiohttp",
        client_manager=socketio_internals.client_manager(
            fan_out,
            settings.redis_url,
            settings.socketio_channel,
            heard=lambda board_id: app[METRICS].count_push_received(board_id, "shared"),
        ),
        cors_allowed_origins=list(settings.cors_allowed_origins) or same_origin,
        max_http_buffer_size=MAX_SOCKET_MESSAGE_BYTES,
    )
    app[FAN_OUT] = fan_out
    sio.attach(app, socketio_path=SOCKETIO_PATH)
    app[SOCKETIO] = sio
    app[BOARD_TOPS] = BoardTops(lambda: app[STORE].leaderboard(), partial(_board_top, app))
    if client is None or settings.redis_url is None:
        app[PUSHES] = sio
        app[BOARD_CHANNELS] = EveryBoard()
    else:
        channels = PushChannels(settings.socketio_channel)
        app[PUSHES] = channel_emitter(client, settings.redis_url, channels)
        here = Broadcaster(sio)
        app[BOARD_CHANNELS] = BoardChannelListener(
            client,
            channels,
            here.deliver_here,
            partial(_catch_up, app),
            lambda board_id: app[METRICS].count_push_received(board_id, "board"),
        )
    register_socket_events(sio, app)
    add_routes(app)
    app[OPENAPI_DOCUMENT] = orjson.dumps(openapi_document(settings))
    app[ASYNCAPI_DOCUMENT] = orjson.dumps(asyncapi_document())
    add_operations(app)
    app[IN_FLIGHT] = InFlightLimit(settings.max_updates_in_flight, app[METRICS].updates_shed)
    app[METRICS].count_socket_messages(fan_out.counts)
    app[METRICS].watch_fan_out(lambda: fan_out.direct is not None, fan_out.error_counts)

    if client is not None:
        app[REDIS] = client
        app[STORE] = redis_store = RedisLeaderboardStore(
            client,
            settings.redis_key_prefix,
            ledger_backed=settings.keeps_ledger,
            observe_group=app[METRICS].group_size.labels("reserve").observe,
            group_wait_seconds=settings.group_commit_wait_ms / 1000,
        )
        app.cleanup_ctx.append(partial(_redis_and_rabbitmq, client))
        if settings.keeps_ledger:
            app.cleanup_ctx.append(_ledger)
        else:
            app[CLOSED_SEASONS] = RedisClosedSeasons(client, settings.redis_key_prefix, redis_store)
    else:
        app.cleanup_ctx.append(_in_process_queue_and_worker)
    app.cleanup_ctx.append(_socketio_manager)
    if client is not None:
        app.cleanup_ctx.append(_board_channels)  # before the Redis client closes
    app.on_shutdown.append(_disconnect_socket_clients)
    close_websockets_on_shutdown(app)  # after the Engine.IO close above: then the transports
    return app


async def _board_top(app: web.Application, board_id: str) -> Leaderboard | None:
    """The live season's top of a board, for a client's snapshot; None for no such board."""
    board = await app[BOARDS].get(board_id)
    if board is None:
        return None
    season = await app[SEASONS].current(board_id)
    return await app[STORE].for_board(board, season.number).leaderboard()


async def _catch_up(app: web.Application, board_id: str) -> None:
    """Hand this node's clients of `board_id` its current top 10 (after a reconnection)."""
    board = await app[BOARD_TOPS].top(board_id)
    broadcaster = Broadcaster(app[SOCKETIO])
    await broadcaster.deliver_here(board_id, broadcaster.payload(board))


async def _board_channels(app: web.Application) -> AsyncIterator[None]:
    listener, pushes = app[BOARD_CHANNELS], app[PUSHES]
    assert isinstance(listener, BoardChannelListener) and isinstance(pushes, ChannelEmitter)
    await listener.start()
    yield
    await listener.stop()
    await pushes.close()


async def _ledger(app: web.Application) -> AsyncIterator[None]:
    url = app[SETTINGS].database_url
    assert url is not None
    # No connection until the first history request: the web node must not need PostgreSQL up.
    ledger = await PostgresLedger.connect(url, min_connections=0)
    app[LEDGER] = ledger
    store = app[STORE]
    assert isinstance(store, RedisLeaderboardStore)
    client, prefix = app[REDIS], app[SETTINGS].redis_key_prefix
    app[CLOSED_SEASONS] = PostgresClosedSeasons(ledger, client, prefix, store)
    # What Redis may lose is kept in PostgreSQL too, and given back to Redis from there.
    app[SEASONS] = LedgerSeasons(ledger, RedisSeasons(client, prefix))
    app[BOARDS].keep_in(LedgerBoardStorage(ledger, RedisBoardStorage(client, prefix)))
    yield
    await ledger.close()


async def _redis_and_rabbitmq(client: redis.Redis, app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    signer = message_signer(settings)
    publisher = RabbitPublisher(settings.rabbitmq_urls, QueueLayout.of(settings), signer)
    await publisher.start()
    app[PUBLISHER] = publisher
    app[FATAL] = fatal = asyncio.get_running_loop().create_future()
    watching = asyncio.create_task(_stop_on_conflict(publisher, fatal))
    app[SUBMISSION] = ScoreSubmission(
        app[STORE],
        publisher,
        RedisIdempotencyRecords(client, settings.redis_key_prefix),
        app[METRICS],
        group_wait_seconds=settings.group_commit_wait_ms / 1000,
        restore_season=_season_restorer(app) if settings.keeps_ledger else None,
    )
    yield
    watching.cancel()
    await publisher.close()
    await client.aclose()


def _season_restorer(app: web.Application) -> Callable[[str], Awaitable[object]]:
    """Reading a board's live season restores its number if Redis lost it (LedgerSeasons)."""

    async def restore(board_id: str) -> None:
        await app[SEASONS].current(board_id)

    return restore


async def _stop_on_conflict(publisher: RabbitPublisher, fatal: asyncio.Future[None]) -> None:
    """A reconnection that finds the queues changed under us stops the node (serving.py)."""
    conflict = await publisher.conflict()
    if not fatal.done():
        fatal.set_exception(conflict)


async def _in_process_queue_and_worker(app: web.Application) -> AsyncIterator[None]:
    queue = InProcessQueue(batch_size=app[SETTINGS].worker_prefetch)
    store = app[STORE]
    assert isinstance(store, MemoryLeaderboardStore)
    app[PUBLISHER] = queue
    metrics = app[METRICS]
    app[SUBMISSION] = ScoreSubmission(store, queue, MemoryIdempotencyRecords(), metrics)
    stats = ApplyStats()
    metrics.count_dead_letters(lambda: stats.dead_lettered)
    broadcaster = paced(
        Broadcaster(MeasuredEmitter(app[SOCKETIO], metrics)),
        store.leaderboard,
        LocalEmitSlot(),
        app[SETTINGS].broadcast_hz,
    )
    worker = asyncio.create_task(apply_batches(queue, store, broadcaster, stats, metrics=metrics))
    closer = SeasonCloser(
        app[BOARDS],
        app[SEASONS],
        app[CLOSED_SEASONS],
        Broadcaster(app[SOCKETIO]),
        app[SETTINGS].closed_seasons_kept,
    )
    closing = asyncio.create_task(closer.run())
    yield
    closing.cancel()
    await asyncio.gather(closing, return_exceptions=True)
    await queue.stop()
    await worker
    if isinstance(broadcaster, CoalescingBroadcaster):
        await broadcaster.close()
    log.info("in-process worker stopped: %s", stats.summary())


async def _disconnect_socket_clients(app: web.Application) -> None:
    """On SIGTERM, close every Socket.IO connection so its client reconnects to another node."""
    await socketio_internals.close_engine_sockets(app[SOCKETIO])


async def _socketio_manager(app: web.Application) -> AsyncIterator[None]:
    sio = app[SOCKETIO]
    await socketio_internals.start(sio, app[FAN_OUT])
    yield
    await app[FAN_OUT].close()
    await sio.shutdown()
    await socketio_internals.stop(sio)
