"""Load shedding: past MAX_UPDATES_IN_FLIGHT updates under way, a web node answers 503 at once.

A node that takes every request lets each answer wait longer as load grows, until clients time
out and retry, which adds load. Refusing the excess at once, with Retry-After, keeps the answers
it does give fast and tells clients plainly that the node is busy, not down.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from prometheus_client import Counter

from scoreboard.errors import Overloaded


class InFlightLimit:
    """Counts the updates a node works on; refuses one more than `limit`."""

    def __init__(self, limit: int, shed: Counter | None = None) -> None:
        self._limit = limit
        self._shed = shed
        self.in_flight = 0

    @contextmanager
    def admit(self) -> Iterator[None]:
        """Hold one place for the block; Overloaded when there is none."""
        if self.in_flight >= self._limit:
            if self._shed is not None:
                self._shed.inc()
            raise Overloaded()
        self.in_flight += 1
        try:
            yield
        finally:
            self.in_flight -= 1
