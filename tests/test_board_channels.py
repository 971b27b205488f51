"""Per-board channels: a web node hears only the boards its clients hold, and old and new
versions side by side lose no push (push/channels.py, board_listener.py, channel_emitter.py)."""

from __future__ import annotations

import asyncio
import shutil
import tempfile
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as redis
import socketio
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from scoreboard.api.endpoints import SOCKETIO_PATH
from scoreboard.boards.model import Board
from scoreboard.config import Settings
from scoreboard.models import Leaderboard, LeaderboardEntry
from scoreboard.push.board_listener import BoardChannelListener
from scoreboard.push.broadcast import Broadcaster, board_room
from scoreboard.push.channel_emitter import OLDER_NODES_CHECK_SECONDS, channel_emitter
from scoreboard.push.channels import PushChannels
from scoreboard.web.keys import BOARDS
from tests.conftest import REDIS_URL, TokenFactory
from tests.private_services import PrivateRedis
from tests.scrape import Scrape, eventually
from tests.test_end_to_end import EVENT_TIMEOUT_SECONDS, BoardWatcher
from tests.test_subscriptions import Chooser

QUIET_SECONDS = 0.3  # how long a listener is watched for a message it must not get


def board(board_id: str, version: int, score: int = 5) -> Leaderboard:
    return Leaderboard(version, (LeaderboardEntry("ann", "Ann", score),), board_id=board_id)


async def subscribers(channel: str, url: str = REDIS_URL) -> int:
    client = redis.from_url(url)
    try:
        [(_, count)] = await client.pubsub_numsub(channel)
        return int(count)
    finally:
        await client.aclose()


class Heard:
    """What a BoardChannelListener handed on: pushes by board, counts, and boards re-read."""

    def __init__(self) -> None:
        self.pushes: asyncio.Queue[tuple[str, dict[str, Any]]] = asyncio.Queue()
        self.counted: Counter[str] = Counter()
        self.caught_up: asyncio.Queue[str] = asyncio.Queue()

    async def deliver(self, board_id: str, payload: dict[str, Any]) -> None:
        self.pushes.put_nowait((board_id, payload))

    async def catch_up(self, board_id: str) -> None:
        self.caught_up.put_nowait(board_id)

    def count(self, board_id: str) -> None:
        self.counted[board_id] += 1

    async def next_push(self) -> tuple[str, dict[str, Any]]:
        return await asyncio.wait_for(self.pushes.get(), EVENT_TIMEOUT_SECONDS)

    async def nothing_more(self) -> None:
        await asyncio.sleep(QUIET_SECONDS)
        assert self.pushes.empty(), self.pushes.get_nowait()


@pytest.fixture
def channels(settings: Settings) -> PushChannels:
    return PushChannels(settings.socketio_channel)


@pytest.fixture
async def client() -> AsyncIterator[redis.Redis]:
    connection = redis.from_url(REDIS_URL)
    yield connection
    await connection.aclose()


async def listening(
    client: redis.Redis, channels: PushChannels, heard: Heard, linger: float
) -> BoardChannelListener:
    listener = BoardChannelListener(
        client, channels, heard.deliver, heard.catch_up, heard.count, linger=linger
    )
    await listener.start()
    return listener


async def test_a_board_is_heard_from_when_watched_until_no_one_has_watched_it_a_while(
    client: redis.Redis, channels: PushChannels
):
    heard = Heard()
    listener = await listening(client, channels, heard, linger=0.5)
    try:
        await listener.watch("weekly")
        # Redis has confirmed the subscription by the time watch returns.
        assert await subscribers(channels.board("weekly")) == 1
        await client.publish(channels.board("weekly"), b'{"version": 1}')
        await client.publish(channels.board("daily"), b'{"version": 1}')
        assert await heard.next_push() == ("weekly", {"version": 1})
        await heard.nothing_more()
        assert heard.counted == {"weekly": 1}

        listener.unwatch("weekly")
        await listener.watch("weekly")  # back within the linger: still subscribed
        listener.unwatch("weekly")
        await client.publish(channels.board("weekly"), b'{"version": 2}')
        assert await heard.next_push() == ("weekly", {"version": 2})

        async def unsubscribed() -> bool:
            return await subscribers(channels.board("weekly")) == 0

        await eventually(unsubscribed, "unsubscribed after the linger", timeout=5)
        await client.publish(channels.board("weekly"), b'{"version": 3}')
        await heard.nothing_more()
        assert listener.boards == set()
    finally:
        await listener.stop()


