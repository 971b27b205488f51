"""Reading the users' scores back: from a fresh socket snapshot, or every user from Redis."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import cast

import redis.asyncio as redis

from bench.board_socket import SocketRefused, read_snapshot
from bench.board_spread import BoardUser
from bench.endpoint import Endpoint
from scoreboard.boards.keys import season_prefix
from scoreboard.boards.model import GLOBAL_BOARD_ID

TOP_N = 10
SEASON = 1  # a run's boards never reset, so they stay in their first season
POLL_SECONDS = 0.2


@dataclass(frozen=True)
class BoardReading:
    """Each board's version and the scores of those of our users the source can see there.

    A board is `complete` when a user missing from `scores` is known to have none on it: Redis
    holds every user; a snapshot only the top 10, so it is complete only when fewer are on it.
    """

    versions: Mapping[str, int]
    scores: Mapping[BoardUser, int]
    complete: frozenset[str]
    source: str

    @property
    def version(self) -> int:
        """The newest version of any of the boards (global's own with one board)."""
        return max(self.versions.values(), default=0)

    def visible(self, key: BoardUser) -> bool:
        return key[0] in self.complete or key in self.scores

    def score(self, key: BoardUser) -> int:
        return self.scores.get(key, 0)


class BoardReader:
    """Reads our users' scores on the run's boards the same way at the start and after the run.

    Global is read as SPEC.md's clients see it, from a fresh socket's snapshot (plus Redis when
    configured); the run's own boards are read from Redis alone, their season 1.
    """

    def __init__(
        self,
        endpoint: Endpoint,
        socket_path: str,
        token: str,
        board_ids: Sequence[str],
        user_ids: Sequence[str],
        redis_url: str | None,
        redis_key_prefix: str,
    ) -> None:
        self._endpoint = endpoint
        self._socket_path = socket_path
        self._token = token
        self._boards = tuple(board_ids)
        self._users = set(user_ids)
        self._redis = redis.from_url(redis_url) if redis_url else None
        self._prefix = redis_key_prefix

    async def read(self) -> BoardReading:
        if self._boards == (GLOBAL_BOARD_ID,):
            return await self._read_global()
        assert self._redis is not None, "a run on its own boards reads them from Redis"
        versions, scores = await self._redis_boards()
        return BoardReading(versions, scores, frozenset(self._boards), "redis")

    async def _read_global(self) -> BoardReading:
        """A fresh client's snapshot, plus every user's score from Redis when configured."""
        snapshot = await read_snapshot(self._endpoint, self._socket_path, self._token)
        versions = {GLOBAL_BOARD_ID: int(snapshot["version"])}
        top = {str(entry["userId"]): int(entry["score"]) for entry in snapshot["top10"]}
        if self._redis is None:
            scores = {(GLOBAL_BOARD_ID, u): score for u, score in top.items() if u in self._users}
            complete = frozenset([GLOBAL_BOARD_ID]) if len(top) < TOP_N else frozenset()
            return BoardReading(versions, scores, complete, "socket")
        _, scores = await self._redis_boards()
        return BoardReading(versions, scores, frozenset([GLOBAL_BOARD_ID]), "redis")

    async def _redis_boards(self) -> tuple[dict[str, int], dict[BoardUser, int]]:
        """Each board's version and our users' scores on it, all read in one round trip."""
        assert self._redis is not None
        async with self._redis.pipeline(transaction=True) as pipe:
            for board_id in self._boards:
                keys = season_prefix(self._prefix, board_id, SEASON)
                pipe.zrange(f"{keys}board", 0, -1, withscores=True)
                pipe.get(f"{keys}version")
            replies = await pipe.execute()
        versions: dict[str, int] = {}
        scores: dict[BoardUser, int] = {}
        for board_id, rows, version in zip(self._boards, replies[0::2], replies[1::2], strict=True):
            versions[board_id] = int(version or 0)
            # Members are '<16-digit sequence>:<userId>', scored by minus the user's total.
            for member, negative_total in cast("list[tuple[bytes, float]]", rows):
                user = member.decode().split(":", 1)[1]
                if user in self._users:
                    scores[(board_id, user)] = int(-negative_total)
        return versions, scores

    async def close(self) -> None:
        if self._redis is not None:
            await self._redis.aclose()


async def wait_until_drained(
    read: Callable[[], Awaitable[BoardReading]],
    expected: Mapping[BoardUser, int],
    settle_seconds: float,
    timeout: float,
) -> BoardReading:
    """Poll the boards until every user shows its expected score, or they stop changing.

    A busy service may fail a read now and then; the last error is raised only if none worked.
    """
    deadline = time.monotonic() + timeout
    reading: BoardReading | None = None
    stable_since = time.monotonic()
    while True:
        try:
            latest = await read()
        except (SocketRefused, OSError, TimeoutError):
            if reading is None and time.monotonic() >= deadline:
                raise
        else:
            if latest != reading:
                reading, stable_since = latest, time.monotonic()
            elif time.monotonic() - stable_since >= settle_seconds:
                return reading
            if all(
                reading.visible(key) and reading.score(key) == score
                for key, score in expected.items()
            ):
                return reading
        if reading is not None and time.monotonic() >= deadline:
            return reading
        await asyncio.sleep(POLL_SECONDS)
