"""Which write limit applies to a user: their tier's, unless an admin changed it at runtime."""

from __future__ import annotations

import json
import logging
import time
from typing import Protocol

import limits
import redis.asyncio as redis

from scoreboard.errors import InvalidRequest
from scoreboard.intake import identities
from scoreboard.redis_errors import redis_errors_as_unavailable

DEFAULT_TIER = "default"  # the override key for users whose tier has no limit of its own
REFRESH_SECONDS = 2.0  # how stale an override may be on a node: changes reach all nodes this fast
# What the moving window on Redis can hold: its Lua script indexes a list up to the amount, and
# the key expires after the window; beyond these the script fails on every request.
MAX_RATE_LIMIT_AMOUNT = 1_000_000_000
MAX_RATE_LIMIT_WINDOW_SECONDS = 24 * 60 * 60
RATE_LIMIT_EXAMPLE = "100/minute"

log = logging.getLogger(__name__)


def checked_rate_limit(text: str) -> str:
    """`text` when it is one limit the store can enforce ('100/minute'); ValueError says why."""
    try:
        items = limits.parse_many(text)
    except ValueError:
        items = []
    if len(items) != 1:
        raise ValueError(f"not a rate limit such as {RATE_LIMIT_EXAMPLE!r}: {text!r}")
    item = items[0]
    if not 1 <= item.amount <= MAX_RATE_LIMIT_AMOUNT:
        raise ValueError(f"a rate limit allows 1 to {MAX_RATE_LIMIT_AMOUNT} requests: {text!r}")
    if not 1 <= item.get_expiry() <= MAX_RATE_LIMIT_WINDOW_SECONDS:
        raise ValueError(f"a rate limit's window is at most one day: {text!r}")
    return text


class OverrideStore(Protocol):
    """Where runtime overrides live: Redis for a deployment, memory for the single process."""

    async def load(self) -> dict[str, str]: ...

    async def save(self, overrides: dict[str, str]) -> None: ...


class RedisOverrideStore:
    def __init__(self, client: redis.Redis, prefix: str) -> None:
        self._client = client
        self._key = f"{prefix}rate-limit-overrides"

    async def load(self) -> dict[str, str]:
        async with redis_errors_as_unavailable():
            raw = await self._client.get(self._key)
        return _usable(json.loads(raw)) if raw else {}

    async def save(self, overrides: dict[str, str]) -> None:
        async with redis_errors_as_unavailable():
            await self._client.set(self._key, json.dumps(overrides))


def _usable(stored: object) -> dict[str, str]:
    """The stored overrides this version can enforce; others (saved by an older one) are logged."""
    usable: dict[str, str] = {}
    for tier, limit in (stored if isinstance(stored, dict) else {"?": stored}).items():
        try:
            usable.update(validate_overrides({tier: limit}))
        except InvalidRequest as exc:
            log.warning("ignoring a stored rate limit override: %s", exc.message)
    return usable


class MemoryOverrideStore:
    def __init__(self) -> None:
        self._overrides: dict[str, str] = {}

    async def load(self) -> dict[str, str]:
        return dict(self._overrides)

    async def save(self, overrides: dict[str, str]) -> None:
        self._overrides = dict(overrides)


def validate_overrides(overrides: object) -> dict[str, str]:
    """An admin's overrides as tier -> limit; InvalidRequest says what is wrong."""
    if not isinstance(overrides, dict):
        raise InvalidRequest("Rate limit overrides must be a JSON object of tier to limit")
    checked = {}
    for tier, limit in overrides.items():
        if identities.tier(tier) != tier or not isinstance(limit, str):
            raise InvalidRequest(
                f"Each override must map a tier to a limit such as {RATE_LIMIT_EXAMPLE!r}"
            )
        try:
            checked[tier] = checked_rate_limit(limit)
        except ValueError as exc:
            raise InvalidRequest(f"Rate limit override for {tier!r}: {exc}") from None
    return checked


class RatePolicy:
    """A tier's limit: its override, RATE_LIMITS, the default override, then RATE_LIMIT."""

    def __init__(
        self, default_limit: str, tier_limits: dict[str, str], overrides: OverrideStore
    ) -> None:
        self._default = default_limit
        self._tiers = tier_limits
        self._store = overrides
        self._cached: dict[str, str] = {}
        self._loaded_at = float("-inf")

    async def limit_for(self, tier: str | None) -> str:
        overrides = await self.overrides()
        if tier is not None and tier in overrides:
            return overrides[tier]
        if tier is not None and tier in self._tiers:
            return self._tiers[tier]
        return overrides.get(DEFAULT_TIER, self._default)

    async def overrides(self) -> dict[str, str]:
        """The runtime overrides, read again once they are REFRESH_SECONDS old."""
        if time.monotonic() - self._loaded_at >= REFRESH_SECONDS:
            self._cached = await self._store.load()
            self._loaded_at = time.monotonic()
        return self._cached

    async def replace_overrides(self, overrides: dict[str, str]) -> None:
        await self._store.save(overrides)
        self._cached, self._loaded_at = dict(overrides), time.monotonic()

    def configured(self) -> dict[str, str]:
        return {DEFAULT_TIER: self._default, **self._tiers}
