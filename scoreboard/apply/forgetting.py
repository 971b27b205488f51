"""Forgetting applied updates once their messages can no longer come back.

An applied update's id is remembered only to skip a redelivery of its message, which can happen
until the broker has processed the message's ack. Forgetting ids then keeps the store's memory
proportional to failures (acks never confirmed keep the 24-hour TTL), not to updates.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence

from scoreboard.errors import ServiceUnavailable

log = logging.getLogger(__name__)

# One round trip to the broker per interval confirms every ack sent before it.
CONFIRM_INTERVAL_SECONDS = 1.0
FINAL_CONFIRM_TIMEOUT_SECONDS = 2.0


class Forgetting:
    """Confirmed ids on their way to the store: carried by the next apply call, or on their own
    when the worker is idle."""

    def __init__(
        self,
        confirm: Callable[[], Awaitable[list[str]]],
        forget: Callable[[Sequence[str]], Awaitable[None]],
        interval: float = CONFIRM_INTERVAL_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._confirm = confirm
        self._forget = forget
        self._interval = interval
        self._clock = clock
        self._confirmed: list[str] = []
        self._taken_at = clock()

    def take(self, limit: int) -> list[str]:
        """Up to `limit` confirmed ids, for an apply call to forget."""
        ids, self._confirmed = self._confirmed[:limit], self._confirmed[limit:]
        self._taken_at = self._clock()
        return ids

    async def run(self) -> None:
        """Confirm acks once an interval, and forget what no apply call took meanwhile."""
        while True:
            await asyncio.sleep(self._interval)
            try:
                self._confirmed += await self._confirm()
                if self._confirmed and self._clock() - self._taken_at >= self._interval:
                    await self._forget_now()
            except Exception:  # never stop forgetting; what is missed expires on its own
                log.exception("forgetting applied ids failed")

    async def finish(self) -> None:
        """On the way out: forget what can still be confirmed."""
        try:
            async with asyncio.timeout(FINAL_CONFIRM_TIMEOUT_SECONDS):
                self._confirmed += await self._confirm()
                await self._forget_now()
        except TimeoutError:
            log.info("%d applied ids left to expire on their own", len(self._confirmed))

    async def _forget_now(self) -> None:
        ids, self._confirmed = self._confirmed, []
        try:
            await self._forget(ids)
        except ServiceUnavailable as exc:
            # Their keys expire on their own, a day later.
            log.warning("could not forget %d applied ids: %s", len(ids), exc.message)
