"""The Redis client of a process: a pool that is sized and waited on, not one that fails.

redis-py's default pool refuses a command with MaxConnectionsError the moment more are in flight
than it holds: under load a healthy Redis looked down and requests got 503. A blocking pool makes
a request wait for a free connection; only a wait past REDIS_POOL_TIMEOUT_SECONDS, when Redis no
longer keeps up, turns into 503.
"""

from __future__ import annotations

import redis.asyncio as redis

from scoreboard.config import Settings


def redis_client(url: str, settings: Settings) -> redis.Redis:
    """A client on a blocking pool of REDIS_MAX_CONNECTIONS connections to `url`."""
    pool = redis.BlockingConnectionPool.from_url(
        url,
        max_connections=settings.redis_max_connections,
        timeout=settings.redis_pool_timeout_seconds,
    )
    return redis.Redis(connection_pool=pool)
