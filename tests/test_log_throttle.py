"""The log throttle: the first event logs, then one line per interval that counts the rest."""

from __future__ import annotations

from scoreboard.ops.log_throttle import LogThrottle


class Clock:
    """A clock that moves only when the test says so."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_one_line_per_interval_counting_the_events_kept_quiet():
    clock = Clock()
    throttle = LogThrottle(60.0, clock)
    assert throttle.admit() == 0
    assert [throttle.admit() for _ in range(5)] == [None] * 5
    clock.now += 59.9
    assert throttle.admit() is None
    clock.now += 0.1
    assert throttle.admit() == 6
    clock.now += 30
    assert throttle.admit() is None
    clock.now += 600
    assert throttle.admit() == 1
    assert throttle.admit() is None
