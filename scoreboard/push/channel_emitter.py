"""Publishing a push: on its board's channel, and on the shared one while older web nodes listen."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

import orjson
import redis.asyncio as redis
import socketio

from scoreboard.push.broadcast import LEADERBOARD_EVENT, room_board
from scoreboard.push.channels import PushChannels
from scoreboard.push.socketio_internals import close_emitter
from scoreboard.redis_errors import redis_errors_as_unavailable

log = logging.getLogger(__name__)

# How long a publisher trusts its last count of the shared channel's listeners. A web node of
# the older version starting during a rolling upgrade misses the pushes of at most this long.
OLDER_NODES_CHECK_SECONDS = 1.0


class OlderNodes:
    """Whether a web node that hears only the shared channel listens (one of an older version)."""

    def __init__(
        self,
        client: redis.Redis,
        channels: PushChannels,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._client = client
        self._channels = channels
        self._clock = clock
        self._checked_at: float | None = None
        self._present = True

    async def present(self) -> bool:
        now = self._clock()
        if self._checked_at is not None and now - self._checked_at < OLDER_NODES_CHECK_SECONDS:
            return self._present
        counts = dict(
            await self._client.pubsub_numsub(self._channels.shared, self._channels.marker)
        )
        shared = int(counts.get(self._channels.shared.encode(), 0))
        marker = int(counts.get(self._channels.marker.encode(), 0))
        present = shared > marker
        if present and (self._checked_at is None or not self._present):
            log.info(
                "a web node of an older version listens on %s alone: pushes go there too",
                self._channels.shared,
            )
        elif not present and self._checked_at is not None and self._present:
            log.info("no web node of an older version listens any more: pushes go per board")
        self._present = present
        self._checked_at = now
        return self._present


class ChannelEmitter:
    """An Emitter sending each board's `leaderboardUpdate` on that board's channel (its payload
    as JSON), and through python-socketio on the shared channel too while older nodes listen.

    Anything else (nothing in this service today) goes through python-socketio as before.
    """

    def __init__(
        self, client: redis.Redis, channels: PushChannels, shared: socketio.AsyncRedisManager
    ) -> None:
        self._client = client
        self._channels = channels
        self._shared = shared
        self._older = OlderNodes(client, channels)

    async def emit(
        self, event: str, data: Any, namespace: str | None = None, **options: Any
    ) -> None:
        board_id = room_board(options.get("room", options.get("to")))
        if board_id is None or event != LEADERBOARD_EVENT:
            await self._shared.emit(event, data, namespace=namespace, **options)
            return
        async with redis_errors_as_unavailable():
            await self._client.publish(self._channels.board(board_id), orjson.dumps(data))
            older = await self._older.present()
        if older:
            await self._shared.emit(event, data, namespace=namespace, **options)

    async def close(self) -> None:
        """Close python-socketio's connection to the shared channel, if it opened one."""
        await close_emitter(self._shared)


def channel_emitter(client: redis.Redis, redis_url: str, channels: PushChannels) -> ChannelEmitter:
    """The emitter of a process that pushes (a worker, a web node, a command) to every node."""
    shared = socketio.AsyncRedisManager(redis_url, channel=channels.shared, write_only=True)
    return ChannelEmitter(client, channels, shared)
