"""Group commit: a quiet node sends at once, a busy one lets groups fill, failures stay apart."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest

from scoreboard.group_commit import GroupCommit


class Recorder:
    """A commit that takes `seconds` and remembers each group it was handed."""

    def __init__(self, seconds: float = 0.0) -> None:
        self.groups: list[list[int]] = []
        self.seconds = seconds

    async def commit(self, items: Sequence[int]) -> list[int | BaseException]:
        self.groups.append(list(items))
        await asyncio.sleep(self.seconds)
        return [ValueError(item) if item < 0 else item * 10 for item in items]


async def test_a_lone_item_on_a_quiet_node_is_sent_at_once_even_with_a_wait():
    recorder = Recorder()
    commits = GroupCommit(recorder.commit, linger_seconds=0.5)
    assert await asyncio.wait_for(commits.submit(1), 0.1) == 10
    await asyncio.sleep(0.6)  # quiet again
    assert await asyncio.wait_for(commits.submit(2), 0.1) == 20
    assert recorder.groups == [[1], [2]]


async def test_a_busy_node_lets_the_next_group_fill_for_the_wait():
    recorder = Recorder()
    commits = GroupCommit(recorder.commit, linger_seconds=0.05)
    first = asyncio.create_task(commits.submit(1))
    await asyncio.sleep(0.01)  # the first group went; these trickle in one by one
    rest = []
    for item in range(2, 6):
        rest.append(asyncio.create_task(commits.submit(item)))
        await asyncio.sleep(0.005)
    assert await asyncio.gather(first, *rest) == [10, 20, 30, 40, 50]
    assert recorder.groups == [[1], [2, 3, 4, 5]]


async def test_without_a_wait_only_what_queued_during_the_previous_call_goes_together():
    recorder = Recorder(seconds=0.02)
    commits = GroupCommit(recorder.commit)
    results = await asyncio.gather(*(commits.submit(item) for item in range(1, 5)))
    assert results == [10, 20, 30, 40]
    assert recorder.groups == [[1, 2, 3, 4]]


async def test_a_refused_item_fails_alone_and_a_failed_call_fails_its_whole_group():
    recorder = Recorder()
    commits = GroupCommit(recorder.commit)
    outcomes = await asyncio.gather(
        commits.submit(1), commits.submit(-2), commits.submit(3), return_exceptions=True
    )
    assert outcomes[0] == 10 and outcomes[2] == 30
    assert isinstance(outcomes[1], ValueError)

    async def broken(items: Sequence[int]) -> list[int]:
        raise ConnectionError("down")

    failing = GroupCommit(broken)
    with pytest.raises(ConnectionError):
        await failing.submit(1)
