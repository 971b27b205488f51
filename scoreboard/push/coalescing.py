"""At most BROADCAST_HZ top-10 pushes a second per board, deployment-wide; the last change always
sent. Each board is paced on its own: a busy board never holds back a quiet one's push, and a
quiet board costs nothing between its changes."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from importlib import resources
from typing import Protocol

import redis.asyncio as redis

from scoreboard.boards.keys import board_prefix
from scoreboard.boards.model import GLOBAL_BOARD_ID
from scoreboard.errors import ServiceUnavailable
from scoreboard.group_commit import GroupCommit
from scoreboard.models import Leaderboard
from scoreboard.push.board_tops import BoardTops
from scoreboard.push.broadcast import Broadcaster
from scoreboard.redis_errors import redis_errors_as_unavailable

log = logging.getLogger(__name__)


class EmitSlot(Protocol):
    """The right to push a board once per period, shared by everyone who pushes that board."""

    async def claim(self, board_id: str, period: float) -> float:
        """0 when the slot is ours now; else the seconds until it may be claimed again."""


class LocalEmitSlot:
    """The slots for one process (the single-process mode)."""

    def __init__(self) -> None:
        self._free_at: dict[str, float] = {}

    async def claim(self, board_id: str, period: float) -> float:
        now = time.monotonic()
        free_at = self._free_at.get(board_id, 0.0)
        if now < free_at:
            return free_at - now
        self._free_at[board_id] = now + period
        return 0.0


class RedisEmitSlot:
    """The slots in Redis, one expiring key per board, so all workers together keep to the rate.

    Claims made together (many boards flushing at once) share one script call: the cost of a
    push falls as the number of busy boards rises.
    """

    def __init__(self, client: redis.Redis, prefix: str) -> None:
        self._prefix = prefix
        source = resources.files("scoreboard.push").joinpath("lua", "claim_slots.lua")
        self._claim = client.register_script(source.read_text())
        self._claims: GroupCommit[tuple[str, int], float] = GroupCommit(self._claim_group)

    def key(self, board_id: str) -> str:
        if board_id == GLOBAL_BOARD_ID:
            # The key from before boards: workers of both versions share it during a deploy.
            return f"{self._prefix}broadcast-slot"
        return f"{board_prefix(self._prefix, board_id)}broadcast-slot"

    async def claim(self, board_id: str, period: float) -> float:
        return await self._claims.submit((self.key(board_id), max(1, int(period * 1000))))

    async def _claim_group(self, claims: Sequence[tuple[str, int]]) -> list[float]:
        async with redis_errors_as_unavailable():
            waits = await self._claim(
                keys=[key for key, _ in claims], args=[ms for _, ms in claims]
            )
        return [int(wait) / 1000 for wait in waits]

    @property
    def script_calls(self) -> int:
        """Calls made so far, for tests."""
        return self._claims.groups


def _order(board: Leaderboard) -> tuple[int, int]:
    return (board.season, board.version)


class CoalescingBroadcaster:
    """Pushes each board's newest at most `hz` times a second; a change is never left unsent.

    A change only marks its board dirty, and starts that board's flush if none runs. A flush
    waits for the board's slot, then sends the newer of the board this worker announced and
    the board's store, so whichever worker flushes sends every worker's changes.
    """

    def __init__(
        self,
        broadcaster: Broadcaster,
        newest_global: Callable[[], Awaitable[Leaderboard]],
        slot: EmitSlot,
        hz: float,
    ) -> None:
        self._broadcaster = broadcaster
        self._tops = BoardTops(newest_global)
        self._slot = slot
        self._period = 1.0 / hz
        self._dirty: dict[str, Leaderboard] = {}  # board id -> the newest announced, not sent
        self._sent: dict[str, tuple[int, int]] = {}  # board id -> (season, version) last sent
        self._flushing: dict[str, asyncio.Task[None]] = {}
        self.sent = 0

    async def broadcast_top10(self, board: Leaderboard) -> None:
        board_id = board.board_id
        announced = self._dirty.get(board_id)
        if announced is None or _order(board) > _order(announced):
            self._dirty[board_id] = board
        if board_id not in self._flushing:
            self._flushing[board_id] = asyncio.create_task(self._flush(board_id))

    async def close(self) -> None:
        """Send what is still pending (on shutdown), waiting at most one period more."""
        if not self._flushing:
            return
        flushing = list(self._flushing.values())
        _, pending = await asyncio.wait(flushing, timeout=self._period * 2 + 1)
        if pending:
            log.warning("gave up sending the last board of %d boards on shutdown", len(pending))

    async def _flush(self, board_id: str) -> None:
        try:
            while board_id in self._dirty:
                await self._flush_once(board_id)
        finally:
            del self._flushing[board_id]

    async def _flush_once(self, board_id: str) -> None:
        try:
            wait = await self._slot.claim(board_id, self._period)
        except ServiceUnavailable:
            wait = self._period
        if wait > 0:
            await asyncio.sleep(wait)
            return
        announced = self._dirty.pop(board_id)
        try:
            stored = await self._tops.top(board_id)
        except ServiceUnavailable:
            newer = self._dirty.get(board_id, announced)  # announced while the read failed
            self._dirty[board_id] = max(announced, newer, key=_order)
            await asyncio.sleep(self._period)
            return
        board = max(stored, announced, key=_order)
        if _order(board) <= self._sent.get(board_id, (-1, -1)):
            return
        try:
            await self._broadcaster.broadcast_top10(board)
            self._sent[board_id] = _order(board)
            self.sent += 1
        except ServiceUnavailable:  # Redis is down: send it again once it is back
            newer = self._dirty.get(board_id, board)
            self._dirty[board_id] = max(board, newer, key=_order)
            await asyncio.sleep(self._period)
        except Exception:  # the next change is sent anyway; never stop flushing
            log.exception("broadcast of %s version %d failed", board_id, board.version)


def paced(
    broadcaster: Broadcaster,
    newest_global: Callable[[], Awaitable[Leaderboard]],
    slot: EmitSlot,
    hz: float,
) -> Broadcaster | CoalescingBroadcaster:
    """The broadcaster a worker loop uses: coalescing at `hz`, or every change when hz is 0."""
    if hz <= 0:
        return broadcaster
    return CoalescingBroadcaster(broadcaster, newest_global, slot, hz)
