"""`leaderboardUpdate`: its name, its payload, and the one place that sends it."""

from __future__ import annotations

from typing import Any, Protocol

from scoreboard.models import Leaderboard

LEADERBOARD_EVENT = "leaderboardUpdate"
NAMESPACE = "/"


class Emitter(Protocol):
    """What socketio.AsyncServer and a write-only socketio.AsyncRedisManager both offer."""

    async def emit(
        self, event: str, data: Any, namespace: str | None = None, **options: Any
    ) -> Any: ...


class TopTenPusher(Protocol):
    """Anything that pushes a new top 10 to clients: a Broadcaster, or one that paces it."""

    async def broadcast_top10(self, board: Leaderboard) -> None: ...


class Broadcaster:
    """Sends `leaderboardUpdate`: to every client on every node, or to one client as a snapshot."""

    def __init__(self, emitter: Emitter) -> None:
        self._emitter = emitter

    @staticmethod
    def payload(board: Leaderboard) -> dict[str, Any]:
        """{"event": "leaderboardUpdate", "version": …, "top10": [{userId, username, score}, …]}."""
        return {
            "event": LEADERBOARD_EVENT,
            "version": board.version,
            "top10": [entry.to_json() for entry in board.top],
        }

    async def broadcast_top10(self, board: Leaderboard) -> None:
        await self._emitter.emit(LEADERBOARD_EVENT, self.payload(board), namespace=NAMESPACE)

    async def send_snapshot(self, board: Leaderboard, sid: str) -> None:
        """Send `board` to the client `sid` of this node alone (the board it sees on connect)."""
        # The client is on this node: no need to go through the Redis channel of all nodes.
        await self._emitter.emit(
            LEADERBOARD_EVENT, self.payload(board), namespace=NAMESPACE, to=sid, ignore_queue=True
        )
