"""Which boards exist: in Redis for a deployment (every node sees a change within seconds), in
memory for the single process; with a ledger, in PostgreSQL and copied to Redis
(scoreboard/apply/ledger/boards.py). `global` always exists and cannot be changed or removed."""

from __future__ import annotations

import dataclasses
import json
import logging
import time
from collections.abc import Iterable
from typing import Protocol

import redis.asyncio as redis

from scoreboard.boards.model import (
    BOARD_ID_RULE,
    GLOBAL_BOARD,
    GLOBAL_BOARD_ID,
    Board,
    is_board_id,
)
from scoreboard.errors import InvalidRequest, NotFound
from scoreboard.redis_errors import redis_errors_as_unavailable

# How stale a node's list of boards may be: a board created on one node is usable on every node
# this soon (a node that does not know a board reads the list again before answering 404).
REFRESH_SECONDS = 2.0

log = logging.getLogger(__name__)


class BoardStorage(Protocol):
    async def load(self) -> dict[str, Board]: ...

    async def save(self, board: Board) -> None: ...

    async def delete(self, board_id: str) -> bool: ...


class RedisBoardStorage:
    """One hash, board id -> the board's settings as JSON.

    With a ledger it is the copy of PostgreSQL's boards that nodes read, marked complete by a
    key of its own: a Redis that lost the hash lost the mark too (apply/ledger/boards.py).
    """

    def __init__(self, client: redis.Redis, prefix: str) -> None:
        self._client = client
        self._key = f"{prefix}boards"
        self._complete_key = f"{prefix}boards-complete"

    async def load(self) -> dict[str, Board]:
        async with redis_errors_as_unavailable():
            return _decoded(await self._client.hgetall(self._key))

    async def load_complete(self) -> dict[str, Board] | None:
        """The boards if the hash is marked a complete copy, else None (in one round trip)."""
        async with redis_errors_as_unavailable():
            async with self._client.pipeline(transaction=True) as pipe:
                pipe.exists(self._complete_key)
                pipe.hgetall(self._key)
                complete, stored = await pipe.execute()
        return _decoded(stored) if complete else None

    async def replace(self, boards: Iterable[Board]) -> None:
        """Make the hash exactly `boards` and mark it a complete copy, at once."""
        async with redis_errors_as_unavailable():
            async with self._client.pipeline(transaction=True) as pipe:
                pipe.delete(self._key)
                for board in boards:
                    pipe.hset(self._key, board.board_id, _encoded(board))
                pipe.set(self._complete_key, 1)
                await pipe.execute()

    async def save(self, board: Board) -> None:
        async with redis_errors_as_unavailable():
            await self._client.hset(self._key, board.board_id, _encoded(board))

    async def delete(self, board_id: str) -> bool:
        async with redis_errors_as_unavailable():
            return bool(await self._client.hdel(self._key, board_id))


def _encoded(board: Board) -> str:
    settings = dataclasses.asdict(board)
    del settings["board_id"]
    return json.dumps(settings)


def _decoded(stored: dict[bytes | str, bytes | str]) -> dict[str, Board]:
    boards = {}
    for raw_id, raw in stored.items():
        board_id = raw_id.decode() if isinstance(raw_id, bytes) else str(raw_id)
        try:
            boards[board_id] = Board(board_id=board_id, **json.loads(raw))
        except (TypeError, ValueError) as exc:
            log.warning("ignoring stored board %r this version cannot read: %r", board_id, exc)
    return boards


class MemoryBoardStorage:
    def __init__(self) -> None:
        self._boards: dict[str, Board] = {}

    async def load(self) -> dict[str, Board]:
        return dict(self._boards)

    async def save(self, board: Board) -> None:
        self._boards[board.board_id] = board

    async def delete(self, board_id: str) -> bool:
        return self._boards.pop(board_id, None) is not None


class BoardRegistry:
    """The boards of the deployment, read again once REFRESH_SECONDS old."""

    def __init__(self, storage: BoardStorage) -> None:
        self._storage = storage
        self._boards: dict[str, Board] = {}
        self._loaded_at = float("-inf")

    async def get(self, board_id: str) -> Board | None:
        if board_id == GLOBAL_BOARD_ID:
            return GLOBAL_BOARD
        boards = await self._current()
        if board_id not in boards and time.monotonic() - self._loaded_at > 0.1:
            boards = await self._reload()  # created on another node a moment ago?
        return boards.get(board_id)

    async def all(self) -> list[Board]:
        """Every board, `global` first, then by id."""
        boards = await self._current()
        return [GLOBAL_BOARD, *sorted(boards.values(), key=lambda b: b.board_id)]

    def keep_in(self, storage: BoardStorage) -> None:
        """Keep the boards in `storage` from now on: a web node's ledger connects at start-up,
        after the registry is handed to its handlers."""
        self._storage = storage
        self._loaded_at = float("-inf")

    async def put(self, board: Board) -> None:
        await self._storage.save(board)
        self._boards[board.board_id] = board

    async def delete(self, board_id: str) -> bool:
        removed = await self._storage.delete(board_id)
        self._boards.pop(board_id, None)
        return removed

    async def _current(self) -> dict[str, Board]:
        if time.monotonic() - self._loaded_at >= REFRESH_SECONDS:
            return await self._reload()
        return self._boards

    async def _reload(self) -> dict[str, Board]:
        boards = await self._storage.load()
        boards.pop(GLOBAL_BOARD_ID, None)
        self._boards, self._loaded_at = boards, time.monotonic()
        return boards


async def known_board(registry: BoardRegistry, board_id: str) -> Board:
    """The board `board_id` names: InvalidRequest for an id no board can have, else NotFound."""
    if not is_board_id(board_id):
        raise InvalidRequest(BOARD_ID_RULE)
    board = await registry.get(board_id)
    if board is None:
        raise NotFound("Board not found")
    return board
