"""Readiness: does each backing service answer, how full are the queues, which workers beat."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import redis.asyncio as redis

from scoreboard.apply.ledger.postgres import PostgresLedger
from scoreboard.errors import ServiceUnavailable
from scoreboard.ops.heartbeat import WorkerBeat, WorkerRegistry
from scoreboard.queue.queue_depth import QueueProbe

log = logging.getLogger(__name__)

CHECK_TIMEOUT_SECONDS = 1.0
# Probes and scrapers may call as often as they like: the services see one check a second.
MAX_SAMPLE_AGE_SECONDS = 1.0


@dataclass(frozen=True)
class Readiness:
    """The backing services, the queues and the workers as seen at one moment."""

    services: dict[str, bool]  # "redis", "rabbitmq", "postgresql" (only those configured)
    queue_depths: dict[str, int | None] = field(default_factory=dict)
    workers: list[WorkerBeat] | None = None  # None: unknown (Redis down, or single-process)
    sampled_at: float = field(default_factory=time.time)

    @property
    def down(self) -> list[str]:
        return [name for name, up in self.services.items() if not up]

    @property
    def ready(self) -> bool:
        # No worker is not "not ready": this node still accepts updates and the queue keeps them.
        return not self.down


class ReadinessProbe:
    """Checks the services a web node needs, each with a short timeout, all at once."""

    def __init__(
        self,
        client: redis.Redis | None,
        queues: QueueProbe | None,
        ledger: Callable[[], PostgresLedger | None],
        workers: WorkerRegistry | None,
    ) -> None:
        self._client = client
        self._queues = queues
        self._ledger = ledger
        self._workers = workers
        self._last: Readiness | None = None
        self._sampling = asyncio.Lock()

    async def sample(self) -> Readiness:
        """The current state; a sample younger than a second is reused."""
        async with self._sampling:
            last = self._last
            if last is not None and time.time() - last.sampled_at < MAX_SAMPLE_AGE_SECONDS:
                return last
            self._last = await self._check_all()
            self._log_changes(last, self._last)
            return self._last

    async def close(self) -> None:
        if self._queues is not None:
            await self._queues.close()

    async def _check_all(self) -> Readiness:
        redis_up, depths, postgres_up = await asyncio.gather(
            self._redis(), self._queue_depths(), self._postgres()
        )
        services: dict[str, bool] = {}
        if redis_up is not None:
            services["redis"] = redis_up
        if self._queues is not None:
            services["rabbitmq"] = depths is not None
        if postgres_up is not None:
            services["postgresql"] = postgres_up
        workers = await self._alive_workers() if redis_up else None
        return Readiness(services, depths or {}, workers)

    async def _redis(self) -> bool | None:
        if self._client is None:
            return None
        client = self._client
        return await _answers(lambda: client.ping())

    async def _queue_depths(self) -> dict[str, int | None] | None:
        if self._queues is None:
            return None
        try:
            return await self._queues.depths()
        except ServiceUnavailable:
            return None

    async def _postgres(self) -> bool | None:
        ledger = self._ledger()
        if ledger is None:
            return None
        return await _answers(lambda: ledger.ping(CHECK_TIMEOUT_SECONDS))

    async def _alive_workers(self) -> list[WorkerBeat] | None:
        if self._workers is None:
            return None
        try:
            return await asyncio.wait_for(self._workers.alive(), CHECK_TIMEOUT_SECONDS)
        except (TimeoutError, ServiceUnavailable):
            return None

    @staticmethod
    def _log_changes(before: Readiness | None, now: Readiness) -> None:
        """One line when a service goes down or comes back, not one per probe."""
        for name, up in now.services.items():
            was_up = True if before is None else before.services.get(name, True)
            if was_up and not up:
                log.warning("readiness: %s is unreachable", name)
            elif up and not was_up:
                log.info("readiness: %s answers again", name)


async def _answers(check: Callable[[], Awaitable[object]]) -> bool:
    try:
        await asyncio.wait_for(check(), CHECK_TIMEOUT_SECONDS)
    except Exception as exc:  # refused, timed out, wrong password…: for readiness all are "down"
        log.debug("readiness check failed: %r", exc)
        return False
    return True
