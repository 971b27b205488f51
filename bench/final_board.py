"""Reading the users' scores back: from a fresh socket snapshot, or every user from Redis."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import cast

import redis.asyncio as redis

from bench.board_socket import SocketRefused, read_snapshot
from bench.endpoint import Endpoint

TOP_N = 10
POLL_SECONDS = 0.2


@dataclass(frozen=True)
class BoardReading:
    """The board's version and the scores of those of our users the source can see.

    `complete` is true when a user missing from `scores` is known to have none: Redis holds
    every user; a snapshot only the top 10, so it is complete only when fewer are on the board.
    """

    version: int
    scores: Mapping[str, int]
    complete: bool
    source: str

    def visible(self, user: str) -> bool:
        return self.complete or user in self.scores

    def score(self, user: str) -> int:
        return self.scores.get(user, 0)


class BoardReader:
    """Reads our users' scores the same way at the start and after the run."""

    def __init__(
        self,
        endpoint: Endpoint,
        socket_path: str,
        token: str,
        user_ids: Sequence[str],
        redis_url: str | None,
        redis_key_prefix: str,
    ) -> None:
        self._endpoint = endpoint
        self._socket_path = socket_path
        self._token = token
        self._users = set(user_ids)
        self._redis = redis.from_url(redis_url) if redis_url else None
        self._board_key = f"{redis_key_prefix}board"

    async def read(self) -> BoardReading:
        """A fresh client's snapshot, plus every user's score from Redis when configured."""
        snapshot = await read_snapshot(self._endpoint, self._socket_path, self._token)
        version = int(snapshot["version"])
        top = {str(entry["userId"]): int(entry["score"]) for entry in snapshot["top10"]}
        if self._redis is None:
            scores = {user: score for user, score in top.items() if user in self._users}
            return BoardReading(version, scores, len(top) < TOP_N, "socket")
        return BoardReading(version, await self._redis_scores(), True, "redis")

    async def _redis_scores(self) -> dict[str, int]:
        # Members are '<16-digit sequence>:<userId>', scored by minus the user's total.
        assert self._redis is not None
        reply = await self._redis.zrange(self._board_key, 0, -1, withscores=True)
        rows = cast("list[tuple[bytes, float]]", reply)
        scores = {}
        for member, negative_total in rows:
            user = member.decode().split(":", 1)[1]
            if user in self._users:
                scores[user] = int(-negative_total)
        return scores

    async def close(self) -> None:
        if self._redis is not None:
            await self._redis.aclose()


async def wait_until_drained(
    read: Callable[[], Awaitable[BoardReading]],
    expected: Mapping[str, int],
    settle_seconds: float,
    timeout: float,
) -> BoardReading:
    """Poll the board until every user shows its expected score, or it stops changing.

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
                reading.visible(user) and reading.score(user) == score
                for user, score in expected.items()
            ):
                return reading
        if reading is not None and time.monotonic() >= deadline:
            return reading
        await asyncio.sleep(POLL_SECONDS)
