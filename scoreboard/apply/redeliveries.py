"""Counting redeliveries, so a message that keeps killing workers is set aside."""

from __future__ import annotations

import redis.asyncio as redis

from scoreboard.redis_errors import redis_errors_as_unavailable

MAX_REDELIVERIES = 5
_COUNT_TTL_SECONDS = 24 * 60 * 60


class RedeliveryCounter:
    """Counts in Redis how often each message came back, across all workers."""

    def __init__(self, client: redis.Redis, prefix: str, limit: int = MAX_REDELIVERIES) -> None:
        self._client = client
        self._prefix = f"{prefix}redeliveries:"
        self._limit = limit

    async def exhausted(self, message_ids: list[str]) -> set[str]:
        """Count one more redelivery of each id; return those redelivered `limit` times."""
        if not message_ids:
            return set()
        async with redis_errors_as_unavailable():
            async with self._client.pipeline(transaction=False) as pipe:
                for message_id in message_ids:
                    pipe.incr(self._prefix + message_id)
                    pipe.expire(self._prefix + message_id, _COUNT_TTL_SECONDS)
                replies = await pipe.execute()
        counts = replies[::2]
        return {mid for mid, count in zip(message_ids, counts, strict=True) if count >= self._limit}
