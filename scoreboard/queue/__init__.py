"""The queue seam: the web process publishes updates, the worker consumes them in batches."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import Protocol

from scoreboard.models import ScoreUpdate


class UpdatePublisher(Protocol):
    """Hands an update to the queue."""

    async def publish(self, update: ScoreUpdate, priority: int = 0) -> None:
        """Return once the queue holds `update` durably; raise QueueUnavailable otherwise.

        Higher `priority` updates (0 to MAX_PRIORITY) overtake a backlog of lower ones.
        """

    async def publish_group(self, updates: Sequence[ScoreUpdate], priority: int = 0) -> None:
        """As publish(), for several updates of one priority at the cost of one."""


class Delivery(Protocol):
    """One update taken from the queue, to be acknowledged once applied."""

    @property
    def update(self) -> ScoreUpdate: ...

    @property
    def redelivered(self) -> bool:
        """The queue handed this message out before (a worker died or lost its connection)."""

    async def ack(self) -> None:
        """The update is applied: the queue may forget it."""

    async def dead_letter(self) -> None:
        """The update can never be applied: move it to the dead-letter queue."""


class UpdateConsumer(Protocol):
    """Yields batches of queued updates until stopped."""

    def batches(self) -> AsyncIterator[Sequence[Delivery]]: ...

    async def acknowledge(self, batch: Sequence[Delivery]) -> None:
        """Every update of `batch`, and of the batches before it, is applied or dead-lettered."""

    async def stop(self) -> None:
        """Take no new messages; `batches()` ends once what was taken is yielded."""
