"""Per-user rate limits with the `limits` library; on Redis they hold across all web nodes."""

from __future__ import annotations

import functools
import math
import time
from dataclasses import dataclass
from typing import Any

import limits
import redis.asyncio as redis
from limits.aio.storage import MemoryStorage, RedisStorage, Storage
from limits.aio.strategies import MovingWindowRateLimiter

from scoreboard.errors import RateLimited
from scoreboard.redis_errors import redis_errors_as_unavailable


def rate_limit_storage(client: redis.Redis | None, key_prefix: str) -> Storage:
    """Storage on the deployment's Redis (sharing `client`'s connections), else in memory.

    The shared pool decides where the connections go (a plain server, or Sentinel's current
    primary: scoreboard/redis_connection.py), so the URL handed to `limits` names no server.
    """
    if client is None:
        return MemoryStorage()
    # limits types its options as scalars, but redis-py takes the shared pool as one of them.
    options: dict[str, Any] = {"connection_pool": client.connection_pool}
    return RedisStorage(
        "async+redis://",
        implementation="redispy",
        key_prefix=f"{key_prefix}ratelimit",
        **options,
    )


@dataclass(frozen=True)
class RateWindow:
    """A moving-window limit ('100/minute') as the reservation script counts it."""

    text: str
    amount: int
    milliseconds: int


@functools.lru_cache(maxsize=64)
def rate_window(limit: str) -> RateWindow:
    item = limits.parse(limit)
    return RateWindow(limit, item.amount, item.get_expiry() * 1000)


class UserRateLimiter:
    """A moving-window limit (e.g. '100/minute') per user for one kind of request."""

    def __init__(self, storage: Storage, limit: str, scope: str) -> None:
        self._limiter = MovingWindowRateLimiter(storage)
        self._item = limits.parse(limit)
        self._scope = scope

    async def check(self, user_id: str, limit: str | None = None) -> None:
        """Count one request by `user_id`; RateLimited when over `limit` (else the default)."""
        item = self._item if limit is None else _parsed(limit)
        async with redis_errors_as_unavailable():
            if await self._limiter.hit(item, self._scope, user_id):
                return
            stats = await self._limiter.get_window_stats(item, self._scope, user_id)
        raise RateLimited(retry_after=max(1, math.ceil(stats.reset_time - time.time())))


@functools.lru_cache(maxsize=64)
def _parsed(limit: str) -> limits.RateLimitItem:
    return limits.parse(limit)
