"""At most BROADCAST_HZ top-10 pushes a second, deployment-wide; the last change always sent."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Protocol

import redis.asyncio as redis

from scoreboard.errors import ServiceUnavailable
from scoreboard.models import Leaderboard
from scoreboard.push.broadcast import Broadcaster
from scoreboard.redis_errors import redis_errors_as_unavailable

log = logging.getLogger(__name__)


class EmitSlot(Protocol):
    """The right to push the board once per period, shared by everyone who pushes."""

    async def claim(self, period: float) -> float:
        """0 when the slot is ours now; else the seconds until it may be claimed again."""


class LocalEmitSlot:
    """The slot for one process (the single-process mode)."""

    def __init__(self) -> None:
        self._free_at = 0.0

    async def claim(self, period: float) -> float:
        now = time.monotonic()
        if now < self._free_at:
            return self._free_at - now
        self._free_at = now + period
        return 0.0


class RedisEmitSlot:
    """The slot in Redis, so that all workers together keep to the rate."""

    def __init__(self, client: redis.Redis, prefix: str) -> None:
        self._client = client
        self._key = f"{prefix}broadcast-slot"

    async def claim(self, period: float) -> float:
        milliseconds = max(1, int(period * 1000))
        async with redis_errors_as_unavailable():
            if await self._client.set(self._key, "1", nx=True, px=milliseconds):
                return 0.0
            remaining = await self._client.pttl(self._key)
        return max(remaining, 1) / 1000


class CoalescingBroadcaster:
    """Pushes the newest board at most `hz` times a second; a change is never left unsent.

    A change only marks the board dirty. A flush waits for the slot, then reads the newest
    board from the store, so whichever worker flushes sends every worker's changes.
    """

    def __init__(
        self,
        broadcaster: Broadcaster,
        newest_board: Callable[[], Awaitable[Leaderboard]],
        slot: EmitSlot,
        hz: float,
    ) -> None:
        self._broadcaster = broadcaster
        self._newest_board = newest_board
        self._slot = slot
        self._period = 1.0 / hz
        self._dirty = False
        self._sent_version = -1
        self._flushing: asyncio.Task[None] | None = None
        self.sent = 0

    async def broadcast_top10(self, board: Leaderboard) -> None:
        self._dirty = True
        if self._flushing is None or self._flushing.done():
            self._flushing = asyncio.create_task(self._flush())

    async def close(self) -> None:
        """Send what is still pending (on shutdown), waiting at most one period more."""
        if self._flushing is not None and not self._flushing.done():
            try:
                await asyncio.wait_for(self._flushing, self._period * 2 + 1)
            except TimeoutError:
                log.warning("gave up sending the last board on shutdown")

    async def _flush(self) -> None:
        while self._dirty:
            try:
                wait = await self._slot.claim(self._period)
                if wait > 0:
                    await asyncio.sleep(wait)
                    continue
                self._dirty = False
                board = await self._newest_board()
            except ServiceUnavailable:
                await asyncio.sleep(self._period)
                continue
            if board.version > self._sent_version:
                try:
                    await self._broadcaster.broadcast_top10(board)
                    self._sent_version = board.version
                    self.sent += 1
                except Exception:  # the next change is sent anyway; never stop flushing
                    log.exception("broadcast of version %d failed", board.version)


def paced(
    broadcaster: Broadcaster,
    newest_board: Callable[[], Awaitable[Leaderboard]],
    slot: EmitSlot,
    hz: float,
) -> Broadcaster | CoalescingBroadcaster:
    """The broadcaster a worker loop uses: coalescing at `hz`, or every change when hz is 0."""
    if hz <= 0:
        return broadcaster
    return CoalescingBroadcaster(broadcaster, newest_board, slot, hz)
