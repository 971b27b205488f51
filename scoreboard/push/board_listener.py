"""A web node's subscriptions to the channels of the boards its clients hold (push/channels.py).

- A board's channel is subscribed when the node's first client of it arrives, and that client
  gets its snapshot only once Redis has confirmed the subscription: a push published before then
  changed the board before the snapshot is read, so the client misses nothing.
- It is unsubscribed once no client of the node has held the board for `linger` seconds, so
  clients reconnecting or switching boards do not make the node subscribe over and over.
- Subscribing, unsubscribing and reading share one Redis connection (redis-py's PubSub), which
  redis-py reconnects and subscribes again. A board whose subscription Redis confirms again
  after a reconnection is read from the store and delivered: a push published while the node was
  not listening is not waited for until the board next changes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

import orjson
import redis.asyncio as redis

from scoreboard.push.channels import PushChannels
from scoreboard.redis_errors import TRANSIENT_REDIS_ERRORS

log = logging.getLogger(__name__)

# A client waits at most this long for its board's subscription before it gets its snapshot
# anyway (Redis is then down, and the snapshot too is skipped).
CONFIRM_TIMEOUT_SECONDS = 5.0
LINGER_SECONDS = 30.0
RETRY_FIRST_SECONDS = 0.1
RETRY_MAX_SECONDS = 5.0

Deliver = Callable[[str, dict[str, Any]], Awaitable[None]]  # (board id, payload)
CatchUp = Callable[[str], Awaitable[None]]  # board id: read its top 10 and deliver it


class BoardWatch(Protocol):
    """What a node's subscriptions tell the pushes they need (Subscriptions calls it)."""

    def watch(self, board_id: str) -> Awaitable[None]:
        """A client of this node holds `board_id` now (counted at once); the awaitable returned
        is done once the board's pushes reach this node."""

    def unwatch(self, board_id: str) -> None:
        """A client of this node no longer holds `board_id`."""


async def _nothing() -> None:
    return None


class EveryBoard:
    """The single-process mode: every push is made in this process and reaches it."""

    def watch(self, board_id: str) -> Awaitable[None]:
        return _nothing()

    def unwatch(self, board_id: str) -> None:
        return None


