"""Closing seasons: each board's at its reset boundary, exactly once however many workers run.

Every worker runs a SeasonCloser. A pass moves every board whose boundary has passed on to its
next season (a compare-and-set only one caller wins; from then on updates are accepted in the
new season), pushes the new, empty board, and archives every season that is no longer live and
not archived yet: once the updates accepted in it are all applied (or PENDING_WAIT_SECONDS have
passed), its standings become a closed season. A worker that was not running at a boundary
catches up on its first pass; see docs/boards.md#seasons.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime

from scoreboard.boards.closed_seasons import ClosedSeasons
from scoreboard.boards.model import GLOBAL_BOARD_ID, Board
from scoreboard.boards.registry import BoardRegistry
from scoreboard.boards.schedule import latest_boundary, next_boundary
from scoreboard.boards.seasons import Seasons
from scoreboard.errors import ServiceUnavailable
from scoreboard.models import Leaderboard
from scoreboard.push.broadcast import TopTenPusher

log = logging.getLogger(__name__)

PASS_SECONDS = 1.0  # how late after its boundary a season may close
# How long a closing season waits for the updates accepted in it to be applied. One whose web
# node died between reserving and queueing it never comes: past the wait the season closes
# without it, and says how many it did not wait for.
PENDING_WAIT_SECONDS = 60.0
_PENDING_POLL_SECONDS = 0.05


def utc_now() -> datetime:
    return datetime.now(UTC)


async def start_next_season(
    seasons: Seasons,
    broadcaster: TopTenPusher,
    board_id: str,
    season: int,
    ended_at: datetime,
    next_starts_at: datetime,
) -> int | None:
    """Move the board from `season` on to the next and push its empty board, if `season` is
    still live: the version the next season starts at, or None when someone moved it first."""
    version = await seasons.move(board_id, season, ended_at, next_starts_at)
    if version is None:
        return None
    log.info("board %s: season %d closed, season %d started", board_id, season, season + 1)
    try:
        await broadcaster.broadcast_top10(Leaderboard(version, (), board_id, season + 1))
    except Exception:  # clients still read the new season; the next change is pushed anyway
        log.exception("could not push the empty board of %s's season %d", board_id, season + 1)
    return version


class SeasonCloser:
    def __init__(
        self,
        registry: BoardRegistry,
        seasons: Seasons,
        closed: ClosedSeasons,
        broadcaster: TopTenPusher,
        kept: int,
        *,
        clock: Callable[[], datetime] = utc_now,
        pending_wait_seconds: float = PENDING_WAIT_SECONDS,
    ) -> None:
        self._registry = registry
        self._seasons = seasons
        self._closed = closed
        self._broadcaster = broadcaster
        self._kept = kept
        self._clock = clock
        self._pending_wait = pending_wait_seconds

    async def run(self, every: float = PASS_SECONDS) -> None:
        """Pass after pass until cancelled; each board archives in a task of its own, so one
        waiting for its updates never holds another's boundary back."""
        archiving: dict[str, asyncio.Task[None]] = {}
        try:
            while True:
                try:
                    for board in await self.move_due():
                        running = archiving.get(board.board_id)
                        if running is None or running.done():
                            archiving[board.board_id] = asyncio.create_task(self.archive(board))
                except ServiceUnavailable as exc:
                    log.warning("season closer: %s; trying again", exc)
                except Exception:
                    log.exception("season closer pass failed")
                await asyncio.sleep(every)
        finally:
            for task in archiving.values():
                task.cancel()
            await asyncio.gather(*archiving.values(), return_exceptions=True)

    async def close_due(self) -> None:
        """One whole pass: move what is due, then archive every board's closed seasons."""
        boards = await self.move_due()
        await asyncio.gather(*(self.archive(board) for board in boards))

    async def move_due(self) -> Sequence[Board]:
        """Move on every board whose boundary has passed; every board but `global`."""
        boards = [b for b in await self._registry.all() if b.board_id != GLOBAL_BOARD_ID]
        for board in boards:
            await self._move_if_due(board)
        return boards

    async def _move_if_due(self, board: Board) -> None:
        now = self._clock()
        latest = latest_boundary(board.reset, now)
        if latest is None:
            return
        live = await self._seasons.current(board.board_id)
        if live.started_at is None:  # a board from before seasons: its season starts now
            await self._seasons.begin(board.board_id, latest)
            return
        ended_at = next_boundary(board.reset, live.started_at)
        if ended_at is not None and ended_at <= now:
            # However many boundaries passed, the season ends at the first and the next one
            # starts at the latest: no empty seasons in between.
            await start_next_season(
                self._seasons, self._broadcaster, board.board_id, live.number, ended_at, latest
            )

    async def archive(self, board: Board) -> None:
        """Archive every season of the board below the live one that is not archived yet."""
        live = (await self._seasons.current(board.board_id)).number
        for season in range(await self._seasons.archived(board.board_id) + 1, live):
            await self._archive_season(board, season)

    async def _archive_season(self, board: Board, season: int) -> None:
        end = await self._seasons.ended(board.board_id, season)
        if end is not None:  # else another worker archived it and is about to say so
            outstanding = await self._wait_for_pending(board.board_id, season)
            if outstanding is None:
                log.warning(
                    "board %s: closing season %d after waiting %gs: Redis lost which of its"
                    " accepted updates were still to be applied",
                    board.board_id,
                    season,
                    self._pending_wait,
                )
            elif outstanding > 0:
                log.warning(
                    "board %s: closing season %d with %d accepted updates not applied yet",
                    board.board_id,
                    season,
                    outstanding,
                )
            if await self._closed.keep(board, end, self._kept):
                log.info("board %s: season %d archived", board.board_id, season)
        await self._seasons.mark_archived(board.board_id, season)

    async def _wait_for_pending(self, board_id: str, season: int) -> int | None:
        """0 once nothing accepted in the season is outstanding; else, once the wait is over,
        how many are (None: not known, so the whole wait was waited)."""
        deadline = time.monotonic() + self._pending_wait
        while (pending := await self._seasons.pending(board_id, season)) != 0:
            if time.monotonic() >= deadline:
                return pending
            await asyncio.sleep(_PENDING_POLL_SECONDS)
        return 0
