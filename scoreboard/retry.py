"""Waiting out an outage: retry while a backing service is unavailable."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import TypeVar

from scoreboard.errors import ServiceUnavailable

log = logging.getLogger(__name__)

MAX_RETRY_DELAY_SECONDS = 5.0
T = TypeVar("T")


async def until_available(attempt: Callable[[], Awaitable[T]]) -> T:
    """Call `attempt` until Redis or PostgreSQL answers, backing off up to 5 seconds."""
    delay = 0.1
    while True:
        try:
            return await attempt()
        except ServiceUnavailable as exc:
            log.warning("%s, retrying in %.1fs", exc.message, delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, MAX_RETRY_DELAY_SECONDS)
