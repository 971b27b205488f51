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

    async def publish_group(self, updates: list[ScoreUpdate], priority: int = 0) -> None:
        if not self.failed:
            self.failed = True
            await asyncio.sleep(0.05)
            raise QueueUnavailable()
        self.published.extend(updates)


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


async def test_an_update_arriving_during_a_failing_publish_goes_in_the_next_message():
    store, queue = MemoryLeaderboardStore(), FirstPublishFails()
    submission = ScoreSubmission(store, queue, MemoryIdempotencyRecords())
    failing = asyncio.create_task(submission.submit(ScoreUpdate.new("alice", "Alice", 5)))
    await asyncio.sleep(0.01)
    accepted = await submission.submit(ScoreUpdate.new("bob", "Bob", 2))
    assert accepted.new_score == 2
    with pytest.raises(QueueUnavailable):
        await failing
    assert [u.user_id for u in queue.published] == ["bob"]


class RecordsMessages:
    """A queue that keeps each published message (a group of updates and its priority)."""

    def __init__(self, confirm_seconds: float = 0.005) -> None:
        self.messages: list[tuple[int, list[ScoreUpdate]]] = []
        self.confirm_seconds = confirm_seconds

    async def publish_group(self, updates: list[ScoreUpdate], priority: int = 0) -> None:
        await asyncio.sleep(self.confirm_seconds)  # the broker's confirm takes a moment
        self.messages.append((priority, list(updates)))


async def test_concurrent_updates_share_messages_that_never_mix_priorities():
    store, queue = MemoryLeaderboardStore(), RecordsMessages()
    submission = ScoreSubmission(store, queue, MemoryIdempotencyRecords())
    updates = [ScoreUpdate.new(f"user-{n}", f"User {n}", n + 1) for n in range(60)]
    answers = await asyncio.gather(
        *(submission.submit(update, priority=n % 3) for n, update in enumerate(updates))
    )
    assert [a.new_score for a in answers] == [u.increment for u in updates]
    published = [u for _, group in queue.messages for u in group]
    assert sorted(u.message_id for u in published) == sorted(u.message_id for u in updates)
    assert len(queue.messages) < len(updates) / 5, "one message carries many updates"
    for priority, group in queue.messages:
        assert {updates.index(u) % 3 for u in group} == {priority}


async def test_a_lone_update_is_published_at_once():
    store, queue = MemoryLeaderboardStore(), RecordsMessages(confirm_seconds=0)
    submission = ScoreSubmission(store, queue, MemoryIdempotencyRecords())
    answer = await asyncio.wait_for(submission.submit(ScoreUpdate.new("solo", "Solo", 3)), 0.5)
    assert answer.new_score == 3
    assert [[u.user_id for u in group] for _, group in queue.messages] == [["solo"]]


class PublishRaises:
    """A queue whose publish fails with an error that is not an outage (a bug, a cancel)."""

    def __init__(self, failure: BaseException | None) -> None:
        self.failure = failure
        self.published: list[ScoreUpdate] = []

    async def publish_group(self, updates: list[ScoreUpdate], priority: int = 0) -> None:
        if self.failure is not None:
            failure, self.failure = self.failure, None
            raise failure
        self.published.extend(updates)


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
