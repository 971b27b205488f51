"""Worker heartbeats in Redis: each worker refreshes an expiring key; web nodes list them."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import socket
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import redis.asyncio as redis

from scoreboard.redis_errors import redis_errors_as_unavailable

log = logging.getLogger(__name__)

HEARTBEAT_INTERVAL_SECONDS = 5.0
# Three missed beats and the worker counts as gone (killed, frozen or cut off from Redis).
HEARTBEAT_TTL_SECONDS = 15
_FORGET_TIMEOUT_SECONDS = 2.0


@dataclass(frozen=True)
class WorkerBeat:
    """What one heartbeat says about its worker."""

    worker_id: str
    name: str  # the dyno (DYNO, e.g. worker.1) or the host name
    pid: int
    state: str  # starting, consuming or stopping
    started_at: float
    beat_at: float
    last_batch_at: float | None
    updates: int
    dead_lettered: int

    def to_json(self, now: float) -> dict[str, Any]:
        """For /readyz: ages in seconds rather than timestamps, so clocks need not agree."""
        return {
            "id": self.worker_id,
            "name": self.name,
            "pid": self.pid,
            "state": self.state,
            "lastSeenSecondsAgo": round(max(0.0, now - self.beat_at), 1),
            "lastBatchSecondsAgo": (
                None if self.last_batch_at is None else round(max(0.0, now - self.last_batch_at), 1)
            ),
            "upSeconds": round(max(0.0, now - self.started_at), 1),
            "updates": self.updates,
            "deadLettered": self.dead_lettered,
        }


@dataclass(frozen=True)
class WorkerIdentity:
    """Who a worker is, fixed for its lifetime."""

    worker_id: str
    name: str
    pid: int
    started_at: float

    @classmethod
    def of_this_process(cls) -> WorkerIdentity:
        return cls(
            worker_id=uuid.uuid4().hex[:16],
            name=os.environ.get("DYNO") or socket.gethostname(),
            pid=os.getpid(),
            started_at=time.time(),
        )


class WorkerRegistry:
    """An expiring key per worker, and a set of their ids so readers need no SCAN."""

    def __init__(self, client: redis.Redis, prefix: str) -> None:
        self._client = client
        self._index = f"{prefix}workers"
        self._key_prefix = f"{prefix}workers:"

    async def beat(self, beat: WorkerBeat) -> None:
        async with redis_errors_as_unavailable():
            async with self._client.pipeline(transaction=False) as pipe:
                pipe.set(
                    self._key_prefix + beat.worker_id,
                    json.dumps(asdict(beat)),
                    ex=HEARTBEAT_TTL_SECONDS,
                )
                pipe.sadd(self._index, beat.worker_id)
                await pipe.execute()

    async def forget(self, worker_id: str) -> None:
        async with redis_errors_as_unavailable():
            async with self._client.pipeline(transaction=False) as pipe:
                pipe.delete(self._key_prefix + worker_id)
                pipe.srem(self._index, worker_id)
                await pipe.execute()

    async def alive(self) -> list[WorkerBeat]:
        """Every worker whose heartbeat has not expired; expired ones leave the index."""
        async with redis_errors_as_unavailable():
            ids = sorted(_text(m) for m in await self._client.smembers(self._index))
            if not ids:
                return []
            values = await self._client.mget([self._key_prefix + i for i in ids])
            gone = [i for i, value in zip(ids, values, strict=True) if value is None]
            if gone:
                await self._client.srem(self._index, *gone)
        beats = (_parse(value) for value in values if value is not None)
        return [beat for beat in beats if beat is not None]


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _parse(value: bytes | str) -> WorkerBeat | None:
    try:
        return WorkerBeat(**json.loads(value))
    except (ValueError, TypeError):  # written by a worker of another version: not counted
        return None


class Heartbeat:
    """Beats every few seconds from start() to stop(); stop() removes the heartbeat."""

    def __init__(self, registry: WorkerRegistry, describe: Callable[[], WorkerBeat]) -> None:
        self._registry = registry
        self._describe = describe
        self._beating: asyncio.Task[None] | None = None
        self._changed = asyncio.Event()

    def start(self) -> None:
        self._beating = asyncio.create_task(self._beat_forever())

    def refresh(self) -> None:
        """Beat now rather than at the next interval: the worker's state changed."""
        self._changed.set()

    async def stop(self) -> None:
        if self._beating is not None:
            self._beating.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._beating
        worker_id = self._describe().worker_id
        try:
            await asyncio.wait_for(self._registry.forget(worker_id), _FORGET_TIMEOUT_SECONDS)
        except Exception as exc:
            # The key expires by itself; readers stop counting this worker within the TTL.
            log.warning("could not remove the heartbeat of worker %s: %r", worker_id, exc)

    async def _beat_forever(self) -> None:
        failing = False
        while True:
            try:
                await self._registry.beat(self._describe())
                if failing:
                    log.info("heartbeat written again")
                failing = False
            except Exception as exc:  # a heartbeat must never stop the worker
                if not failing:
                    log.warning("could not write the heartbeat: %r", exc)
                failing = True
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), HEARTBEAT_INTERVAL_SECONDS)
            self._changed.clear()
