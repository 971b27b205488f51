"""`leaderboardUpdate`: its name, its payload, each board's room, and the one place sending it."""

from __future__ import annotations

from typing import Any, Protocol

from scoreboard.boards.model import GLOBAL_BOARD_ID
from scoreboard.models import Leaderboard

LEADERBOARD_EVENT = "leaderboardUpdate"
NAMESPACE = "/"
_ROOM_PREFIX = "board:"


def board_room(board_id: str) -> str:
    """The Socket.IO room of the clients that hold board `board_id`."""
    return f"{_ROOM_PREFIX}{board_id}"


def room_board(room: object) -> str | None:
    """The board whose room `room` is; None for any other room (a client's own sid, a list)."""
    if isinstance(room, str) and room.startswith(_ROOM_PREFIX):
        return room[len(_ROOM_PREFIX) :]
    return None


class Emitter(Protocol):
    """What socketio.AsyncServer and a write-only socketio.AsyncRedisManager both offer."""

    async def emit(
        self, event: str, data: Any, namespace: str | None = None, **options: Any
    ) -> Any: ...


class TopTenPusher(Protocol):
    """Anything that pushes a new top 10 to clients: a Broadcaster, or one that paces it."""

    async def broadcast_top10(self, board: Leaderboard) -> None: ...


class Broadcaster:
    """Sends `leaderboardUpdate`: to a board's room on every node, or to one client (a snapshot)."""

    def __init__(self, emitter: Emitter) -> None:
        self._emitter = emitter

    @staticmethod
    def payload(board: Leaderboard) -> dict[str, Any]:
        """Global's is SPEC.md's exactly; every other board's also says `boardId` and `season`."""
        if board.board_id == GLOBAL_BOARD_ID:
            return {
                "event": LEADERBOARD_EVENT,
                "version": board.version,
                "top10": [entry.to_json() for entry in board.top],
            }
        return {
            "event": LEADERBOARD_EVENT,
            "boardId": board.board_id,
            "season": board.season,
            "version": board.version,
            "top10": [entry.to_json() for entry in board.top],
        }

    async def broadcast_top10(self, board: Leaderboard) -> None:
        await self._emitter.emit(
            LEADERBOARD_EVENT,
            self.payload(board),
            namespace=NAMESPACE,
            room=board_room(board.board_id),
        )

    async def deliver_here(self, board_id: str, payload: dict[str, Any]) -> None:
        """Hand a push of `board_id` heard from Redis to this node's clients holding it."""
        await self._emitter.emit(
            LEADERBOARD_EVENT,
            payload,
            namespace=NAMESPACE,
            room=board_room(board_id),
            ignore_queue=True,  # python-socketio's: to this node's clients, not published again
        )

    async def send_snapshot(self, board: Leaderboard, sid: str) -> None:
        """Send `board` to the client `sid` of this node alone (what it sees on subscribing)."""
        # The client is on this node: no need to go through the Redis channel of all nodes.
        await self._emitter.emit(
            LEADERBOARD_EVENT, self.payload(board), namespace=NAMESPACE, to=sid, ignore_queue=True
        )
