"""Accepting a score update: reserve its newScore, queue it, and settle a failed publish.

Both steps are group commits: the reservations that wait go to Redis in one script call, the
updates that wait go to the broker in one message per priority, confirmed once.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass

from scoreboard.apply.store import LeaderboardStore, Reservation
from scoreboard.boards.model import GLOBAL_BOARD, GLOBAL_BOARD_ID, Board
from scoreboard.config import MAX_SAFE_INTEGER
from scoreboard.errors import QueueUnavailable, SeasonUnknown, StoreUnavailable
from scoreboard.group_commit import GroupCommit
from scoreboard.intake.idempotency import IdempotencyRecords, IdempotentRequest
from scoreboard.intake.rate_limit import RateWindow
from scoreboard.models import ScoreUpdate
from scoreboard.ops.metrics import Metrics
from scoreboard.queue import UpdatePublisher

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Accepted:
    """The answer to an accepted update; `replayed` when it repeats an earlier answer."""

    new_score: int
    replayed: bool = False


class ScoreSubmission:
    """The write path of the web process, the same in both modes."""

    def __init__(
        self,
        store: LeaderboardStore,
        publisher: UpdatePublisher,
        records: IdempotencyRecords,
        metrics: Metrics | None = None,
        group_wait_seconds: float = 0.0,
        restore_season: Callable[[str], Awaitable[object]] | None = None,
    ) -> None:
        """`restore_season(board_id)` gives Redis back a board's live season number it lost
        (with a ledger); without it such an update is refused with SeasonUnknown (503)."""
        self._store = store
        self._restore_season = restore_season
        self._publisher = publisher
        self._records = records
        self._metrics = metrics
        self._one_per_user = _PerUserLocks()
        self._publishes: GroupCommit[tuple[ScoreUpdate, int], None] = GroupCommit(
            self._publish_group,
            observe_size=None if metrics is None else metrics.group_size.labels("publish").observe,
            linger_seconds=group_wait_seconds,
        )

    async def submit(
        self,
        update: ScoreUpdate,
        idempotent: IdempotentRequest | None = None,
        priority: int = 0,
        limit: RateWindow | None = None,
    ) -> Accepted:
        """Queue `update` durably and return the score it leads to, at most once per key.

        With a `limit`, the request counts against its user's rate limit (RateLimited when over
        it), a replayed answer too.
        """
        if idempotent is None:
            return Accepted(await self._queue(update, priority, limit))
        first_answer = await self._records.claim(idempotent)
        if first_answer is not None:
            if limit is not None:
                await self._store.count_refused(update.user_id, limit)
            return Accepted(first_answer, replayed=True)
        try:
            new_score = await self._queue(update, priority, limit)
        except BaseException:
            await self._records.abandon(idempotent)
            raise
        try:
            await self._records.complete(idempotent, new_score)
        except StoreUnavailable:
            # The update is queued: answer 200. A retry finds the key in flight (409), never twice.
            log.warning("could not record the answer for an Idempotency-Key of %s", update.user_id)
        return Accepted(new_score)

    async def count_refused(self, user_id: str, limit: RateWindow) -> None:
        """Count a request refused for its content; RateLimited when the user is over `limit`."""
        await self._store.count_refused(user_id, limit)

    async def _queue(self, update: ScoreUpdate, priority: int, limit: RateWindow | None) -> int:
        # Encoded before anything is reserved: what cannot be queued leaves no trace. (The
        # season the reservation picks changes a number in it, never whether it encodes.)
        update.entry  # noqa: B018
        # One update per user in flight on this node: should its publish fail and be cancelled,
        # no later answer for that user has counted it in its newScore.
        board = _board_of(update)
        async with self._one_per_user.hold(f"{update.board_id}\0{update.user_id}"):
            new_score, season, accepted_seq = await self._admit(board, update, limit)
            if (season, accepted_seq) != (update.season, update.accepted_seq):
                update = dataclasses.replace(update, season=season, accepted_seq=accepted_seq)
            store = self._store.for_board(board, season)
            try:
                await self._publishes.submit((update, priority))
            except BaseException as failure:
                # Whatever failed, the broker may or may not hold the message: release() settles
                # it, and when a worker applied it already the update stands with its answer.
                applied = not await store.release(update)
                if not applied or isinstance(failure, asyncio.CancelledError):
                    raise
                if not isinstance(failure, QueueUnavailable):
                    log.exception("publish failed after the update was applied")
        if self._metrics is not None:
            self._metrics.count_accepted(update.board_id)
        return new_score

    async def _admit(
        self, board: Board, update: ScoreUpdate, limit: RateWindow | None
    ) -> Reservation:
        store = self._store.for_board(board)
        try:
            return await store.admit(update, MAX_SAFE_INTEGER, limit)
        except SeasonUnknown:
            if self._restore_season is None:
                raise
            await self._restore_season(board.board_id)
            return await store.admit(update, MAX_SAFE_INTEGER, limit)

    async def _publish_group(
        self, group: Sequence[tuple[ScoreUpdate, int]]
    ) -> list[BaseException | None]:
        """One message per priority present (a message never mixes tiers), sent together."""
        by_priority: dict[int, list[ScoreUpdate]] = {}
        for update, priority in group:
            by_priority.setdefault(priority, []).append(update)
        outcomes = await asyncio.gather(
            *(self._publisher.publish_group(updates, p) for p, updates in by_priority.items()),
            return_exceptions=True,
        )
        failed = dict(zip(by_priority, outcomes, strict=True))
        return [failed[priority] for _, priority in group]


def _board_of(update: ScoreUpdate) -> Board:
    """The board as the update carries it (its store needs the rules, not the name)."""
    if update.board_id == GLOBAL_BOARD_ID:
        return GLOBAL_BOARD
    return Board(update.board_id, update.board_id, update.operator, update.order)


class _PerUserLocks:
    """A lock per user, kept only while someone holds or waits for it."""

    def __init__(self) -> None:
        self._locks: dict[str, tuple[asyncio.Lock, int]] = {}

    @asynccontextmanager
    async def hold(self, user_id: str) -> AsyncIterator[None]:
        lock, users = self._locks.get(user_id, (asyncio.Lock(), 0))
        self._locks[user_id] = (lock, users + 1)
        try:
            async with lock:
                yield
        finally:
            lock, users = self._locks[user_id]
            if users == 1:
                del self._locks[user_id]
            else:
                self._locks[user_id] = (lock, users - 1)
