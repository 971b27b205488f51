"""Idempotency-Key: a retried POST returns the first answer instead of counting twice."""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from typing import Protocol

import redis.asyncio as redis

from scoreboard.boards.model import GLOBAL_BOARD_ID
from scoreboard.errors import IdempotencyConflict, InvalidRequest
from scoreboard.redis_errors import redis_errors_as_unavailable

IDEMPOTENCY_TTL_SECONDS = 24 * 60 * 60
MAX_KEY_LENGTH = 255


@dataclass(frozen=True)
class IdempotentRequest:
    """One user's use of one key for one request body."""

    user_id: str
    key: str
    fingerprint: str

    @classmethod
    def from_header(
        cls, header: str, user_id: str, increment: int, board_id: str = GLOBAL_BOARD_ID
    ) -> IdempotentRequest:
        if not 1 <= len(header) <= MAX_KEY_LENGTH or not _printable_ascii(header):
            raise InvalidRequest(
                f"Idempotency-Key must be 1 to {MAX_KEY_LENGTH} printable ASCII characters"
            )
        # The parsed body, so a retry with other whitespace or key order still matches.
        body = f"{user_id}\0{increment}"
        if board_id != GLOBAL_BOARD_ID:  # global's fingerprints stay those of before boards
            body += f"\0{board_id}"
        fingerprint = hashlib.sha256(body.encode()).hexdigest()
        return cls(user_id=user_id, key=header, fingerprint=fingerprint)

    @property
    def record_id(self) -> str:
        return hashlib.sha256(f"{self.user_id}\0{self.key}".encode()).hexdigest()


def _printable_ascii(text: str) -> bool:
    return all(" " <= char <= "~" for char in text)


class IdempotencyRecords(Protocol):
    """Remembers, per user and key, whether a request is under way or what it answered."""

    async def claim(self, request: IdempotentRequest) -> int | None:
        """None when this request is new and now ours; the first answer's newScore on a replay.

        Raises IdempotencyConflict when the key was used with another body or is still in flight.
        """

    async def complete(self, request: IdempotentRequest, new_score: int) -> None:
        """Remember the answer for replays."""

    async def abandon(self, request: IdempotentRequest) -> None:
        """Forget a claim whose request failed, so the client may retry with the same key."""


def _settle(request: IdempotentRequest, record: str) -> int:
    state, fingerprint, new_score = (record.split(":") + ["", ""])[:3]
    if fingerprint != request.fingerprint:
        raise IdempotencyConflict("Idempotency-Key was already used with a different request")
    if state != "done":
        raise IdempotencyConflict("A request with this Idempotency-Key is still in progress")
    return int(new_score)


class RedisIdempotencyRecords:
    """IdempotencyRecords in Redis keys that expire after 24 hours."""

    def __init__(self, client: redis.Redis, prefix: str) -> None:
        self._client = client
        self._prefix = f"{prefix}idempotency:"

    async def claim(self, request: IdempotentRequest) -> int | None:
        key = self._prefix + request.record_id
        async with redis_errors_as_unavailable():
            if await self._client.set(
                key, f"pending:{request.fingerprint}", nx=True, ex=IDEMPOTENCY_TTL_SECONDS
            ):
                return None
            record = await self._client.get(key)
        if record is None:  # expired between the two calls: a fresh claim is fair
            return await self.claim(request)
        return _settle(request, record if isinstance(record, str) else record.decode())

    async def complete(self, request: IdempotentRequest, new_score: int) -> None:
        async with redis_errors_as_unavailable():
            await self._client.set(
                self._prefix + request.record_id,
                f"done:{request.fingerprint}:{new_score}",
                ex=IDEMPOTENCY_TTL_SECONDS,
            )

    async def abandon(self, request: IdempotentRequest) -> None:
        async with redis_errors_as_unavailable():
            await self._client.delete(self._prefix + request.record_id)


class MemoryIdempotencyRecords:
    """IdempotencyRecords in a dict, for the single-process mode."""

    def __init__(self) -> None:
        self._records: dict[str, tuple[float, str]] = {}  # insertion order is expiry order

    async def claim(self, request: IdempotentRequest) -> int | None:
        now = time.monotonic()
        while self._records:
            oldest = next(iter(self._records))
            if self._records[oldest][0] > now:
                break
            del self._records[oldest]
        existing = self._records.get(request.record_id)
        if existing is None:
            self._records[request.record_id] = (
                now + IDEMPOTENCY_TTL_SECONDS,
                f"pending:{request.fingerprint}",
            )
            return None
        return _settle(request, existing[1])

    async def complete(self, request: IdempotentRequest, new_score: int) -> None:
        expires = time.monotonic() + IDEMPOTENCY_TTL_SECONDS
        self._records[request.record_id] = (expires, f"done:{request.fingerprint}:{new_score}")

    async def abandon(self, request: IdempotentRequest) -> None:
        self._records.pop(request.record_id, None)
