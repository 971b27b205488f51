"""Accepting a score update: reserve its newScore, queue it, and settle a failed publish."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from scoreboard.apply.store import LeaderboardStore
from scoreboard.config import MAX_SAFE_INTEGER
from scoreboard.errors import QueueUnavailable, StoreUnavailable
from scoreboard.intake.idempotency import IdempotencyRecords, IdempotentRequest
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
    ) -> None:
        self._store = store
        self._publisher = publisher
        self._records = records
        self._metrics = metrics
        self._one_per_user = _PerUserLocks()

    async def submit(
        self,
        update: ScoreUpdate,
        idempotent: IdempotentRequest | None = None,
        priority: int = 0,
    ) -> Accepted:
        """Queue `update` durably and return the score it leads to, at most once per key."""
        if idempotent is None:
            return Accepted(await self._queue(update, priority))
        first_answer = await self._records.claim(idempotent)
        if first_answer is not None:
            return Accepted(first_answer, replayed=True)
        try:
            new_score = await self._queue(update, priority)
        except BaseException:
            await self._records.abandon(idempotent)
            raise
        try:
            await self._records.complete(idempotent, new_score)
        except StoreUnavailable:
            # The update is queued: answer 200. A retry finds the key in flight (409), never twice.
            log.warning("could not record the answer for an Idempotency-Key of %s", update.user_id)
        return Accepted(new_score)

    async def _queue(self, update: ScoreUpdate, priority: int) -> int:
        # Encoded before anything is reserved: what cannot be queued leaves no trace.
        update.message  # noqa: B018
        # One update per user in flight on this node: should its publish fail and be cancelled,
        # no later answer for that user has counted it in its newScore.
        async with self._one_per_user.hold(update.user_id):
            new_score = await self._store.reserve(update, MAX_SAFE_INTEGER)
            try:
                await self._publisher.publish(update, priority)
            except BaseException as failure:
                # Whatever failed, the broker may or may not hold the message: release() settles
                # it, and when a worker applied it already the update stands with its answer.
                applied = not await self._store.release(update)
                if not applied or isinstance(failure, asyncio.CancelledError):
                    raise
                if not isinstance(failure, QueueUnavailable):
                    log.exception("publish failed after the update was applied")
        if self._metrics is not None:
            self._metrics.updates_accepted.inc()
        return new_score


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
