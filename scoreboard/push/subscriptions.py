"""Which boards each client of this node holds, and the rooms that bring it their pushes."""

from __future__ import annotations

import asyncio

import socketio

from scoreboard.boards.model import is_board_id
from scoreboard.boards.registry import BoardRegistry
from scoreboard.errors import InvalidRequest, NotFound
from scoreboard.push.board_listener import BoardWatch
from scoreboard.push.broadcast import board_room
from scoreboard.push.fan_out import FanOut

# Boards one connection may hold, and ids one request may list. 32 ids of the longest kind
# (64 characters) and a token still fit in a client message (MAX_SOCKET_MESSAGE_BYTES).
MAX_BOARDS_PER_CLIENT = 32


def requested_boards(boards: object) -> list[str]:
    """The ids a client's `boards` lists, each once, in order; InvalidRequest if malformed."""
    if not isinstance(boards, list):
        raise InvalidRequest("boards must be a list of board ids")
    if len(boards) > MAX_BOARDS_PER_CLIENT:
        raise InvalidRequest(f"boards may list at most {MAX_BOARDS_PER_CLIENT} board ids")
    for index, board_id in enumerate(boards):
        if not isinstance(board_id, str) or not is_board_id(board_id):
            raise InvalidRequest(f"boards[{index}] is not a board id")
    return list(dict.fromkeys(boards))


class Subscriptions:
    """The boards each connected client holds: chosen on connect, changed by (un)subscribe.

    `channels` hears each board's pushes while a client of this node holds it.
    """

    def __init__(
        self,
        sio: socketio.AsyncServer,
        registry: BoardRegistry,
        fan_out: FanOut,
        channels: BoardWatch,
    ) -> None:
        self._sio = sio
        self._registry = registry
        self._fan_out = fan_out
        self._channels = channels
        self._held: dict[str, set[str]] = {}

    async def check_exist(self, board_ids: list[str]) -> None:
        """Raise NotFound naming every board of `board_ids` the deployment does not have."""
        unknown = [board_id for board_id in board_ids if await self._registry.get(board_id) is None]
        if unknown:
            raise NotFound(f"Unknown board{'s' if len(unknown) > 1 else ''}: {', '.join(unknown)}")

    async def add(self, sid: str, board_ids: list[str]) -> list[str]:
        """Hold `board_ids` too; return those not held before. Past the limit: InvalidRequest,
        and nothing changes."""
        held = self._held.setdefault(sid, set())
        added = [board_id for board_id in board_ids if board_id not in held]
        # Checked and noted with no await in between: a client's events are handled concurrently.
        if len(held) + len(added) > MAX_BOARDS_PER_CLIENT:
            raise InvalidRequest(f"A connection holds at most {MAX_BOARDS_PER_CLIENT} boards")
        held.update(added)
        heard = [self._channels.watch(board_id) for board_id in added]
        self._fan_out.follow(sid)
        for board_id in added:
            self._fan_out.forget(sid, board_id)  # held anew, it starts over with a snapshot
            await self._sio.enter_room(sid, board_room(board_id))
        # Returns once this node hears their pushes: the snapshots are read after that.
        await asyncio.gather(*heard)
        return added

    async def remove(self, sid: str, board_ids: list[str]) -> None:
        held = self._held.get(sid, set())
        for board_id in board_ids:
            if board_id in held:
                held.discard(board_id)
                await self._sio.leave_room(sid, board_room(board_id))
                self._fan_out.forget(sid, board_id)
                self._channels.unwatch(board_id)

    def holds(self, sid: str, board_id: str) -> bool:
        return board_id in self._held.get(sid, ())

    def held(self, sid: str) -> list[str]:
        return sorted(self._held.get(sid, ()))

    def drop(self, sid: str) -> None:
        """Forget a client gone (python-socketio takes it out of its rooms)."""
        for board_id in self._held.pop(sid, ()):
            self._channels.unwatch(board_id)
        self._fan_out.forget(sid)
