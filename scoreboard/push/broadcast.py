"""Pushing the top 10 to every connected Socket.IO client, on every web node."""

from __future__ import annotations

from typing import Any, Protocol

from scoreboard.models import Leaderboard

LEADERBOARD_EVENT = "leaderboardUpdate"


class Emitter(Protocol):
    """What socketio.AsyncServer and a write-only socketio.AsyncRedisManager both offer."""

    async def emit(self, event: str, data: Any, namespace: str | None = None) -> Any: ...


class TopTenPusher(Protocol):
    """Anything that pushes a new top 10 to clients: a Broadcaster, or one that paces it."""

    async def broadcast_top10(self, board: Leaderboard) -> None: ...


class Broadcaster:
    """Emits `leaderboardUpdate` to every client in the default namespace."""

    def __init__(self, emitter: Emitter) -> None:
        self._emitter = emitter

    async def broadcast_top10(self, board: Leaderboard) -> None:
        await self._emitter.emit(LEADERBOARD_EVENT, board.to_event_payload(), namespace="/")
