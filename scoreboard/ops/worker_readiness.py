"""A worker's readiness: it consumes the queue, and Redis, the broker and the ledger answer."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from scoreboard.ops.readiness import ReadinessProbe

CONSUMING = "consuming"  # the heartbeat's state while the worker applies updates


@dataclass(frozen=True)
class WorkerReadiness:
    """The worker's state (starting, consuming, stopping) and its services at one moment."""

    state: str
    services: dict[str, bool]  # "redis", "rabbitmq", "postgresql" (with DATABASE_URL)

    @property
    def ready(self) -> bool:
        return not self.reasons

    @property
    def reasons(self) -> list[str]:
        """Why it is not ready, e.g. ["starting"] or ["rabbitmq unreachable"]; empty when ready."""
        waiting = [] if self.state == CONSUMING else [self.state]
        return waiting + [f"{name} unreachable" for name, up in self.services.items() if not up]


class WorkerReadinessProbe:
    """Redis and PostgreSQL asked as a web node asks them; the broker seen by the consumer."""

    def __init__(
        self,
        services: ReadinessProbe,
        broker_connected: Callable[[], bool],
        state: Callable[[], str],
    ) -> None:
        self._services = services
        self._broker_connected = broker_connected
        self._state = state

    async def sample(self) -> WorkerReadiness:
        services = dict((await self._services.sample()).services)
        # The consumer's own connection: a second one could be up while it is still reconnecting.
        services["rabbitmq"] = self._broker_connected()
        return WorkerReadiness(self._state(), services)

    async def close(self) -> None:
        await self._services.close()