async def test_many_clients_arriving_at_once_share_one_subscription(
    client: redis.Redis, channels: PushChannels
):
    heard = Heard()
    listener = await listening(client, channels, heard, linger=60)
    try:
        await asyncio.gather(*(listener.watch(f"b{i % 3}") for i in range(30)))
        for index in range(3):
            assert await subscribers(channels.board(f"b{index}")) == 1
        assert listener.boards == {"b0", "b1", "b2"}
        for _ in range(29):
            listener.unwatch("b0")
        await client.publish(channels.board("b0"), b'{"version": 1}')
        assert await heard.next_push() == ("b0", {"version": 1})  # one client still holds it
    finally:
        await listener.stop()


@pytest.fixture
def private_redis() -> Iterator[PrivateRedis]:
    directory = Path(tempfile.mkdtemp(prefix="sbtest-redis-"))
    server = PrivateRedis(directory)
    server.start()
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(directory, ignore_errors=True)


async def test_after_redis_comes_back_every_watched_board_is_read_again_and_heard(
    channels: PushChannels, private_redis: PrivateRedis
):
    server = private_redis
    private = redis.from_url(server.url)
    heard = Heard()
    listener = await listening(private, channels, heard, linger=60)
    try:
        await listener.watch("weekly")
        await listener.watch("daily")
        server.stop()
        server.start()

        async def both_caught_up() -> bool:
            return heard.caught_up.qsize() >= 2

        # A push published while the node was not listening is not waited for: the board is
        # read again once Redis confirms its channel anew.
        await eventually(both_caught_up, "both boards read again", timeout=30)
        assert {heard.caught_up.get_nowait() for _ in range(2)} == {"weekly", "daily"}
        await private.publish(channels.board("weekly"), b'{"version": 7}')
        assert await heard.next_push() == ("weekly", {"version": 7})
    finally:
        await listener.stop()
        await private.aclose()


class SharedChannelWatch:
    """Sees what is published on the shared channel without counting as a subscriber of it
    (a pattern subscription), as Redis counts for PUBSUB NUMSUB."""

    def __init__(self, client: redis.Redis, channel: str) -> None:
        self._pubsub = client.pubsub(ignore_subscribe_messages=True)
        self._channel = channel

    async def __aenter__(self) -> SharedChannelWatch:
        await self._pubsub.psubscribe(self._channel)
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self._pubsub.aclose()

    async def messages(self) -> int:
        count = 0
        while await self._pubsub.get_message(timeout=QUIET_SECONDS) is not None:
            count += 1
        return count


async def test_pushes_go_on_the_shared_channel_too_only_while_an_older_web_node_listens_there(
    client: redis.Redis, channels: PushChannels
):
    emitter = channel_emitter(client, REDIS_URL, channels)
    pushes = Broadcaster(emitter)
    older = client.pubsub()  # a node of the older version: the shared channel alone
    newer = client.pubsub()  # a node of this version: the shared channel and the marker
    try:
        async with SharedChannelWatch(client, channels.shared) as shared:
            await pushes.broadcast_top10(board("weekly", 1))
            assert await shared.messages() == 0  # nobody listens there

            await older.subscribe(channels.shared)
            await asyncio.sleep(OLDER_NODES_CHECK_SECONDS)
            await pushes.broadcast_top10(board("weekly", 2))
            assert await shared.messages() == 1

            await newer.subscribe(channels.shared, channels.marker)
            await older.unsubscribe(channels.shared)
            await asyncio.sleep(OLDER_NODES_CHECK_SECONDS)
            await pushes.broadcast_top10(board("weekly", 3))
            assert await shared.messages() == 0
    finally:
        await older.aclose()
        await newer.aclose()
        await emitter.close()


