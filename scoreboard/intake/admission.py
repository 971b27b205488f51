"""Load shedding: past MAX_UPDATES_IN_FLIGHT updates under way, a web node answers 503 at once.

A node that takes every request lets each answer wait longer as load grows, until clients time
out and retry, which adds load. Refusing the excess at once, with Retry-After, keeps the answers
it does give fast and tells clients plainly that the node is busy, not down.

Refusing still costs a node something for every request it reads, and a client that does not
wait before it tries again would keep the node busy refusing, starving the updates it did admit
(measured: 8,000 updates/s offered to a node that takes about 6,500 left it accepting 700/s).
So the node also keeps to the Retry-After it asks for: it reads nothing more from a refused
connection for that long, and the waiting requests stay with the client's socket and the kernel.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager
from typing import cast

from prometheus_client import Counter

from scoreboard.errors import Overloaded


class InFlightLimit:
    """Counts the updates a node works on; refuses one more than `limit`."""

    def __init__(self, limit: int, shed: Counter | None = None) -> None:
        self._limit = limit
        self._shed = shed
        self.in_flight = 0

    @contextmanager
    def admit(self, connection: asyncio.BaseTransport | None = None) -> Iterator[None]:
        """Hold one place for the block; Overloaded when there is none.

        When refused, `connection` (the request's transport) is not read for Retry-After.
        """
        if self.in_flight >= self._limit:
            if self._shed is not None:
                self._shed.inc()
            refusal = Overloaded()
            pause_reading(connection, refusal.retry_after)
            raise refusal
        self.in_flight += 1
        try:
            yield
        finally:
            self.in_flight -= 1


def pause_reading(connection: asyncio.BaseTransport | None, seconds: float) -> None:
    """Read nothing more from `connection` for `seconds`; what it sends waits in its socket.

    A connection the HTTP server paused itself (its buffer is full) is left to it.
    """
    # uvloop's transports have the methods without registering as asyncio.ReadTransport.
    if connection is None or not hasattr(connection, "is_reading"):
        return
    readable = cast(asyncio.ReadTransport, connection)
    if readable.is_closing() or not readable.is_reading():
        return
    readable.pause_reading()
    asyncio.get_running_loop().call_later(seconds, _resume_reading, readable)


def _resume_reading(connection: asyncio.ReadTransport) -> None:
    if not connection.is_closing() and not connection.is_reading():
        connection.resume_reading()
