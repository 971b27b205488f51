"""Taking from several priority levels: higher levels overtake, the lowest still moves."""

from __future__ import annotations

from collections import Counter, deque

from scoreboard.queue.priority_levels import WeightedLevels


def backlog(**levels: int) -> dict[int, deque[str]]:
    """Inboxes of messages named '<level>-<n>', e.g. backlog(p5=3, p0=2)."""
    return {
        int(name[1:]): deque(f"{name[1:]}-{n}" for n in range(count))
        for name, count in levels.items()
    }


def level_of(message: str) -> int:
    return int(message.split("-")[0])


def test_under_a_backlog_of_both_the_higher_level_takes_six_of_every_seven():
    inboxes = backlog(p5=600, p0=600)
    taken = WeightedLevels().take(inboxes, 700)
    assert Counter(map(level_of, taken)) == {5: 600, 0: 100}


def test_the_higher_level_overtakes_yet_the_lowest_level_moves_in_every_batch():
    inboxes = backlog(p5=60, p0=60)
    levels = WeightedLevels()
    batches = [levels.take(inboxes, 10) for _ in range(12)]
    with_premium = [i for i, batch in enumerate(batches) if 5 in map(level_of, batch)]
    # (a) the 60 premium updates are through in 7 batches, 10 free ones beside them
    assert with_premium == list(range(7))
    # (b) yet no batch goes without free updates while free ones wait
    assert all(0 in map(level_of, batch) for batch in batches)
    assert not inboxes[0] and not inboxes[5]


def test_each_level_is_taken_in_its_own_order():
    inboxes = backlog(p9=5, p3=5, p0=5)
    taken = WeightedLevels().take(inboxes, 15)
    for level in (9, 3, 0):
        assert [m for m in taken if level_of(m) == level] == [f"{level}-{n}" for n in range(5)]


def test_a_batch_opens_with_the_highest_level_waiting():
    assert WeightedLevels().take(backlog(p0=3, p2=3, p7=3), 1) == ["7-0"]


def test_a_level_with_nothing_waiting_leaves_its_share_to_the_others():
    inboxes = backlog(p5=2, p0=20)
    taken = WeightedLevels().take(inboxes, 12)
    assert Counter(map(level_of, taken)) == {5: 2, 0: 10}


def test_an_idle_level_saves_up_no_burst():
    levels = WeightedLevels()
    inboxes = backlog(p5=0, p0=50)
    levels.take(inboxes, 40)  # level 5 idle all along
    inboxes[5].extend(f"5-{n}" for n in range(50))
    taken = levels.take(inboxes, 14)
    assert Counter(map(level_of, taken)) == {5: 12, 0: 2}


def test_three_levels_share_by_weight():
    inboxes = backlog(p5=1000, p2=1000, p0=1000)
    taken = WeightedLevels().take(inboxes, 1000)
    shares = Counter(map(level_of, taken))
    # weights 6 : 3 : 1
    assert abs(shares[5] - 600) <= 1 and abs(shares[2] - 300) <= 1 and abs(shares[0] - 100) <= 1
