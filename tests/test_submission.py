"""The write path's bookkeeping: a refused update never counts in another answer's newScore."""

from __future__ import annotations

import asyncio

import pytest

from scoreboard.apply.store.memory_store import MemoryLeaderboardStore
from scoreboard.errors import QueueUnavailable
from scoreboard.intake.idempotency import MemoryIdempotencyRecords
from scoreboard.intake.submission import ScoreSubmission
from scoreboard.models import ScoreUpdate


class FirstPublishFails:
    """A queue whose first publish fails after a while, as when the broker drops a confirm."""

    def __init__(self) -> None:
        self.published: list[ScoreUpdate] = []
        self.failed = False

    async def publish(self, update: ScoreUpdate, priority: int = 0) -> None:
        if not self.failed:
            self.failed = True
            await asyncio.sleep(0.05)
            raise QueueUnavailable()
        self.published.append(update)


async def test_a_concurrent_answer_does_not_count_an_update_that_failed():
    store, queue = MemoryLeaderboardStore(), FirstPublishFails()
    submission = ScoreSubmission(store, queue, MemoryIdempotencyRecords())
    failing = asyncio.create_task(submission.submit(ScoreUpdate.new("alice", "Alice", 5)))
    await asyncio.sleep(0.01)  # the +5 is reserved and waiting for its confirm
    accepted = await submission.submit(ScoreUpdate.new("alice", "Alice", 1))
    with pytest.raises(QueueUnavailable):
        await failing
    assert accepted.new_score == 1
    assert [u.increment for u in queue.published] == [1]


async def test_other_users_are_not_held_up():
    store, queue = MemoryLeaderboardStore(), FirstPublishFails()
    submission = ScoreSubmission(store, queue, MemoryIdempotencyRecords())
    failing = asyncio.create_task(submission.submit(ScoreUpdate.new("alice", "Alice", 5)))
    await asyncio.sleep(0.01)
    accepted = await asyncio.wait_for(submission.submit(ScoreUpdate.new("bob", "Bob", 2)), 0.04)
    assert accepted.new_score == 2
    with pytest.raises(QueueUnavailable):
        await failing


class PublishRaises:
    """A queue whose publish fails with an error that is not an outage (a bug, a cancel)."""

    def __init__(self, failure: BaseException | None) -> None:
        self.failure = failure
        self.published: list[ScoreUpdate] = []

    async def publish(self, update: ScoreUpdate, priority: int = 0) -> None:
        if self.failure is not None:
            failure, self.failure = self.failure, None
            raise failure
        self.published.append(update)


@pytest.mark.parametrize("failure", [TypeError("not serialisable"), asyncio.CancelledError()])
async def test_a_reservation_is_released_whatever_the_publish_raised(store, failure):
    queue = PublishRaises(failure)
    submission = ScoreSubmission(store, queue, MemoryIdempotencyRecords())
    with pytest.raises(type(failure)):
        await submission.submit(ScoreUpdate.new("alice", "Alice", 4))
    accepted = await submission.submit(ScoreUpdate.new("alice", "Alice", 1))
    assert accepted.new_score == 1, "the failed +4 is not in a later answer"
    assert [u.increment for u in queue.published] == [1]


async def test_an_update_that_cannot_be_queued_reserves_nothing(store):
    queue = PublishRaises(None)
    submission = ScoreSubmission(store, queue, MemoryIdempotencyRecords())
    with pytest.raises(TypeError):
        await submission.submit(ScoreUpdate.new("alice", "S\ud800", 4))
    assert (await submission.submit(ScoreUpdate.new("alice", "Alice", 1))).new_score == 1
    assert [u.increment for u in queue.published] == [1]
