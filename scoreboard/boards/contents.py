"""What a board holds beyond its settings: whether it has scores, and removing all it keeps."""

from __future__ import annotations

import re
from typing import Protocol

import redis.asyncio as redis

from scoreboard.apply.store.memory_store import MemoryLeaderboardStore
from scoreboard.apply.store.redis_store import RedisLeaderboardStore
from scoreboard.boards.keys import board_prefix
from scoreboard.boards.model import GLOBAL_BOARD_ID, Board
from scoreboard.redis_errors import redis_errors_as_unavailable

REMOVAL_BATCH = 500  # keys per SCAN step and per UNLINK
_GLOB_SPECIAL = re.compile(r"[\\*?\[\]]")  # what SCAN MATCH reads as a pattern, not a letter


class BoardContents(Protocol):
    async def user_count(self, board_id: str, season: int) -> int:
        """Users with a score in this season of the board."""
        ...

    async def remove(self, board_id: str) -> int:
        """Remove everything the board keeps (never `global`'s); how many keys went."""
        ...


class RedisBoardContents:
    def __init__(self, client: redis.Redis, prefix: str) -> None:
        self._client = client
        self._prefix = prefix

    async def user_count(self, board_id: str, season: int) -> int:
        store = RedisLeaderboardStore(self._client, self._prefix)
        return await store.for_board(Board(board_id, board_id), season).user_count()

    async def remove(self, board_id: str) -> int:
        if board_id == GLOBAL_BOARD_ID:  # its keys are the deployment's own
            raise ValueError("the global board's keys are never removed")
        return await remove_keys_under(self._client, board_prefix(self._prefix, board_id))


class MemoryBoardContents:
    """The single process's boards, in its memory store."""

    def __init__(self, store: MemoryLeaderboardStore) -> None:
        self._store = store

    async def user_count(self, board_id: str, season: int) -> int:
        kept = self._store.kept_for(board_id, season)
        return 0 if kept is None else kept.user_count()

    async def remove(self, board_id: str) -> int:
        if board_id == GLOBAL_BOARD_ID:
            raise ValueError("the global board is never removed")
        return self._store.drop_board(board_id)


async def remove_keys_under(client: redis.Redis, prefix: str) -> int:
    """UNLINK every key starting with `prefix`, in batches, without blocking Redis."""
    removed = 0
    match = _GLOB_SPECIAL.sub(r"\\\g<0>", prefix) + "*"
    async with redis_errors_as_unavailable():
        batch = []
        async for key in client.scan_iter(match=match, count=REMOVAL_BATCH):
            batch.append(key)
            if len(batch) == REMOVAL_BATCH:
                removed += await client.unlink(*batch)
                batch = []
        if batch:
            removed += await client.unlink(*batch)
    return removed
