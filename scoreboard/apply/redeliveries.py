"""Counting redeliveries, so a message that keeps killing workers is set aside (classic queues)."""

from __future__ import annotations

import redis.asyncio as redis

from scoreboard.config.variables import QUEUE_DELIVERY_LIMIT
from scoreboard.redis_errors import redis_errors_as_unavailable

_COUNT_TTL_SECONDS = 24 * 60 * 60


class RedeliveryCounter:
    """Counts in Redis how often each message came back, across all workers.

    A classic queue does not count; a quorum queue does, and dead-letters a message itself past
    its x-delivery-limit, which this counter mirrors: `limit` returns are tried, the next is not.
    """

    def __init__(
        self, client: redis.Redis, prefix: str, limit: int = QUEUE_DELIVERY_LIMIT.default
    ) -> None:
        self._client = client
        self._prefix = f"{prefix}redeliveries:"
        self._limit = limit

    async def exhausted(self, message_ids: list[str]) -> set[str]:
        """Count one more redelivery of each id; return those now past `limit` redeliveries."""
        if not message_ids:
            return set()
        async with redis_errors_as_unavailable():
            async with self._client.pipeline(transaction=False) as pipe:
                for message_id in message_ids:
                    pipe.incr(self._prefix + message_id)
                    pipe.expire(self._prefix + message_id, _COUNT_TTL_SECONDS)
                replies = await pipe.execute()
        counts = replies[::2]
        return {mid for mid, count in zip(message_ids, counts, strict=True) if count > self._limit}
