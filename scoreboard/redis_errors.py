"""What a Redis failure means to a caller: the store is unavailable, try again later."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import OutOfMemoryError, ReadOnlyError
from redis.exceptions import TimeoutError as RedisTimeoutError

from scoreboard.errors import StoreUnavailable

# Failures that pass: lost connections, a replica promoted, memory freed.
TRANSIENT_REDIS_ERRORS = (
    RedisConnectionError,
    RedisTimeoutError,
    ReadOnlyError,
    OutOfMemoryError,
    OSError,
)


@asynccontextmanager
async def redis_errors_as_unavailable() -> AsyncIterator[None]:
    """Raise StoreUnavailable for a transient Redis failure inside the block."""
    try:
        yield
    except TRANSIENT_REDIS_ERRORS as exc:
        raise StoreUnavailable() from exc
