"""The board in Redis: every change is one Lua script, so it is atomic across processes."""

from __future__ import annotations

import json
from collections.abc import Sequence
from importlib import resources

import redis.asyncio as redis
from redis.commands.core import AsyncScript
from redis.exceptions import ResponseError

from scoreboard.errors import ScoreOverflow, UpdateRejected
from scoreboard.models import TOP_N, Leaderboard, LeaderboardEntry, ScoreUpdate
from scoreboard.redis_errors import redis_errors_as_unavailable
from scoreboard.store import DEDUPLICATION_TTL_SECONDS


def _load_script(client: redis.Redis, name: str) -> AsyncScript:
    source = resources.files("scoreboard.store").joinpath("lua", name).read_text()
    return client.register_script(source)


def decode_top(encoded: bytes | str | None, version: int) -> Leaderboard:
    """Turn the JSON the apply script stores ([[userId, username, score], …]) into a Leaderboard."""
    rows = json.loads(encoded) if encoded else []
    # cjson encodes an empty Lua table as {}.
    entries = tuple(
        LeaderboardEntry(user_id=user, username=name, score=int(score))
        for user, name, score in (rows if isinstance(rows, list) else [])
    )
    return Leaderboard(version=version, top=entries)


class RedisLeaderboardStore:
    """LeaderboardStore on Redis, every key under `prefix` so deployments can share a server."""

    def __init__(self, client: redis.Redis, prefix: str) -> None:
        self._client = client
        self._keys = _Keys(prefix)
        self._reserve = _load_script(client, "reserve.lua")
        self._release = _load_script(client, "release.lua")
        self._apply = _load_script(client, "apply.lua")

    async def reserve(self, update: ScoreUpdate, max_total: int) -> int:
        keys = self._keys
        async with redis_errors_as_unavailable():
            total = await self._reserve(
                keys=[keys.accepted, keys.members, keys.board],
                args=[update.user_id, update.increment, max_total],
            )
        if total < 0:
            raise ScoreOverflow()
        return int(total)

    async def release(self, update: ScoreUpdate) -> bool:
        async with redis_errors_as_unavailable():
            released = await self._release(
                keys=[self._keys.dedup(update.message_id), self._keys.accepted],
                args=[update.user_id, update.increment, DEDUPLICATION_TTL_SECONDS],
            )
        return bool(released)

    async def apply(self, updates: Sequence[ScoreUpdate]) -> Leaderboard | None:
        if not updates:
            return None
        keys = self._keys
        args: list[str | int] = [keys.dedup(""), DEDUPLICATION_TTL_SECONDS, TOP_N]
        for update in updates:
            args += [update.message_id, update.user_id, update.username, update.increment]
        try:
            async with redis_errors_as_unavailable():
                result = await self._apply(
                    keys=[keys.board, keys.members, keys.names, keys.seq, keys.version, keys.top],
                    args=args,
                )
        except ResponseError as exc:
            raise UpdateRejected(str(exc)) from exc
        if int(result[0]) < 0:
            bad = updates[int(result[1])]
            raise UpdateRejected(f"inconsistent board state for user {bad.user_id!r}")
        version = int(result[1])
        if version == 0:
            return None
        return decode_top(result[2], version)

    async def leaderboard(self) -> Leaderboard:
        async with redis_errors_as_unavailable():
            version, encoded = await self._client.mget([self._keys.version, self._keys.top])
        return decode_top(encoded, int(version or 0))


class _Keys:
    """Names of every Redis key the store uses."""

    def __init__(self, prefix: str) -> None:
        self.board = f"{prefix}board"
        self.members = f"{prefix}members"
        self.names = f"{prefix}names"
        self.accepted = f"{prefix}accepted"
        self.seq = f"{prefix}seq"
        self.version = f"{prefix}version"
        self.top = f"{prefix}top"
        self._dedup_prefix = f"{prefix}msg:"

    def dedup(self, message_id: str) -> str:
        return self._dedup_prefix + message_id
