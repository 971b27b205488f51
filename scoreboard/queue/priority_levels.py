"""Taking a batch from several priority levels: higher levels first, yet every level a share.

With one quorum queue per priority level, the worker holds messages of every level and chooses
which go into the next batch. Strict priority would leave the lowest tier waiting for as long
as a higher one has a backlog; here a level with messages waiting weighs its priority plus one,
and over consecutive picks each waiting level gets its weight's share (smooth weighted round
robin): with levels 5 and 0 both backed up, six of every seven messages are level 5's, the
seventh level 0's, and a level that has nothing waiting leaves its share to the others.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from typing import TypeVar

T = TypeVar("T")


def weight(level: int) -> int:
    return level + 1


class WeightedLevels:
    """Picks messages from per-level inboxes, each waiting level in proportion to its weight."""

    def __init__(self) -> None:
        self._credit: dict[int, int] = {}

    def take(self, inboxes: Mapping[int, deque[T]], limit: int) -> list[T]:
        """Up to `limit` messages, each from the front of its level's inbox (FIFO per level)."""
        taken: list[T] = []
        while len(taken) < limit:
            waiting = [level for level, inbox in inboxes.items() if inbox]
            if not waiting:
                break
            for level in inboxes:
                if level not in waiting:
                    self._credit[level] = 0  # an idle level saves up no burst for later
            total = 0
            for level in waiting:
                self._credit[level] = self._credit.get(level, 0) + weight(level)
                total += weight(level)
            # Ties go to the higher level: a batch opens with the most important messages.
            chosen = max(waiting, key=lambda level: (self._credit[level], level))
            self._credit[chosen] -= total
            taken.append(inboxes[chosen].popleft())
        return taken