@pytest.fixture
async def older_node(settings: Settings) -> AsyncIterator[str]:
    """A web node as the version before per-board channels ran it: python-socketio's
    AsyncRedisManager on the shared channel, each client in its board's room."""
    sio = socketio.AsyncServer(
        async_mode="aiohttp",
        client_manager=socketio.AsyncRedisManager(REDIS_URL, channel=settings.socketio_channel),
    )

    async def connect(sid: str, environ: dict[str, Any], auth: Any) -> None:
        for board_id in auth["boards"]:
            await sio.enter_room(sid, board_room(board_id))

    sio.on("connect", connect)
    app = web.Application()
    sio.attach(app, socketio_path=SOCKETIO_PATH)
    async with TestServer(app) as server:
        yield str(server.make_url(""))
        await sio.shutdown()
        # python-socketio's listener, started on the first connection, keeps no public handle.
        listeners = [
            task
            for task in asyncio.all_tasks()
            if task.get_coro().__qualname__.endswith("PubSubManager._thread")  # type: ignore[union-attr]
        ]
        for task in listeners:
            task.cancel()
        await asyncio.gather(*listeners, return_exceptions=True)
        manager: Any = sio.manager
        for connection in (manager.pubsub, manager.redis):
            if connection is not None:
                await connection.aclose()


async def test_an_older_web_node_still_gets_a_newer_workers_pushes_of_every_board(
    older_node: str, client: redis.Redis, channels: PushChannels
):
    watcher = BoardWatcher()
    await watcher.client.connect(
        older_node,
        auth={"boards": ["weekly"]},
        socketio_path=SOCKETIO_PATH,
        wait_timeout=EVENT_TIMEOUT_SECONDS,
    )
    emitter = channel_emitter(client, REDIS_URL, channels)
    try:

        async def listening() -> bool:
            return await subscribers(channels.shared) == 1

        await eventually(listening, "the older node listening")
        await Broadcaster(emitter).broadcast_top10(board("weekly", 1))
        update = await watcher.next_update()
        assert (update["boardId"], update["version"]) == ("weekly", 1)
    finally:
        await watcher.client.disconnect()
        await emitter.close()


async def test_a_web_node_hears_only_the_boards_its_clients_hold_and_counts_them(
    api: TestClient,
    client: redis.Redis,
    channels: PushChannels,
    make_token: TokenFactory,
):
    for board_id in ("weekly", "daily"):
        await api.app[BOARDS].put(Board(board_id, board_id.title()))
    chooser = Chooser()
    await chooser.connect_choosing(str(api.make_url("")), make_token("viewer"), ["weekly"])
    emitter = channel_emitter(client, REDIS_URL, channels)
    try:
        assert (await chooser.next_update())["version"] == 0  # the snapshot
        assert await subscribers(channels.board("weekly")) == 1
        assert await subscribers(channels.board("daily")) == 0
        pushes = Broadcaster(emitter)
        await pushes.broadcast_top10(board("daily", 1))
        await pushes.broadcast_top10(board("weekly", 1))
        update = await chooser.next_update()
        assert (update["boardId"], update["version"]) == ("weekly", 1)
        metrics = Scrape.parse(await (await api.get("/metrics")).text())
        received = "scoreboard_pushes_received_total"
        assert metrics.value(received, board="weekly", channel="board") == 1
        assert metrics.label_values(received, "board") == {"weekly"}
    finally:
        await chooser.client.disconnect()
        await emitter.close()


async def test_a_query_parameter_a_load_balancer_routes_on_changes_nothing_for_the_client(
    api: TestClient, client: redis.Redis, channels: PushChannels, make_token: TokenFactory
):
    await api.app[BOARDS].put(Board("weekly", "Weekly"))
    chooser = Chooser()
    url = f"{api.make_url('')}?board=weekly"  # what docs/scaling.md suggests hashing on
    await chooser.connect_choosing(url, make_token("viewer"), ["weekly"])
    emitter = channel_emitter(client, REDIS_URL, channels)
    try:
        assert (await chooser.next_update())["version"] == 0
        await Broadcaster(emitter).broadcast_top10(board("weekly", 1))
        assert (await chooser.next_update())["version"] == 1
    finally:
        await chooser.client.disconnect()
        await emitter.close()
