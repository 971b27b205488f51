"""Which season of a board is live and since when: read here, in Redis or in memory.

In Redis the number is `current_season_key` (absent: 1) and the start is `season-started` under
the board's prefix, an ISO 8601 time set when the board is created.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

import redis.asyncio as redis

from scoreboard.boards.keys import board_prefix, current_season_key
from scoreboard.redis_errors import redis_errors_as_unavailable

FIRST_SEASON = 1


@dataclass(frozen=True)
class Season:
    number: int
    started_at: datetime | None  # None: not recorded (`global`, or a board from before seasons)


class Seasons(Protocol):
    async def current(self, board_id: str) -> Season: ...

    async def numbers(self, board_ids: Sequence[str]) -> list[int]:
        """The live season number of each board, in one read."""
        ...

    async def begin(self, board_id: str, at: datetime) -> None:
        """A new board's first season starts `at`."""
        ...

    async def forget(self, board_id: str) -> None: ...


def _started_key(prefix: str, board_id: str) -> str:
    return f"{board_prefix(prefix, board_id)}season-started"


def _number(raw: bytes | str | None) -> int:
    return FIRST_SEASON if raw is None else int(raw)


class RedisSeasons:
    def __init__(self, client: redis.Redis, prefix: str) -> None:
        self._client = client
        self._prefix = prefix

    async def current(self, board_id: str) -> Season:
        keys = [current_season_key(self._prefix, board_id), _started_key(self._prefix, board_id)]
        async with redis_errors_as_unavailable():
            number, started = await self._client.mget(keys)
        at = None if started is None else datetime.fromisoformat(_text(started))
        return Season(_number(number), at)

    async def numbers(self, board_ids: Sequence[str]) -> list[int]:
        keys = [current_season_key(self._prefix, board_id) for board_id in board_ids]
        async with redis_errors_as_unavailable():
            return [_number(raw) for raw in await self._client.mget(keys)]

    async def begin(self, board_id: str, at: datetime) -> None:
        # NX: when two nodes create the same board at once, the first start stands.
        async with redis_errors_as_unavailable():
            await self._client.set(_started_key(self._prefix, board_id), at.isoformat(), nx=True)

    async def forget(self, board_id: str) -> None:
        keys = [current_season_key(self._prefix, board_id), _started_key(self._prefix, board_id)]
        async with redis_errors_as_unavailable():
            await self._client.unlink(*keys)


class MemorySeasons:
    """The single process's seasons: every board stays in its first one for now."""

    def __init__(self) -> None:
        self._started: dict[str, datetime] = {}

    async def current(self, board_id: str) -> Season:
        return Season(FIRST_SEASON, self._started.get(board_id))

    async def numbers(self, board_ids: Sequence[str]) -> list[int]:
        return [FIRST_SEASON] * len(board_ids)

    async def begin(self, board_id: str, at: datetime) -> None:
        self._started.setdefault(board_id, at)

    async def forget(self, board_id: str) -> None:
        self._started.pop(board_id, None)


def _text(raw: bytes | str) -> str:
    return raw.decode() if isinstance(raw, bytes) else raw
