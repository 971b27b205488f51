"""The current top 10 of any board: the snapshot a client gets, what a coalesced push sends."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from scoreboard.boards.model import GLOBAL_BOARD_ID
from scoreboard.models import Leaderboard


class BoardTops:
    """Reads a board's top 10 from its store; only `global` has one for now."""

    def __init__(self, global_top: Callable[[], Awaitable[Leaderboard]]) -> None:
        self._global_top = global_top

    async def top(self, board_id: str) -> Leaderboard:
        if board_id == GLOBAL_BOARD_ID:
            return await self._global_top()
        # Until the stores can read any board: an empty one, which every push replaces.
        return Leaderboard(version=0, top=(), board_id=board_id, season=1)
