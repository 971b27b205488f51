"""At most one log line per interval for an event anyone can repeat at will, counting the rest."""

from __future__ import annotations

import time
from collections.abc import Callable


class LogThrottle:
    """Says when to log: the first event at once, then at most one line every `interval` seconds."""

    def __init__(self, interval: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._interval = interval
        self._clock = clock
        self._quiet_until: float | None = None
        self._suppressed = 0

    def admit(self) -> int | None:
        """None: stay quiet this time. Else log now: how many events went unlogged before it."""
        now = self._clock()
        if self._quiet_until is not None and now < self._quiet_until:
            self._suppressed += 1
            return None
        self._quiet_until = now + self._interval
        suppressed, self._suppressed = self._suppressed, 0
        return suppressed
