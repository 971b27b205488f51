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
    """One update taken from the queue.

    Several deliveries may come from one queue message (a group of updates published
    together); all of them are in the same batch. A message is settled as a whole, by
    UpdateConsumer.acknowledge() at the end of its batch, never by one of its deliveries.
    """

    @property
    def update(self) -> ScoreUpdate: ...

    @property
    def redelivered(self) -> bool:
        """The queue handed this update out before (a worker died or lost its connection)."""

    async def dead_letter(self, reason: str) -> None:
        """The update can never be applied: move it, and only it, to the dead-letter queue.

        Its neighbours in the same message are still applied; the message is settled with
        its batch.
        """


class UpdateConsumer(Protocol):
    """Yields batches of queued updates until stopped."""

    def batches(self) -> AsyncIterator[Sequence[Delivery]]: ...

    async def acknowledge(self, batch: Sequence[Delivery]) -> None:
        """Every update of `batch`, as yielded, is applied or dead-lettered: settle its messages.

        Called once per batch, after the batch and before the next one is taken.
        """

    async def confirm_acks(self) -> list[str]:
        """Ids of the applied updates acknowledged since the last call that the queue can
        never deliver again; an id whose acknowledgement is in doubt is left out."""

    async def stop(self) -> None:
        """Take no new messages; `batches()` ends once what was taken is yielded."""
