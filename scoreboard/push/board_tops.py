"""The current top 10 of any board: the snapshot a client gets, what a coalesced push sends."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from scoreboard.boards.model import GLOBAL_BOARD_ID
from scoreboard.models import Leaderboard

BoardReader = Callable[[str], Awaitable[Leaderboard | None]]


class BoardTops:
    """Reads a board's top 10 from its store: `global`'s always, others' when given a reader."""

    def __init__(
        self,
        global_top: Callable[[], Awaitable[Leaderboard]],
        board_top: BoardReader | None = None,
    ) -> None:
        self._global_top = global_top
        self._board_top = board_top

    async def top(self, board_id: str) -> Leaderboard:
        if board_id == GLOBAL_BOARD_ID:
            return await self._global_top()
        board = None if self._board_top is None else await self._board_top(board_id)
        # No reader (a worker's coalescing sends what it applied) or no such board: an empty
        # one, which every push replaces.
        return board or Leaderboard(version=0, top=(), board_id=board_id, season=1)