class BoardChannelListener:
    """Subscribes to the channels of the boards this node's clients hold, and delivers their
    pushes to those clients."""

    def __init__(
        self,
        client: redis.Redis,
        channels: PushChannels,
        deliver: Deliver,
        catch_up: CatchUp,
        received: Callable[[str], None],
        linger: float = LINGER_SECONDS,
    ) -> None:
        self._pubsub = client.pubsub()
        self._channels = channels
        self._deliver = deliver
        self._catch_up = catch_up
        self._received = received
        self._linger = linger
        self._watchers: Counter[str] = Counter()
        self._idle_since: dict[str, float] = {}  # boards subscribed with no watcher, since when
        self._subscribed: set[str] = set()  # boards whose SUBSCRIBE has been sent
        self._confirming: dict[str, asyncio.Future[None]] = {}
        self._changed = asyncio.Event()
        # Set once the reader has subscribed the marker: redis-py's PubSub opens its connection
        # on the first command, and two first commands at once would open two.
        self._connected = asyncio.Event()
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def boards(self) -> set[str]:
        """The boards whose channels this node is subscribed to (or about to be)."""
        return set(self._subscribed)

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._tasks = {loop.create_task(self._read()), loop.create_task(self._send_changes())}

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()
        await self._pubsub.aclose()

    def watch(self, board_id: str) -> Awaitable[None]:
        self._watchers[board_id] += 1
        self._idle_since.pop(board_id, None)
        if board_id in self._subscribed and board_id not in self._confirming:
            return _nothing()
        confirmed = self._confirming.get(board_id)
        if confirmed is None:
            confirmed = self._confirming[board_id] = asyncio.get_running_loop().create_future()
            self._changed.set()
        return self._until_confirmed(board_id, confirmed)

    async def _until_confirmed(self, board_id: str, confirmed: asyncio.Future[None]) -> None:
        try:
            await asyncio.wait_for(asyncio.shield(confirmed), CONFIRM_TIMEOUT_SECONDS)
        except TimeoutError:
            log.warning("Redis has not confirmed the channel of board %s; going on", board_id)

    def unwatch(self, board_id: str) -> None:
        self._watchers[board_id] -= 1
        if self._watchers[board_id] <= 0:
            del self._watchers[board_id]
            self._idle_since[board_id] = asyncio.get_running_loop().time()
            self._changed.set()

    async def _send_changes(self) -> None:
        """Send the SUBSCRIBE and UNSUBSCRIBE commands the watchers call for, in batches."""
        loop = asyncio.get_running_loop()
        retry = RETRY_FIRST_SECONDS
        await self._connected.wait()
        while True:
            expiries = [since + self._linger - loop.time() for since in self._idle_since.values()]
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), max(0.0, min(expiries, default=60)))
            self._changed.clear()
            try:
                await self._unsubscribe_idle(loop.time())
                await self._subscribe_wanted()
            except TRANSIENT_REDIS_ERRORS:
                await asyncio.sleep(retry)  # the reader logs the outage
                retry = min(retry * 2, RETRY_MAX_SECONDS)
                self._changed.set()
                continue
            retry = RETRY_FIRST_SECONDS

    async def _unsubscribe_idle(self, now: float) -> None:
        for board_id in self._subscribed:
            if not self._watchers[board_id]:
                self._idle_since.setdefault(board_id, now)
        gone = [
            board_id
            for board_id, since in self._idle_since.items()
            if now - since >= self._linger and board_id in self._subscribed
        ]
        if not gone:
            return
        # Noted before the command goes: a client arriving meanwhile subscribes the board anew,
        # and that SUBSCRIBE follows this UNSUBSCRIBE on the connection.
        for board_id in gone:
            del self._idle_since[board_id]
            self._subscribed.discard(board_id)
        try:
            await self._pubsub.unsubscribe(*(self._channels.board(b) for b in gone))
        except TRANSIENT_REDIS_ERRORS:
            for board_id in gone:
                if not self._watchers[board_id] and board_id not in self._confirming:
                    self._subscribed.add(board_id)
                    self._idle_since[board_id] = now - self._linger  # again at the next pass
            raise

    async def _subscribe_wanted(self) -> None:
        wanted = [b for b in self._confirming if b not in self._subscribed]
        if not wanted:
            return
        await self._pubsub.subscribe(*(self._channels.board(b) for b in wanted))
        self._subscribed.update(wanted)

    async def _read(self) -> None:
        retry = RETRY_FIRST_SECONDS
        marker_sent = False
        while True:
            try:
                if not marker_sent:  # then redis-py subscribes it again after a reconnection
                    await self._pubsub.subscribe(self._channels.marker)
                    marker_sent = True
                    self._connected.set()
                message = await self._pubsub.get_message(timeout=None)
            except TRANSIENT_REDIS_ERRORS as exc:
                log.warning("board channels: Redis unavailable (%s); retrying", exc)
                await asyncio.sleep(retry)
                retry = min(retry * 2, RETRY_MAX_SECONDS)
                self._changed.set()  # what could not be sent meanwhile
                continue
            retry = RETRY_FIRST_SECONDS
            if message is not None:
                try:
                    await self._handle(message)
                except Exception:  # one bad message must not stop the node hearing the rest
                    log.exception("handling a message on a board channel failed")

    async def _handle(self, message: dict[str, Any]) -> None:
        channel = message.get("channel")
        if isinstance(channel, bytes):
            channel = channel.decode()
        board_id = self._channels.board_of(channel) if isinstance(channel, str) else None
        if board_id is None:
            return
        kind = message.get("type")
        if kind == "subscribe":
            confirmed = self._confirming.pop(board_id, None)
            if confirmed is not None:
                if not confirmed.done():
                    confirmed.set_result(None)
            elif board_id in self._subscribed:
                self._in_background(self._catch_up(board_id))  # subscribed again: reconnected
        elif kind == "message":
            try:
                payload = orjson.loads(message["data"])
            except orjson.JSONDecodeError:
                log.warning("a message on the channel of board %s is not JSON", board_id)
                return
            if isinstance(payload, dict):
                self._received(board_id)
                await self._deliver(board_id, payload)

    def _in_background(self, work: Awaitable[None]) -> None:
        async def run() -> None:
            try:
                await work
            except Exception:
                log.exception("re-reading a board after the board channels reconnected failed")

        task = asyncio.get_running_loop().create_task(run())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
